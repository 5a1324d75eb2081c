//! `rewrite`: the block's rules, in Corefile order, change the question; the rest of the chain
//! answers the changed question; the answer section's names are then changed back by the
//! matched rules' answer rules. The client always sees its own question (the server writes it).
//!
//! A `stop` rule that matched ends the rules; a `continue` rule lets the next ones look at the
//! question as it now is. A name that does not read as a domain name after the rewrite is a
//! SERVFAIL, as in CoreDNS.

pub mod config;

use hickory_proto::op::{LowerQuery, Query};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};
use regex::Regex;

use crate::dns::name;
use crate::plugin::PluginError;
use crate::plugin::rewrite::config::{AnswerRule, Field, NameMatch, RewriteRule};
use crate::plugin::setup::Setup;
use crate::plugin::{Handler, HandlerError, HandlerFuture, Next, RecordSet, Request, Rrs};

const NAME: &str = "rewrite";

pub struct Rewrite {
    rules: Vec<RewriteRule>,
}

/// The question as the rules leave it, and the answer rules they bring.
pub struct Rewritten<'r> {
    pub name: String,
    pub qtype: RecordType,
    pub class: DNSClass,
    pub answer: Vec<&'r AnswerRule>,
}

impl Rewrite {
    pub fn new(rules: Vec<RewriteRule>) -> Self {
        Self { rules }
    }

    /// Runs the rules over a question; `None` when none matched.
    pub fn apply(&self, name: &str, qtype: RecordType, class: DNSClass) -> Option<Rewritten<'_>> {
        let mut q = Rewritten {
            name: name.to_string(),
            qtype,
            class,
            answer: Vec::new(),
        };
        let mut matched = false;
        for rule in &self.rules {
            if !rewrite_one(&rule.field, &mut q) {
                continue;
            }
            matched = true;
            q.answer.extend(rule.answer.iter());
            if !rule.continue_ {
                break;
            }
        }
        matched.then_some(q)
    }
}

fn rewrite_one(field: &Field, q: &mut Rewritten) -> bool {
    match field {
        Field::Type(from, to) if q.qtype == *from => q.qtype = *to,
        Field::Class(from, to) if q.class == *from => q.class = *to,
        Field::Name(m) => {
            let name = q.name.as_str();
            let new = match m {
                NameMatch::Exact(from, to) => (name == from).then(|| to.clone()),
                NameMatch::Prefix(from, to) => name
                    .strip_prefix(from.as_str())
                    .map(|rest| format!("{to}{rest}")),
                NameMatch::Suffix(from, to) => name
                    .strip_suffix(from.as_str())
                    .map(|rest| format!("{rest}{to}")),
                NameMatch::Substring(from, to) => name
                    .contains(from.as_str())
                    .then(|| name.replace(from.as_str(), to)),
                NameMatch::Regex(re, to) => re.captures(name).map(|c| fill(to, &c)),
            };
            match new {
                Some(n) => q.name = n,
                None => return false,
            }
        }
        _ => return false,
    }
    true
}

/// `{N}` in `template` replaced by the Nth group of the match.
fn fill(template: &str, caps: &regex::Captures) -> String {
    let mut out = template.to_string();
    for (i, g) in caps.iter().enumerate() {
        out = out.replace(&format!("{{{i}}}"), g.map_or("", |m| m.as_str()));
    }
    out
}

fn by_regex(re: &Regex, with: &str, text: &str) -> Option<String> {
    re.captures(text).map(|c| fill(with, &c))
}

/// The answer rules applied to one record: its owner, and the names in its data.
pub fn revert(record: &mut Record, rules: &[&AnswerRule]) {
    let owner = name::to_presentation(&record.name.to_lowercase());
    let mut new_owner = None;
    for rule in rules {
        let current = new_owner.as_deref().unwrap_or(owner.as_str());
        match rule {
            AnswerRule::Name(re, with) => {
                if let Some(n) = by_regex(re, with, current) {
                    new_owner = Some(n);
                }
            }
            AnswerRule::Auto(re, with) => {
                if re.is_match(current) {
                    new_owner = Some(re.replace_all(current, regex::NoExpand(with)).into_owned());
                }
            }
            AnswerRule::Value(re, with) => {
                let target = match &mut record.data {
                    RData::CNAME(n) => Some(&mut n.0),
                    RData::NS(n) => Some(&mut n.0),
                    RData::PTR(n) => Some(&mut n.0),
                    RData::ANAME(n) => Some(&mut n.0),
                    RData::MX(mx) => Some(&mut mx.exchange),
                    RData::SRV(srv) => Some(&mut srv.target),
                    _ => None,
                };
                if let Some(target) = target {
                    let text = name::to_presentation(&target.to_lowercase());
                    if let Some(n) =
                        by_regex(re, with, &text).and_then(|t| name::from_presentation(&t))
                    {
                        *target = n;
                    }
                }
            }
        }
    }
    if let Some(n) = new_owner.and_then(|t| name::from_presentation(&t)) {
        record.name = n;
    }
}

impl Handler for Rewrite {
    fn name(&self) -> &'static str {
        NAME
    }

    fn serve<'a>(&'a self, req: &'a Request<'a>, next: Next<'a>) -> HandlerFuture<'a> {
        Box::pin(async move {
            let original = name::to_presentation(&Name::from(req.query.name()));
            let Some(q) = self.apply(&original, req.query.query_type(), req.query.query_class())
            else {
                return next.serve(req).await;
            };
            let Some(name) = name::from_presentation(&q.name) else {
                return Err(HandlerError::failed(
                    NAME,
                    format!("invalid name after rewrite: {}", q.name),
                ));
            };
            let mut query = Query::query(name.clone(), q.qtype);
            query.set_query_class(q.class);
            let lower = LowerQuery::from(query);
            let inner = Request {
                query: &lower,
                ..*req
            };
            let mut reply = next.serve(&inner).await?;
            // Records prepared for "the question" would be written with the client's name; as in
            // CoreDNS, the answer carries the rewritten name unless an answer rule changes it.
            let renamed = q.name != original;
            if (renamed || !q.answer.is_empty()) && !reply.answers.is_empty() {
                let mut records: Vec<Record> = reply
                    .answers
                    .iter()
                    .flat_map(|set| set.records(&name))
                    .collect();
                for r in &mut records {
                    revert(r, &q.answer);
                }
                reply.answers = vec![Rrs::Records(RecordSet::from(records))];
            }
            Ok(reply)
        })
    }
}

/// Puts `rewrite` into the block being set up.
pub fn setup(cfg: &config::RewriteConfig, s: &mut Setup<'_>) -> Result<(), PluginError> {
    s.handler(Rewrite::new(cfg.rules.clone()));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::LoadOptions;
    use crate::config::from_str;
    use crate::plugin::registry::PluginConfig;

    fn rules(lines: &str) -> Rewrite {
        let cfg = from_str(
            "t",
            &format!(".:53 {{\n{lines}\n}}"),
            &LoadOptions::default(),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        Rewrite::new(
            cfg.servers[0]
                .plugins
                .iter()
                .find_map(|p| match p {
                    PluginConfig::Rewrite(r) => Some(r.rules.clone()),
                    _ => None,
                })
                .unwrap_or_default(),
        )
    }

    fn name_of(rw: &Rewrite, name: &str) -> Option<String> {
        rw.apply(name, RecordType::A, DNSClass::IN).map(|q| q.name)
    }

    #[test]
    fn match_types_as_coredns_reads_them() {
        let rw = rules(
            "rewrite name old.example.org new.example.org\n\
             rewrite name prefix web www\n\
             rewrite name suffix .corp.example .svc.cluster.local\n\
             rewrite name substring mid in\n\
             rewrite name regex ^(.*)-v([0-9])\\.app\\.$ {1}.v{2}.app",
        );
        assert_eq!(
            name_of(&rw, "old.example.org.").as_deref(),
            Some("new.example.org.")
        );
        assert_eq!(
            name_of(&rw, "OLD.example.org."),
            None,
            "names are matched lower-cased"
        );
        // A prefix and a substring end at a label boundary (CoreDNS adds the final dot).
        assert_eq!(name_of(&rw, "web.shop.").as_deref(), Some("www.shop."));
        assert_eq!(name_of(&rw, "webshop.example."), None);
        assert_eq!(
            name_of(&rw, "api.corp.example.").as_deref(),
            Some("api.svc.cluster.local.")
        );
        assert_eq!(name_of(&rw, "a.mid.b.").as_deref(), Some("a.in.b."));
        assert_eq!(name_of(&rw, "api-v2.app.").as_deref(), Some("api.v2.app."));
        assert_eq!(name_of(&rw, "nothing.here."), None);
    }

    #[test]
    fn stop_ends_the_rules_continue_goes_on() {
        let rw = rules(
            "rewrite continue name a.example b.example\nrewrite name b.example c.example\nrewrite name c.example d.example",
        );
        assert_eq!(name_of(&rw, "a.example.").as_deref(), Some("c.example."));
        let rw = rules("rewrite type ANY HINFO\nrewrite class CH IN");
        let q = rw.apply("x.", RecordType::ANY, DNSClass::CH).unwrap();
        assert_eq!(
            (q.qtype, q.class),
            (RecordType::HINFO, DNSClass::CH),
            "stop"
        );
    }

    #[test]
    fn answers_are_reverted() {
        let rw = rules(
            "rewrite stop {\n name regex (.*)\\.example\\.com {1}.default.svc.cluster.local\n answer name (.*)\\.default\\.svc\\.cluster\\.local {1}.example.com\n answer value (.*)\\.default\\.svc\\.cluster\\.local {1}.example.com\n}\n\
             rewrite name suffix .lab .svc.cluster.local answer auto",
        );
        let q = rw
            .apply("web.example.com.", RecordType::A, DNSClass::IN)
            .unwrap();
        assert_eq!(q.name, "web.default.svc.cluster.local.");
        let mut a = Record::from_rdata(
            Name::from_ascii("web.default.svc.cluster.local.").unwrap(),
            5,
            RData::CNAME(hickory_proto::rr::rdata::CNAME(
                Name::from_ascii("db.default.svc.cluster.local.").unwrap(),
            )),
        );
        revert(&mut a, &q.answer);
        assert_eq!(
            a.to_string().replace('\t', " "),
            "web.example.com. 5 IN CNAME db.example.com."
        );
        let q = rw
            .apply("db.shop.lab.", RecordType::A, DNSClass::IN)
            .unwrap();
        assert_eq!(q.name, "db.shop.svc.cluster.local.");
        let mut a = Record::from_rdata(
            Name::from_ascii("db.shop.svc.cluster.local.").unwrap(),
            5,
            RData::A("10.0.0.1".parse().unwrap()),
        );
        revert(&mut a, &q.answer);
        assert_eq!(a.name.to_ascii(), "db.shop.lab.");
    }
}
