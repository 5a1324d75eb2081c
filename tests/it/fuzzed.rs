//! Inputs the fuzzers found, kept as regression tests (see fuzz/README.md).

use std::path::Path;

use hickory_proto::op::Message;

use clusterdns::chain::Transport;
use clusterdns::cluster::file::{Filters, decode};

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
    let dir = support::root().join("deploy/local");
    let text = std::fs::read_to_string(dir.join("Corefile"))
        .unwrap()
        .replace(".:1053", ".:0");
    let running = support::start(&dir.join("Corefile"), &text).await;
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

/// objects: YAML counts a lone carriage return as a line break, so positions in a file with
/// old Mac line endings are counted that way (the fuzz property counted only \n).
#[test]
fn yaml_positions_count_a_lone_carriage_return_as_a_line() {
    let text = "kind: List\ritems:\r- kind: Service\r  metadata: {name: x\r";
    let e = decode(Path::new("objs.yaml"), text, &Filters::default()).unwrap_err();
    let line = e.line.expect("a line");
    assert!((3..=5).contains(&line), "{e}");
}
