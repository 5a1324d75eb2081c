//! Bytes → a DNS name (wire format, as a client sends it) → `template`'s rendering of records
//! that quote the name → the record reader, and `rewrite`'s rules over the name and back.
//! Properties: no panic; a record whose owner is `{{ .Name }}` reads back with exactly the name
//! asked (escapes survive the round trip); a suffix rewrite with `answer auto` gives the asked
//! name back.
#![no_main]

use std::collections::HashMap;

use hickory_proto::rr::{LowerName, Name};
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder};
use libfuzzer_sys::fuzz_target;

use clusterdns::plugin::rewrite::config::parse_rule as rewrite_rule;
use clusterdns::plugin::template::config::compile;
use clusterdns::corefile::{Directive, Pos, Token};
use clusterdns::plugin::rewrite::{Rewrite, revert};
use clusterdns::plugin::template::{Data, parse_rr, render};

fn directive(words: &[&str]) -> Directive {
    let token = |t: &str| Token {
        text: t.to_string(),
        pos: Pos {
            file: "fuzz".into(),
            line: 1,
            col: 1,
        },
        end_line: 1,
        quoted: false,
    };
    Directive {
        name: token("rewrite"),
        args: words.iter().map(|w| token(w)).collect(),
        block: None,
    }
}

fn rewriter() -> &'static Rewrite {
    static R: std::sync::OnceLock<Rewrite> = std::sync::OnceLock::new();
    R.get_or_init(|| {
        let rules = [
            &[
                "continue",
                "name",
                "regex",
                "^(.*)\\.corp\\.$",
                "{1}.svc.",
                "answer",
                "name",
                "^(.*)\\.svc\\.$",
                "{1}.corp.",
            ][..],
            &["continue", "name", "substring", "a", "b"][..],
            &[
                "name",
                "suffix",
                ".example.",
                ".cluster.local.",
                "answer",
                "auto",
            ][..],
        ];
        Rewrite::new(
            rules
                .iter()
                .map(|w| rewrite_rule(&directive(w)).unwrap())
                .collect(),
        )
    })
}

fuzz_target!(|data: &[u8]| {
    let mut decoder = BinDecoder::new(data);
    let Ok(name) = Name::read(&mut decoder) else {
        return;
    };
    let text = clusterdns::dns::name::to_presentation(&name.to_lowercase());
    static REGEX: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    let regex = REGEX.get_or_init(|| regex::Regex::new(r"^(?P<first>[^.]*)\.(.*)$").unwrap());
    let caps = regex.captures(&text);
    let d = Data {
        name: &text,
        zone: ".",
        class: "IN".into(),
        qtype: "A".into(),
        remote: "10.0.0.1".into(),
        regex: regex.as_str(),
        groups: caps
            .as_ref()
            .map(|c| c.iter().map(|m| m.map(|m| m.as_str())).collect())
            .unwrap_or_default(),
        named: caps
            .as_ref()
            .and_then(|c| c.name("first"))
            .map(|m| ("first", m.as_str()))
            .into_iter()
            .collect::<HashMap<_, _>>(),
    };
    let owner = compile("{{ .Name }} 60 IN A 192.0.2.1").unwrap();
    let rendered = render(&owner, &d).unwrap();
    let record = parse_rr(&rendered).unwrap_or_else(|e| panic!("{rendered:?}: {e}"));
    assert_eq!(
        LowerName::from(&record.name),
        LowerName::from(&name),
        "{rendered:?}"
    );
    if let Some(q) = rewriter().apply(
        &text,
        hickory_proto::rr::RecordType::A,
        hickory_proto::rr::DNSClass::IN,
    ) && let Some(new) = clusterdns::dns::name::from_presentation(&q.name)
    {
        let mut r = hickory_proto::rr::Record::from_rdata(
            new,
            5,
            hickory_proto::rr::RData::A("10.0.0.1".parse().unwrap()),
        );
        revert(&mut r, &q.answer);
        if text.ends_with(".example.") && !text.contains("a.") {
            assert_eq!(
                LowerName::from(&r.name),
                LowerName::from(&name),
                "{text} → {}",
                q.name
            );
        }
    }
    for src in [
        "{{ .Group.first }}.example. 60 IN CNAME {{ .Name }}",
        "x.example. 60 IN TXT \"{{ index .Match 2 }}\"",
        "{{ index .Match 1 }} {{ .Name }} A",
    ] {
        if let Ok(text) = render(&compile(src).unwrap(), &d) {
            let _ = parse_rr(&text);
        }
    }
});
