//! `template`: answers rendered from the question, as CoreDNS's `template` makes them.
//!
//! A question outside the zones, or of another class or type, goes on. Inside, the first
//! `match` expression that matches the lower-cased name renders the reply: its `answer`,
//! `additional` and `authority` records, with `rcode`, authoritative (`SERVFAIL` is sent bare).
//! When nothing matches, the question goes on if `fallthrough` covers it, and gets NXDOMAIN
//! otherwise. (CoreDNS returns NXDOMAIN there without writing it, so its client waits for a
//! timeout; we send it.)
//!
//! Several `template` directives in a block run one after the other, each as its own handler:
//! a question the first does not take goes on to the second, which is what CoreDNS's loop over
//! its templates does.

pub mod config;

use std::collections::HashMap;
use std::sync::Arc;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{DNSClass, LowerName, Name, RData, Record, RecordType};

use crate::observe::metrics::Metrics;
use crate::plugin::PluginError;
use crate::plugin::Take;
use crate::plugin::setup::Setup;
use crate::plugin::template::config::{Piece, TemplateConfig, Tmpl};
use crate::plugin::{Handler, HandlerError, HandlerFuture, Next, RecordSet, Reply, Request};

const NAME: &str = "template";

pub struct Template {
    cfg: TemplateConfig,
    zones: Vec<(LowerName, String)>,
    metrics: Arc<Metrics>,
}

/// What a template can say about one question.
pub struct Data<'a> {
    pub name: &'a str,
    pub zone: &'a str,
    pub class: String,
    pub qtype: String,
    pub remote: String,
    pub regex: &'a str,
    pub groups: Vec<Option<&'a str>>,
    pub named: HashMap<&'a str, &'a str>,
}

impl Template {
    pub fn new(cfg: &TemplateConfig, metrics: Arc<Metrics>) -> Self {
        Self {
            zones: cfg
                .zones
                .iter()
                .map(|z| (LowerName::from(z), z.to_ascii()))
                .collect(),
            cfg: cfg.clone(),
            metrics,
        }
    }

    /// The longest of our zones holding `name`.
    fn zone(&self, name: &LowerName) -> Option<&str> {
        self.zones
            .iter()
            .filter(|(z, _)| z.zone_of(name))
            .max_by_key(|(z, _)| z.num_labels())
            .map(|(_, text)| text.as_str())
    }
}

impl Handler for Template {
    fn name(&self) -> &'static str {
        NAME
    }

    fn serve<'a>(&'a self, req: &'a Request<'a>, next: Next<'a>) -> HandlerFuture<'a> {
        Box::pin(async move {
            let name = req.query.name();
            let Some(zone) = self.zone(name) else {
                return next.serve(req).await;
            };
            let (qclass, qtype) = (req.query.query_class(), req.query.query_type());
            if let Some(c) = self.cfg.class
                && qclass != DNSClass::ANY
                && qclass != c
            {
                return next.serve(req).await;
            }
            if let Some(t) = self.cfg.qtype
                && qtype != RecordType::ANY
                && qtype != t
            {
                return next.serve(req).await;
            }
            let text = crate::dns::name::to_presentation(&Name::from(name));
            let Some((regex, caps)) = self
                .cfg
                .regex
                .iter()
                .find_map(|re| re.captures(&text).map(|c| (re, c)))
            else {
                if self.cfg.fallthrough.covers(&Name::from(name)) {
                    return next.serve(req).await;
                }
                return Ok(Reply::new(ResponseCode::NXDomain, NAME));
            };
            let class = match (qclass, self.cfg.class) {
                (DNSClass::ANY, Some(c)) => c,
                (c, _) => c,
            };
            let rtype = match (qtype, self.cfg.qtype) {
                (RecordType::ANY, Some(t)) => t,
                (t, _) => t,
            };
            let data = Data {
                name: &text,
                zone,
                class: class.to_string(),
                qtype: rtype.to_string(),
                remote: req.src.ip().to_string(),
                regex: regex.as_str(),
                groups: caps.iter().map(|m| m.map(|m| m.as_str())).collect(),
                named: regex
                    .capture_names()
                    .flatten()
                    .filter_map(|n| caps.name(n).map(|m| (n, m.as_str())))
                    .collect(),
            };
            self.metrics
                .template
                .matches
                .with_label_values(&[req.server, zone, "", &data.class, &data.qtype])
                .inc();
            if self.cfg.rcode == ResponseCode::ServFail {
                return Ok(Reply::new(ResponseCode::ServFail, NAME));
            }
            let mut reply = Reply::new(self.cfg.rcode, NAME);
            reply.authoritative = true;
            let mut answers = Vec::new();
            for t in &self.cfg.answer {
                let rr = self.record(req, &data, "answer", t)?;
                let target = match (&rr.data, qtype) {
                    (RData::CNAME(c), RecordType::A | RecordType::AAAA) if self.cfg.upstream => {
                        Some(c.0.clone())
                    }
                    _ => None,
                };
                answers.push(rr);
                if let Some(target) = target
                    && let Some(up) = req.follow(target.clone(), qtype, Take::Any).await
                {
                    reply.truncated |= up.truncated;
                    answers.extend(up.answer_records(&target));
                }
            }
            let section =
                |list: &[Tmpl], what: &'static str| -> Result<Vec<Record>, HandlerError> {
                    list.iter()
                        .map(|t| self.record(req, &data, what, t))
                        .collect()
                };
            let additional = section(&self.cfg.additional, "additional")?;
            let authority = section(&self.cfg.authority, "authority")?;
            for (records, to) in [
                (answers, &mut reply.answers),
                (additional, &mut reply.additionals),
                (authority, &mut reply.authority),
            ] {
                if !records.is_empty() {
                    to.push(RecordSet::from(records).into());
                }
            }
            Ok(reply)
        })
    }
}

impl Template {
    /// Renders and reads one record; a failure is counted and answered with SERVFAIL.
    fn record(
        &self,
        req: &Request,
        data: &Data,
        section: &'static str,
        t: &Tmpl,
    ) -> Result<Record, HandlerError> {
        let labels = |m: &prometheus::IntCounterVec| {
            m.with_label_values(&[
                req.server,
                data.zone,
                "",
                &data.class,
                &data.qtype,
                section,
                &t.source,
            ])
            .inc();
        };
        let text = render(t, data).map_err(|e| {
            labels(&self.metrics.template.template_failures);
            HandlerError::failed(NAME, format!("{section} template '{}': {e}", t.source))
        })?;
        parse_rr(&text).map_err(|e| {
            labels(&self.metrics.template.rr_failures);
            HandlerError::failed(NAME, format!("{section} '{text}' is not a record: {e}"))
        })
    }
}

/// Fills a template in; an index past the match's groups is an error, as in Go.
pub fn render(t: &Tmpl, data: &Data) -> Result<String, String> {
    let mut out = String::new();
    for p in &t.pieces {
        match p {
            Piece::Text(s) => out.push_str(s),
            Piece::Name => out.push_str(data.name),
            Piece::Zone => out.push_str(data.zone),
            Piece::Class => out.push_str(&data.class),
            Piece::Type => out.push_str(&data.qtype),
            Piece::Remote => out.push_str(&data.remote),
            Piece::Regex => out.push_str(data.regex),
            Piece::Match(i) => match data.groups.get(*i) {
                Some(g) => out.push_str(g.unwrap_or_default()),
                None => {
                    return Err(format!(
                        "index .Match {i}: out of range (the match has {} groups)",
                        data.groups.len()
                    ));
                }
            },
            Piece::Group(key) => {
                let value = match key.parse::<usize>() {
                    Ok(i) => data.groups.get(i).map(|g| g.unwrap_or_default()),
                    Err(_) => data.named.get(key.as_str()).copied(),
                };
                // A missing key of a Go map prints as "<no value>".
                out.push_str(value.unwrap_or("<no value>"));
            }
        }
    }
    Ok(out)
}

/// One record in zone-file form: `NAME [TTL] [CLASS] TYPE DATA…` (TTL and class in either order,
/// 3600 and IN when left out, as miekg/dns reads them). Names are absolute.
pub fn parse_rr(text: &str) -> Result<Record, String> {
    let mut rest = text.trim_start();
    let next = |rest: &mut &str| -> Option<String> {
        let s = rest.trim_start();
        if s.is_empty() {
            return None;
        }
        let end = s.find(char::is_whitespace).unwrap_or(s.len());
        *rest = &s[end..];
        Some(s[..end].to_string())
    };
    let owner = next(&mut rest).ok_or("empty record")?;
    let name = crate::dns::name::from_presentation(&owner)
        .ok_or_else(|| format!("'{owner}' is not a domain name"))?;
    let (mut ttl, mut class) = (None, None);
    let rtype = loop {
        let word = next(&mut rest).ok_or("no record type")?;
        if ttl.is_none()
            && let Ok(t) = word.parse::<u32>()
        {
            ttl = Some(t);
            continue;
        }
        if class.is_none() {
            let c = match word.to_ascii_uppercase().as_str() {
                "IN" => Some(DNSClass::IN),
                "CH" => Some(DNSClass::CH),
                "HS" => Some(DNSClass::HS),
                _ => None,
            };
            if let Some(c) = c {
                class = Some(c);
                continue;
            }
        }
        match word.to_ascii_uppercase().parse::<RecordType>() {
            Ok(t) if !matches!(t, RecordType::Unknown(_)) => break t,
            _ => return Err(format!("unknown record type '{word}'")),
        }
    };
    let rdata = RData::try_from_str(rtype, rest.trim()).map_err(|e| e.to_string())?;
    let mut record = Record::from_rdata(name, ttl.unwrap_or(3600), rdata);
    record.dns_class = class.unwrap_or(DNSClass::IN);
    Ok(record)
}

/// Puts `template` into the block being set up.
pub fn setup(cfg: &config::TemplateConfig, s: &mut Setup<'_>) -> Result<(), PluginError> {
    s.handler(Template::new(cfg, s.metrics.clone()));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugin::template::config::compile;

    fn data<'a>(name: &'a str, groups: Vec<Option<&'a str>>) -> Data<'a> {
        Data {
            name,
            zone: "example.",
            class: "IN".into(),
            qtype: "A".into(),
            remote: "10.0.0.9".into(),
            regex: ".*",
            groups,
            named: [("ip", "10-1-2-3")].into_iter().collect(),
        }
    }

    #[test]
    fn templates_render_what_coredns_users_write() {
        let d = data(
            "ip-10-1-2-3.example.",
            vec![Some("ip-10-1-2-3.example."), Some("10"), None],
        );
        for (src, want) in [
            (
                "{{ .Name }} 60 IN A 127.0.0.1",
                "ip-10-1-2-3.example. 60 IN A 127.0.0.1",
            ),
            (
                "{{ .Name }} 60 {{ .Class }} {{ .Type }} 10.{{ index .Match 1 }}.0.1",
                "ip-10-1-2-3.example. 60 IN A 10.10.0.1",
            ),
            (
                "{{ .Group.ip }}|{{ index .Group \"ip\" }}|{{ .Group.1 }}|{{ .Group.nope }}",
                "10-1-2-3|10-1-2-3|10|<no value>",
            ),
            (
                "a {{- .Zone -}} b|{{ .Remote }}|{{ index .Match 2 }}|",
                "aexample.b|10.0.0.9||",
            ),
        ] {
            assert_eq!(render(&compile(src).unwrap(), &d).unwrap(), want, "{src}");
        }
        assert!(render(&compile("{{ index .Match 3 }}").unwrap(), &d).is_err());
        for bad in [
            "{{ .Meta \"x\" }}",
            "{{ printf \"%s\" .Name }}",
            "{{ .Name ",
            "{{ .Group.a-b }}",
        ] {
            assert!(compile(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn records_read_as_miekg_reads_them() {
        for (text, want) in [
            ("a.example. 60 IN A 10.0.0.1", "a.example. 60 IN A 10.0.0.1"),
            ("a.example. IN 60 AAAA ::1", "a.example. 60 IN AAAA ::1"),
            ("a.example A 10.0.0.1", "a.example. 3600 IN A 10.0.0.1"),
            (
                "x.example. 5 CNAME b.example.",
                "x.example. 5 IN CNAME b.example.",
            ),
            (
                "x.example. 5 TXT \"two words\"",
                "x.example. 5 IN TXT two words",
            ),
            (
                "example. 60 SOA ns.example. h.example. 1 2 3 4 5",
                "example. 60 IN SOA ns.example. h.example. 1 2 3 4 5",
            ),
        ] {
            let r = parse_rr(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(r.to_string().replace('\t', " "), want, "{text}");
        }
        for bad in [
            "",
            "a.example.",
            "a.example. 60 IN BOGUS x",
            "a.example. A not-an-ip",
        ] {
            assert!(parse_rr(bad).is_err(), "{bad}");
        }
    }
}
