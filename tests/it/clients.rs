//! The real clients people debug with: `dig` and `nslookup` (Debian's bind9-dnsutils).

use std::process::Command;

use crate::support;

pub fn have(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// `dig @127.0.0.1 -p PORT ARGS…` with short timeouts; returns standard output.
pub fn dig(port: u16, args: &[&str]) -> String {
    let out = Command::new("dig")
        .args(["@127.0.0.1", "-p", &port.to_string(), "+time=2", "+tries=1"])
        .args(args)
        .output()
        .expect("dig runs");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `dig` over UDP and then over TCP (`+tcp`), off the runtime's threads: both outputs.
pub async fn dig_both(port: u16, args: &[&str]) -> [String; 2] {
    assert!(have("dig"), "dig is missing (.ci/run installs it)");
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let mut tcp = args.clone();
        tcp.push("+tcp");
        [dig(port, &args), dig(port, &tcp)]
    })
    .await
    .unwrap()
}

fn require(tool: &str) {
    assert!(
        have(tool),
        "{tool} is missing: install bind9-dnsutils (.ci/run does)"
    );
}

async fn demo() -> (std::sync::Arc<clusterdns::app::App>, u16) {
    let running = support::demo().await;
    let port = running.listeners()[0].udp.port();
    (running, port)
}

/// Runs a blocking client without stalling the server's runtime.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dig_answers_every_kind_of_name_over_udp_and_tcp() {
    require("dig");
    let (running, port) = demo().await;
    let table: &[(&[&str], &str)] = &[
        (&["kubernetes.default.svc.cluster.local"], "10.96.0.1"),
        (
            &["frontend.shop.svc.cluster.local", "AAAA"],
            "fd00:10:96::1234",
        ),
        (
            &["_http._tcp.frontend.shop.svc.cluster.local", "SRV"],
            "0 50 80 frontend.shop.svc.cluster.local.",
        ),
        (
            &["-x", "10.96.0.10"],
            "kube-dns.kube-system.svc.cluster.local.",
        ),
        (
            &["storefront.shop.svc.cluster.local"],
            "frontend.shop.svc.cluster.local.\n10.96.12.34",
        ),
        (&["dns-version.cluster.local", "TXT"], "\"1.1.0\""),
        (&["postgres-0.postgres.db.svc.cluster.local"], "10.244.1.30"),
    ];
    for transport in ["+notcp", "+tcp"] {
        for (args, want) in table {
            let mut a: Vec<String> = args.iter().map(|s| s.to_string()).collect();
            a.extend(["+short".to_string(), transport.to_string()]);
            let got =
                blocking(move || dig(port, &a.iter().map(String::as_str).collect::<Vec<_>>()))
                    .await;
            assert_eq!(got.trim(), *want, "dig {args:?} {transport}");
        }
    }
    // Status lines as an operator reads them.
    let full = blocking(move || dig(port, &["nothing.default.svc.cluster.local"])).await;
    assert!(
        full.contains("status: NXDOMAIN") && full.contains("flags: qr aa rd;"),
        "{full}"
    );
    assert!(
        full.contains("IN\tSOA\tns.dns.cluster.local. hostmaster.cluster.local."),
        "{full}"
    );
    let nodata = blocking(move || {
        dig(
            port,
            &["kubernetes.default.svc.cluster.local", "AAAA", "+tcp"],
        )
    })
    .await;
    assert!(
        nodata.contains("status: NOERROR") && nodata.contains("ANSWER: 0"),
        "{nodata}"
    );
    let edns = blocking(move || {
        dig(
            port,
            &["kubernetes.default.svc.cluster.local", "+bufsize=1232"],
        )
    })
    .await;
    assert!(
        edns.contains("EDNS: version: 0") && edns.contains("udp: 1232"),
        "{edns}"
    );
    running.shutdown().await;
}

/// `nslookup -port=PORT ARGS… 127.0.0.1`, off the server's runtime; returns standard output.
async fn nslookup(port: u16, args: &[&str]) -> String {
    let args: Vec<String> = [
        format!("-port={port}"),
        "-timeout=2".into(),
        "-retry=1".into(),
    ]
    .into_iter()
    .chain(args.iter().map(|a| a.to_string()))
    .chain(["127.0.0.1".to_string()])
    .collect();
    blocking(move || {
        let o = Command::new("nslookup")
            .args(&args)
            .output()
            .expect("nslookup runs");
        String::from_utf8_lossy(&o.stdout).into_owned()
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nslookup_from_a_debugging_pod() {
    require("nslookup");
    let (running, port) = demo().await;
    let out = nslookup(port, &["kubernetes.default.svc.cluster.local"]).await;
    assert!(
        out.contains("Name:\tkubernetes.default.svc.cluster.local\nAddress: 10.96.0.1"),
        "{out}"
    );
    let srv = [
        "-type=srv",
        "_tcp-postgres._tcp.postgres.db.svc.cluster.local",
    ];
    let out = nslookup(port, &srv).await;
    assert!(
        out.contains("service = 0 50 5432 postgres-0.postgres.db.svc.cluster.local."),
        "{out}"
    );
    let out = nslookup(port, &["missing.default.svc.cluster.local"]).await;
    assert!(out.contains("NXDOMAIN"), "{out}");
    running.shutdown().await;
}
