//! Bytes → the whole request path in-process: parse, route through a chain with the
//! `kubernetes` and `k8s_external` handlers on the demo cluster, encode the answer. The
//! `cluster.local` block is one the fast path serves.
//! Properties: no panic; the fast path, where it answers, answers as the general path does;
//! every answer parses back; its ID and question echo the query's; over
//! UDP it never exceeds the size the client allowed.
#![no_main]

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};

use hickory_proto::op::Message;
use libfuzzer_sys::fuzz_target;

use clusterdns::app::{App, StartOptions};
use clusterdns::plugin::Transport;
use clusterdns::config::{self, LoadOptions};
use clusterdns::server::Router;

struct World {
    rt: tokio::runtime::Runtime,
    router: Arc<Router>,
    _app: Arc<App>,
}

fn world() -> &'static World {
    static W: OnceLock<World> = OnceLock::new();
    W.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let objects = concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/local/cluster.yaml");
        let text = format!(
            ".:0 {{\n errors\n k8s_external k8s.example in-addr.arpa {{\n  headless\n  fallthrough in-addr.arpa\n }}\n kubernetes cluster.local in-addr.arpa ip6.arpa {{\n  objects {objects}\n  pods insecure\n  fallthrough in-addr.arpa ip6.arpa\n }}\n}}\ncluster.local:0 {{\n errors\n kubernetes cluster.local {{\n  objects {objects}\n  pods insecure\n }}\n}}\nexample.org:0 {{\n kubernetes example.org {{\n  objects {objects}\n  pods verified\n  endpoint_pod_names\n }}\n}}\n"
        );
        let cfg = config::from_str("fuzz", &text, &LoadOptions::default()).unwrap();
        let opts = StartOptions {
            bind: Some([127, 0, 0, 1].into()),
            ..StartOptions::default()
        };
        let app = rt.block_on(App::start(&cfg, opts)).unwrap();
        let router = app.router(0).unwrap();
        World { rt, router, _app: app }
    })
}

fuzz_target!(|data: &[u8]| {
    let w = world();
    let src: SocketAddr = "127.0.0.1:5353".parse().unwrap();
    let query = Message::from_vec(data).ok();
    for transport in [Transport::Udp, Transport::Tcp] {
        // Where the fast path answers, the general path answers the same bytes.
        let mut fast = Vec::new();
        if w.router.answer_fast(data, src, transport, &mut fast) {
            let general = w.rt.block_on(w.router.handle_bytes_general(data, src, transport));
            assert_eq!(general.as_deref(), Some(&fast[..]), "the fast and general paths agree");
        }
        let Some(answer) = w.rt.block_on(w.router.handle_bytes(data, src, transport)) else {
            continue;
        };
        let msg = Message::from_vec(&answer).expect("every answer parses back");
        assert_eq!(
            msg.metadata.id,
            u16::from_be_bytes([data[0], data[1]]),
            "the ID is echoed"
        );
        if let Some(q) = &query
            && q.queries.len() == 1
        {
            assert_eq!(msg.queries.len(), 1, "the question is echoed");
            assert!(
                msg.queries[0].name().eq_case(q.queries[0].name()),
                "the question's case is kept"
            );
            assert_eq!(msg.queries[0].query_type(), q.queries[0].query_type());
            assert_eq!(msg.queries[0].query_class(), q.queries[0].query_class());
        }
        if transport == Transport::Udp {
            let allowed = query
                .as_ref()
                .and_then(|q| q.edns.as_ref())
                .map_or(512, |e| usize::from(e.max_payload().max(512)));
            assert!(
                answer.len() <= allowed,
                "{} bytes over UDP where {allowed} were allowed",
                answer.len()
            );
        }
    }
});
