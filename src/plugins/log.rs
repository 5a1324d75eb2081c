//! `log`: a line per answered query, in CoreDNS's format, to standard output.

use std::fmt::Write;
use std::net::IpAddr;

use hickory_proto::op::{Metadata, ResponseCode};
use hickory_proto::rr::Name;

use crate::chain::{Observer, Served};
use crate::config::log::{Classes, LogConfig, Piece, covers};
use crate::observe::metrics::rcode_label;

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

/// CoreDNS's classes: success (an answer), denial (NXDOMAIN or NODATA), error (the rest).
fn class_wanted(c: Classes, s: &Served) -> bool {
    match s.response.response_code {
        ResponseCode::NoError if s.answers > 0 => c.success,
        ResponseCode::NoError | ResponseCode::NXDomain => c.denial,
        _ => c.error,
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
        "remote" => match canonical(s.src.ip()) {
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
        _ => write!(out, "-"),
    };
}

fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
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
