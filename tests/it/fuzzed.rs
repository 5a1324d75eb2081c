//! Inputs the fuzzers found, kept as regression tests (see fuzz/README.md).

use std::path::Path;

use hickory_proto::op::Message;

use clusterdns::cluster::source::Filters;
use clusterdns::cluster::source::file::decode;
use clusterdns::plugin::Transport;

use crate::support;

/// message: a question whose name ends in a compression pointer into the header (offset 2).
/// hickory reads it; echoed byte for byte, the pointer hit our answer's flags and the answer
/// did not parse. The question is now written out again when it holds a pointer.
const POINTER_INTO_HEADER: &[u8] = &[
    0x00, 0x05, 0x01, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x05, 0x5f, 0x68, 0x74,
    0x74, 0x70, 0x04, 0x5f, 0x74, 0x63, 0x72, 0x08, 0x66, 0x72, 0x6f, 0x6e, 0x74, 0x65, 0x6e, 0x64,
    0x04, 0x73, 0x68, 0x6f, 0x70, 0x03, 0x73, 0xb7, 0xc7, 0xc0, 0x02, 0x74, 0x73, 0x6c, 0x3a, 0x03,
    0x00, 0x00, 0x00, 0x09, 0x00, 0x00, 0x00, 0x9a, 0xca, 0x00, 0x6c, 0x6f, 0x63, 0x61, 0x6c, 0x00,
    0x00, 0x61, 0x00, 0x01,
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_question_with_a_pointer_into_the_header_is_echoed_readably() {
    let running = support::demo().await;
    let port = running.listeners()[0].port;
    let asked = Message::from_vec(POINTER_INTO_HEADER).expect("hickory reads the query");
    for answer in [
        support::in_process(&running, port, POINTER_INTO_HEADER).await,
        support::ask(&running, port, POINTER_INTO_HEADER, Transport::Udp).await,
        support::ask(&running, port, POINTER_INTO_HEADER, Transport::Tcp).await,
    ] {
        let answer = answer.expect("an answer");
        let m = Message::from_vec(&answer).expect("the answer parses");
        assert_eq!(m.metadata.id, 5);
        assert!(m.queries[0].name().eq_case(asked.queries[0].name()));
        assert_eq!(m.queries[0].query_type(), asked.queries[0].query_type());
    }
    running.shutdown().await;
}

/// message: five questions (FORMERR), one ending in a pointer into the header. Written out
/// again, the later questions were compressed against the scratch buffer, so their pointers
/// counted from the wrong place; they are now written uncompressed.
const FIVE_QUESTIONS_WITH_POINTERS: &[u8] = &[
    0x00, 0x48, 0x07, 0x01, 0x00, 0x05, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00,
    0x00, 0x00, 0x00, 0x3c, 0x00, 0x07, 0x01, 0x30, 0x01, 0x30, 0x01, 0x30, 0x01, 0x30, 0x03, 0x00,
    0x00, 0x00, 0x01, 0x30, 0x01, 0x30, 0x01, 0x30, 0x01, 0x30, 0x01, 0x30, 0x01, 0x30, 0x01, 0x60,
    0x30, 0x01, 0x30, 0x01, 0x30, 0x01, 0x30, 0x01, 0x30, 0x01, 0x30, 0x11, 0x30, 0x01, 0x30, 0x01,
    0x30, 0x01, 0x30, 0x01, 0x30, 0x01, 0x30, 0x01, 0x30, 0x01, 0x30, 0x01, 0x30, 0x01, 0x30, 0x01,
    0x64, 0x01, 0x66, 0x03, 0x69, 0x70, 0x36, 0x04, 0x61, 0x72, 0x70, 0x61, 0x00, 0x00, 0x0c, 0xb7,
    0xc7, 0xc0, 0x02, 0x00, 0x00, 0x00, 0x07, 0x01, 0x30, 0x01, 0x30, 0x01, 0x30, 0x01, 0x30, 0x03,
    0x00, 0x00, 0x00, 0x01, 0x30, 0x01, 0x30, 0x01, 0x30, 0x01, 0x30, 0x01, 0x64, 0x01, 0x66, 0x03,
    0x69, 0x70, 0x36, 0x04, 0x61, 0x72, 0x70, 0x61, 0x00, 0x00, 0x0c, 0xb7, 0xc7, 0xc0, 0x02, 0x00,
    0x00, 0x00, 0x07, 0x01, 0x30, 0x01, 0x30, 0x01, 0x30, 0x01, 0x30, 0x03, 0x00, 0x00, 0x00, 0x01,
    0x30, 0x01, 0x30, 0x01, 0x30, 0x01, 0x30, 0x01, 0x30, 0x01, 0x30, 0x01, 0x30, 0x01, 0x9a, 0xca,
    0x00, 0x00, 0x00, 0xc8, 0x00, 0x00, 0x00, 0x01, 0x00, 0x30, 0x01, 0x00, 0x00, 0x9a, 0x3c, 0x00,
    0x00, 0x01, 0x30, 0x01, 0x30, 0x01, 0x30, 0x01, 0x30, 0x11, 0x30, 0x01, 0x30, 0x01, 0x30, 0x01,
    0x30, 0x01, 0x30, 0x01, 0x30, 0x01, 0x30, 0x25, 0x01, 0x30, 0x01, 0x30, 0x00, 0x01, 0x30, 0x01,
    0x64, 0x01, 0x66, 0x03, 0x69, 0x70, 0x05, 0x00, 0x3c, 0xca, 0x9a, 0x00,
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_questions_with_pointers_are_echoed_readably() {
    let running = support::demo().await;
    let port = running.listeners()[0].port;
    let answer = support::in_process(&running, port, FIVE_QUESTIONS_WITH_POINTERS)
        .await
        .expect("an answer");
    if let Err(e) = Message::from_vec(&answer) {
        let hex: Vec<String> = answer.iter().map(|b| format!("{b:02x}")).collect();
        panic!("the answer does not parse: {e}\n{}", hex.join(" "));
    }
    running.shutdown().await;
}

/// objects: YAML counts a lone carriage return as a line break, so positions in a file with
/// old Mac line endings are counted that way (the fuzz property counted only \n).
#[test]
fn yaml_positions_count_a_lone_carriage_return_as_a_line() {
    let text = "kind: List\ritems:\r- kind: Service\r  metadata: {name: x\r";
    let e = decode(Path::new("objs.yaml"), text, &Filters::default()).unwrap_err();
    let line = e.line.expect("a line");
    assert!((3..=5).contains(&line), "{e}");
}

/// upstream: an upstream answer whose header says UPDATE, holding a record with empty data.
/// hickory reads such a record only in an UPDATE message; passed on in our answer (a QUERY), it
/// made the answer unreadable. An upstream answer must now have the query's opcode, and records
/// with empty data are dropped.
const UPDATE_OPCODE_ANSWER: &[u8] = &[
    0x23, 0x81, 0x28, 0x00, 0x21, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x2f, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x94, 0x00, 0x00, 0x00,
    0x00,
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_answer_with_another_opcode_is_not_passed_on() {
    use crate::upstream::{FakeUpstream, Mode};
    use hickory_proto::op::ResponseCode;
    use hickory_proto::rr::RecordType;
    let up = FakeUpstream::start(std::net::Ipv4Addr::LOCALHOST).await;
    up.state.set_mode(Mode::Raw(UPDATE_OPCODE_ANSWER.to_vec()));
    let running = support::start(
        Path::new("/tmp/Corefile"),
        &format!(".:0 {{\n cache 30\n forward . {}\n}}\n", up.addr),
    )
    .await;
    let port = running.listeners()[0].port;
    let q = support::query("n0.example.", RecordType::A, None)
        .to_vec()
        .unwrap();
    for _ in 0..2 {
        let answer = support::in_process(&running, port, &q)
            .await
            .expect("an answer");
        let m = Message::from_vec(&answer).expect("the answer parses");
        assert_eq!(m.metadata.response_code, ResponseCode::FormErr);
    }
}

/// hosts: `fe80::1%eth0 link * c`, a line whose names include `*` (the root's wildcard), found
/// once hosts learned wildcard owners. The fuzzer's property said every address answers its
/// reverse name; a wildcard gives none (as CoreDNS 1.14), so the property now leaves wildcards
/// out, and this holds what they do answer.
#[test]
fn a_wildcard_owner_in_a_hosts_file_answers_through_the_wildcard_and_has_no_ptr() {
    use clusterdns::plugin::hosts::config::HostsConfig;
    use clusterdns::plugin::hosts::{Table, parse_file};
    use clusterdns::plugin::shared::fallthrough::Fallthrough;
    use hickory_proto::rr::{LowerName, Name, RecordType};

    let text = "127.0.0.1\tlo\u{1} c1lhnst\n::1 localhost ip6-localhost ip6-loopback\nfe80::1%eth0 link * c\n";
    let (entries, _) = parse_file(text);
    let cfg = HostsConfig {
        path: "/etc/hosts".into(),
        pos: clusterdns::corefile::Pos {
            file: "fuzz".into(),
            line: 1,
            col: 1,
        },
        zones: vec![Name::root()],
        inline: Vec::new(),
        ttl: 60,
        reload: std::time::Duration::ZERO,
        reverse: true,
        fallthrough: Fallthrough::Never,
        fallthrough_unsupported: false,
    };
    let table = Table::build(&entries, &cfg);
    let ask = |name: &str, qtype| {
        table
            .lookup(&LowerName::from(Name::from_ascii(name).unwrap()), qtype)
            .flatten()
            .map(|r| r.iter().map(|r| r.data.to_string()).collect::<Vec<_>>())
    };
    // `*` read as `*.`: one label below the root, `c.` and `link.` themselves explicit.
    assert_eq!(
        ask("anything.", RecordType::AAAA),
        Some(vec!["fe80::1".to_string()])
    );
    assert_eq!(
        ask("link.", RecordType::AAAA),
        Some(vec!["fe80::1".to_string()])
    );
    assert_eq!(ask("deeper.name.", RecordType::AAAA), None);
    // The wildcard owner itself, as the fuzzer asks it, and never the apex.
    assert_eq!(
        ask("*.", RecordType::AAAA),
        Some(vec!["fe80::1".to_string()])
    );
    assert_eq!(ask(".", RecordType::AAAA), None);
    // The address's reverse name names the explicit owners only.
    let ptr = ask(
        "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.e.f.ip6.arpa.",
        RecordType::PTR,
    )
    .expect("a PTR");
    assert!(ptr.iter().all(|p| p != "*."), "{ptr:?}");
}
