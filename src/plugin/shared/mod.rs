//! Helpers several directives share.

pub mod fallthrough;
pub mod services;
pub mod tls;

use hickory_proto::op::ResponseCode;

use crate::corefile::args::Args;
use crate::corefile::error::ConfigError;

/// The longest `ttl` a directive takes.
pub const MAX_TTL: u32 = 3600;

/// `ttl N`, 0 to [`MAX_TTL`] seconds (`kubernetes` and `k8s_external` take the same range).
pub fn parse_ttl(args: &Args) -> Result<u32, ConfigError> {
    let t = args.one("a TTL in seconds")?;
    t.text
        .parse::<u32>()
        .ok()
        .filter(|v| *v <= MAX_TTL)
        .ok_or_else(|| {
            args.err(
                t,
                format!("'{}' is not a TTL: expected 0 to {MAX_TTL}", t.text),
            )
        })
}

/// An rcode by the name miekg/dns gives it (case-insensitive).
pub fn parse_rcode(text: &str) -> Option<ResponseCode> {
    Some(match text.to_ascii_uppercase().as_str() {
        "NOERROR" => ResponseCode::NoError,
        "FORMERR" => ResponseCode::FormErr,
        "SERVFAIL" => ResponseCode::ServFail,
        "NXDOMAIN" => ResponseCode::NXDomain,
        "NOTIMP" => ResponseCode::NotImp,
        "REFUSED" => ResponseCode::Refused,
        "YXDOMAIN" => ResponseCode::YXDomain,
        "YXRRSET" => ResponseCode::YXRRSet,
        "NXRRSET" => ResponseCode::NXRRSet,
        "NOTAUTH" => ResponseCode::NotAuth,
        "NOTZONE" => ResponseCode::NotZone,
        _ => return None,
    })
}

/// Runs blocking work (reading a file) from a plugin's `setup` without stalling the runtime's
/// other tasks: on a multi-threaded runtime the worker hands its tasks on first; elsewhere (a
/// test's current-thread runtime, no runtime) it just runs.
pub fn blocking<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(f)
        }
        _ => f(),
    }
}

/// A uniform random permutation (Fisher–Yates).
pub fn shuffle<T>(list: &mut [T]) {
    for i in (1..list.len()).rev() {
        let j = rand::random_range(0..=i);
        list.swap(i, j);
    }
}

/// This machine's host name (a pod's name in Kubernetes), as `chaos` and `nsid` answer it;
/// `localhost` where it cannot be read, as CoreDNS falls back.
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_owned())
}

/// `text` cut to at most `max` bytes, at a character boundary (a TXT string holds 255).
pub fn cut(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}
