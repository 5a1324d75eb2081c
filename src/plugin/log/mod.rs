//! `log`: a line per answered query, in CoreDNS's format, to standard output.

pub mod config;

use std::fmt::Write;
use std::net::IpAddr;

use hickory_proto::op::{Metadata, ResponseCode};
use hickory_proto::rr::Name;

use crate::observe::metrics::rcode_label;
use crate::plugin::PluginError;
use crate::plugin::log::config::{Classes, LogConfig, Piece, covers};
use crate::plugin::setup::Setup;
use crate::plugin::{Observer, Served};
use std::sync::Arc;

pub struct Log {
    cfg: LogConfig,
}

impl Log {
    pub fn new(cfg: LogConfig) -> Self {
        Self { cfg }
    }

    /// The line for `s`, or `None` when this rule does not log it.
    pub fn line(&self, s: &Served) -> Option<String> {
        let name: &Name = s.query.name();
        if !covers(&self.cfg.names, name) || !class_wanted(self.cfg.classes, s) {
            return None;
        }
        Some(render(&self.cfg.format, s))
    }
}

impl Observer for Log {
    fn served(&self, s: &Served) {
        if let Some(line) = self.line(s) {
            tracing::info!("{line}");
        }
    }
}

/// CoreDNS's classes of an answer (its `response.Classify`): success (records), denial
/// (NXDOMAIN, or NOERROR without records), error (the rest).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Class {
    Success,
    Denial,
    Error,
}

fn classify(s: &Served) -> Class {
    match s.response.response_code {
        ResponseCode::NoError if s.answers > 0 => Class::Success,
        ResponseCode::NoError | ResponseCode::NXDomain => Class::Denial,
        _ => Class::Error,
    }
}

fn class_wanted(c: Classes, s: &Served) -> bool {
    match classify(s) {
        Class::Success => c.success,
        Class::Denial => c.denial,
        Class::Error => c.error,
    }
}

/// `{/log/class}`: `success`, `denial` or `error`.
fn class_of(s: &Served) -> &'static str {
    match classify(s) {
        Class::Success => "success",
        Class::Denial => "denial",
        Class::Error => "error",
    }
}

/// `{/log/type}`, as CoreDNS's `response.Typify` names an answer: `NOERROR` (records),
/// `NODATA`, `NXDOMAIN`, `META` (a zone transfer), `UPDATE`, `OTHERERROR`.
fn type_of(s: &Served) -> &'static str {
    use hickory_proto::op::OpCode;
    use hickory_proto::rr::RecordType;
    if s.opcode == OpCode::Update {
        return "UPDATE";
    }
    if matches!(s.query.query_type(), RecordType::AXFR | RecordType::IXFR) {
        return "META";
    }
    match s.response.response_code {
        ResponseCode::NoError if s.answers > 0 => "NOERROR",
        ResponseCode::NoError => "NODATA",
        ResponseCode::NXDomain => "NXDOMAIN",
        _ => "OTHERERROR",
    }
}

pub fn render(format: &[Piece], s: &Served) -> String {
    let mut out = String::with_capacity(128);
    for piece in format {
        match piece {
            Piece::Text(t) => out.push_str(t),
            Piece::Field(f) => field(&mut out, f, s),
        }
    }
    out
}

fn field(out: &mut String, f: &str, s: &Served) {
    let q = s.query;
    let _ = match f {
        "remote" => match s.src.ip() {
            IpAddr::V6(v6) => write!(out, "[{v6}]"),
            ip => write!(out, "{ip}"),
        },
        "port" => write!(out, "{}", s.src.port()),
        "type" => write!(out, "{}", q.query_type()),
        "name" => write!(out, "{}", q.original().name()),
        "class" => write!(out, "{}", q.query_class()),
        "proto" => write!(out, "{}", s.transport.as_str()),
        "size" => write!(out, "{}", s.request_size),
        "rcode" => write!(out, "{}", rcode_label(s.response.response_code)),
        "rsize" => write!(out, "{}", s.response_size),
        "duration" => write!(out, "{}s", s.duration.as_secs_f64()),
        ">id" => write!(out, "{}", s.id),
        ">opcode" => write!(out, "{}", opcode(s)),
        ">do" => write!(out, "{}", s.dnssec_ok),
        ">bufsize" => write!(out, "{}", s.bufsize),
        ">rflags" => write!(out, "{}", flags(&s.response)),
        // What `log` itself publishes about the answer (CoreDNS 1.14), with `metadata`.
        "/log/class" if s.metadata_on => write!(out, "{}", class_of(s)),
        "/log/type" if s.metadata_on => write!(out, "{}", type_of(s)),
        // `{/LABEL}`: a value `metadata` collected, `-` where nothing published it.
        label if label.starts_with('/') => {
            match s.metadata.iter().find(|(l, _)| *l == &label[1..]) {
                Some((_, v)) => write!(out, "{v}"),
                None => write!(out, "-"),
            }
        }
        _ => write!(out, "-"),
    };
}

fn opcode(s: &Served) -> &'static str {
    match u8::from(s.opcode) {
        0 => "QUERY",
        1 => "IQUERY",
        2 => "STATUS",
        4 => "NOTIFY",
        5 => "UPDATE",
        _ => "-",
    }
}

/// Header flags as CoreDNS lists them: `qr,aa,tc,rd,ra,z,ad,cd`.
pub fn flags(m: &Metadata) -> String {
    let set = [
        (
            m.message_type == hickory_proto::op::MessageType::Response,
            "qr",
        ),
        (m.authoritative, "aa"),
        (m.truncation, "tc"),
        (m.recursion_desired, "rd"),
        (m.recursion_available, "ra"),
        (m.authentic_data, "ad"),
        (m.checking_disabled, "cd"),
    ];
    set.iter()
        .filter(|(on, _)| *on)
        .map(|(_, n)| *n)
        .collect::<Vec<_>>()
        .join(",")
}

/// Puts `log` into the block being set up.
pub fn setup(cfg: &config::LogConfig, s: &mut Setup<'_>) -> Result<(), PluginError> {
    s.observer(Arc::new(Log::new(cfg.clone())));
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use hickory_proto::op::{LowerQuery, MessageType, OpCode, Query};
    use hickory_proto::rr::RecordType;

    use super::*;
    use crate::plugin::Transport;
    use crate::plugin::log::config::{COMBINED_FORMAT, COMMON_FORMAT, compile};

    fn served<'a>(q: &'a LowerQuery, rcode: ResponseCode, answers: usize) -> Served<'a> {
        let mut response = Metadata::new(4242, MessageType::Response, OpCode::Query);
        response.authoritative = true;
        response.recursion_desired = true;
        response.response_code = rcode;
        Served {
            query: q,
            // The server hands observers the client as `vocab::client_addr` makes it.
            src: "10.244.0.7:41229".parse().unwrap(),
            transport: Transport::Udp,
            id: 4242,
            opcode: OpCode::Query,
            request_size: 45,
            dnssec_ok: false,
            bufsize: 1232,
            response,
            answers,
            response_size: 106,
            duration: Duration::from_micros(133),
            metadata: &[],
            metadata_on: false,
            query_bytes: &[],
            response_bytes: &[],
            tls: false,
            local: crate::vocab::DnsKey::new(None, 53),
        }
    }

    fn rule(format: &str, classes: Classes, names: &[&str]) -> Log {
        Log::new(LogConfig {
            names: names
                .iter()
                .map(|n| crate::dns::name::fqdn(n).unwrap())
                .collect(),
            format: compile(format),
            classes,
        })
    }

    #[test]
    fn coredns_default_line() {
        let q = LowerQuery::query(Query::query(
            Name::from_ascii("Example.org.").unwrap(),
            RecordType::A,
        ));
        let log = rule(COMMON_FORMAT, Classes::ALL, &["."]);
        assert_eq!(
            log.line(&served(&q, ResponseCode::NoError, 1)).unwrap(),
            "10.244.0.7:41229 - 4242 \"A IN Example.org. udp 45 false 1232\" NOERROR qr,aa,rd 106 0.000133s"
        );
        let log = rule(COMBINED_FORMAT, Classes::ALL, &["."]);
        assert!(
            log.line(&served(&q, ResponseCode::NoError, 1))
                .unwrap()
                .ends_with("0.000133s \"QUERY\"")
        );
        let log = rule("{name} {nonsense} {>do}", Classes::ALL, &["."]);
        assert_eq!(
            log.line(&served(&q, ResponseCode::NoError, 1)).unwrap(),
            "Example.org. - false"
        );
    }

    #[test]
    fn classes_and_names_filter() {
        let q = LowerQuery::query(Query::query(
            Name::from_ascii("a.example.org.").unwrap(),
            RecordType::A,
        ));
        let denial = Classes {
            success: false,
            denial: true,
            error: false,
        };
        let log = rule(COMMON_FORMAT, denial, &["."]);
        assert!(log.line(&served(&q, ResponseCode::NoError, 1)).is_none());
        assert!(
            log.line(&served(&q, ResponseCode::NoError, 0)).is_some(),
            "NODATA is a denial"
        );
        assert!(log.line(&served(&q, ResponseCode::NXDomain, 0)).is_some());
        assert!(log.line(&served(&q, ResponseCode::ServFail, 0)).is_none());
        let log = rule(COMMON_FORMAT, Classes::ALL, &["example.com"]);
        assert!(log.line(&served(&q, ResponseCode::NoError, 1)).is_none());
        let log = rule(COMMON_FORMAT, Classes::ALL, &["example.org"]);
        assert!(log.line(&served(&q, ResponseCode::NoError, 1)).is_some());
    }
}
