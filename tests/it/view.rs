//! `view`: split DNS by the client's network and by query type, through dig over UDP and TCP,
//! with the `view` label on the metrics.

use std::sync::Arc;

use clusterdns::app::App;

use crate::clients;
use crate::support;

async fn serve(corefile: &str) -> Arc<App> {
    let running = support::start(&support::root().join("Corefile"), corefile).await;
    support::until_ready(&running).await;
    running
}

/// `dig +short` from `src` (a loopback address: all of 127/8 is the host's) over UDP and TCP.
async fn dig_from(port: u16, src: &str, args: &[&str]) -> [String; 2] {
    let b = format!("-b{src}");
    let args: Vec<&str> = [&[b.as_str()], args, &["+short"]].concat();
    let [udp, tcp] = clients::dig_both(port, &args).await;
    [udp.trim().to_string(), tcp.trim().to_string()]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn views_split_answers_by_client_and_type() {
    let running = serve(concat!(
        ".:0 {\n    view lab {\n        expr incidr(client_ip(), '127.0.0.2/32')\n    }\n    hosts {\n        1.1.1.1 test\n    }\n}\n",
        ".:0 {\n    view addresses {\n        expr type() in ['AAAA'] && proto() == 'udp'\n    }\n    hosts {\n        2001:db8::2 test\n        2.2.2.2 test\n    }\n}\n",
        ".:0 {\n    hosts {\n        3.3.3.3 test\n        2001:db8::3 test\n    }\n}\n",
    ))
    .await;
    let port = running.listeners()[0].udp.port();
    assert_eq!(
        dig_from(port, "127.0.0.2", &["test"]).await,
        ["1.1.1.1", "1.1.1.1"]
    );
    assert_eq!(
        dig_from(port, "127.0.0.1", &["test"]).await,
        ["3.3.3.3", "3.3.3.3"]
    );
    // AAAA over UDP is the second view's; over TCP, the default block's.
    assert_eq!(
        dig_from(port, "127.0.0.1", &["AAAA", "test"]).await,
        ["2001:db8::2", "2001:db8::3"]
    );
    let metrics = String::from_utf8(running.metrics().render()).unwrap();
    for view in ["lab", "addresses", ""] {
        let label = format!("view=\"{view}\"");
        assert!(
            metrics
                .lines()
                .any(|l| l.starts_with("coredns_dns_requests_total{") && l.contains(&label)),
            "no requests counted with {label}:\n{metrics}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_view_that_admits_nothing_leaves_the_query_to_a_zone_above() {
    let objects = support::root().join("deploy/local/cluster.yaml");
    let running = serve(&format!(
        "cluster.local:0 {{\n    view never {{\n        expr name() matches '^nothing-matches-this\\\\.$'\n    }}\n    template IN A cluster.local {{\n        answer \"{{{{ .Name }}}} 60 IN A 192.0.2.1\"\n    }}\n}}\n.:0 {{\n    kubernetes cluster.local {{\n        objects {}\n    }}\n}}\n",
        objects.display()
    ))
    .await;
    let port = running.listeners()[0].udp.port();
    assert_eq!(
        dig_from(port, "127.0.0.1", &["kubernetes.default.svc.cluster.local"]).await,
        ["10.96.0.1", "10.96.0.1"]
    );
}
