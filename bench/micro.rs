//! Micro-benchmarks (criterion) of one query's work, in-process, on a generated cluster of
//! 10,000 Services (`bench/cluster.rs`, as bench/run serves):
//!
//! - `index/get`: the names map lookup of one Service name;
//! - `answer/*`: [`Router::handle_bytes`], the whole path a UDP query takes once read from
//!   the socket (parse, route, the `kubernetes` handler, encode, metrics), for an A hit, an
//!   SRV of a named port, AAAA NODATA, a search-path NXDOMAIN and a PTR;
//! - `encode/*`: [`encode`] alone, the answer already built.
//!
//! ```text
//! cargo bench --bench micro [-- FILTER]
//! ```

mod cluster;

use std::hint::black_box;
use std::net::SocketAddr;
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use hickory_proto::op::{Message, Query};
use hickory_proto::rr::{LowerName, Name, RecordType};
use hickory_server::net::xfer::Protocol;
use hickory_server::server::Request as HickoryRequest;

use clusterdns::app::{App, StartOptions};
use clusterdns::config::{self, LoadOptions};
use clusterdns::plugin::Transport;
use clusterdns::server::Router;
use clusterdns::server::encode::encode;

const SERVICES: usize = 10_000;

struct World {
    rt: tokio::runtime::Runtime,
    router: Arc<Router>,
    objects: std::path::PathBuf,
    _app: Arc<App>,
    _dir: tempfile::TempDir,
}

fn world() -> World {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let objects = dir.path().join("cluster.json");
    let list = serde_json::json!({"apiVersion": "v1", "kind": "List",
                                  "items": cluster::cluster(SERVICES, SERVICES * 21 / 10)});
    std::fs::write(&objects, serde_json::to_vec(&list).unwrap()).unwrap();

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let text = format!(
        ".:0 {{\n kubernetes cluster.local in-addr.arpa {{\n  objects {}\n  pods insecure\n }}\n}}\n",
        objects.display()
    );
    let cfg = config::from_str("micro", &text, &LoadOptions::default()).unwrap();
    let opts = StartOptions {
        bind: Some([127, 0, 0, 1].into()),
        ..StartOptions::default()
    };
    let app = rt.block_on(App::start(&cfg, opts)).unwrap();
    let router = app.router(0).unwrap();

    World {
        rt,
        router,
        objects,
        _app: app,
        _dir: dir,
    }
}

fn query(name: &str, rtype: RecordType) -> Vec<u8> {
    query_name(Name::from_ascii(name).unwrap(), rtype)
}

fn query_name(name: Name, rtype: RecordType) -> Vec<u8> {
    let mut msg = Message::query();
    msg.metadata.id = 0x1234;
    msg.metadata.recursion_desired = true;
    msg.add_query(Query::query(name, rtype));
    msg.to_vec().unwrap()
}

fn benches(c: &mut Criterion) {
    let w = world();
    let src: SocketAddr = "10.1.2.3:40000".parse().unwrap();
    // svc-1 is a ClusterIP Service (every tenth one is headless), in ns-1.
    let cases = [
        (
            "a_hit",
            query("svc-1.ns-1.svc.cluster.local.", RecordType::A),
        ),
        (
            "srv_named_port",
            query("_http._tcp.svc-1.ns-1.svc.cluster.local.", RecordType::SRV),
        ),
        (
            "aaaa_nodata",
            query("svc-1.ns-1.svc.cluster.local.", RecordType::AAAA),
        ),
        (
            "nxdomain_search_path",
            query(
                "svc-1.ns-1.svc.cluster.local.ns-1.svc.cluster.local.",
                RecordType::A,
            ),
        ),
        (
            "ptr",
            query_name(
                clusterdns::dns::name::reverse_name(cluster::ip(1, 96).parse().unwrap()),
                RecordType::PTR,
            ),
        ),
    ];
    for (_, q) in &cases {
        let answer =
            w.rt.block_on(w.router.handle_bytes(q, src, Transport::Udp))
                .expect("an answer");
        let msg = Message::from_vec(&answer).unwrap();
        assert!(
            !msg.answers.is_empty() || !msg.authorities.is_empty(),
            "every case has an answer or a SOA"
        );
    }

    // An index of the same objects, as the server's `kubernetes` handler holds it.
    let index = cluster::index(&w.objects, 5);
    let name = LowerName::new(&Name::from_ascii("svc-1.ns-1.svc.cluster.local.").unwrap());
    c.bench_function("index/get", |b| {
        b.iter(|| black_box(index.get(black_box(&name))))
    });

    let mut answer = c.benchmark_group("answer");
    for (label, q) in &cases {
        answer.bench_function(*label, |b| {
            b.iter(|| {
                w.rt.block_on(w.router.handle_bytes(black_box(q), src, Transport::Udp))
            })
        });
    }
    answer.finish();

    let mut enc = c.benchmark_group("encode");
    for (label, q) in &cases[..2] {
        let request = HickoryRequest::from_bytes(q.clone(), src, Protocol::Udp).unwrap();
        let response =
            w.rt.block_on(w.router.respond(&request, Transport::Udp, q.len()));
        enc.bench_function(*label, |b| {
            b.iter(|| encode(black_box(&request), black_box(&response), 512))
        });
    }
    enc.finish();
}

criterion_group!(micro, benches);
criterion_main!(micro);
