//! `kubernetes … { zonal }` (CoreDNS 1.14): `ZONE.pin._zone.SVC.NS.svc.ZONE` and
//! `ZONE.prefer._zone.…` for headless Services, from the zone of each EndpointSlice endpoint,
//! through dig over UDP and TCP.

use std::sync::Arc;

use clusterdns::app::App;

use crate::clients;
use crate::support;

fn corefile(extra: &str) -> String {
    let objects = support::root().join("tests/fixtures/zonal.yaml");
    format!(
        ".:0 {{\n    transfer {{\n        to *\n    }}\n    kubernetes cluster.local in-addr.arpa ip6.arpa {{\n        objects {}\n{extra}\n    }}\n}}\n",
        objects.display()
    )
}

async fn serve(extra: &str) -> Arc<App> {
    let running = support::start(&support::root().join("Corefile"), &corefile(extra)).await;
    support::until_ready(&running).await;
    running
}

/// The answer section over UDP and TCP (which must agree): `TYPE DATA` lines, sorted, and the
/// status; the additional section's lines after them, marked `+`.
async fn dig(running: &App, qtype: &str, name: &str) -> (String, Vec<String>) {
    let port = running.listeners()[0].udp.port();
    let [udp, tcp] = clients::dig_both(
        port,
        &["+noall", "+comments", "+answer", "+additional", qtype, name],
    )
    .await;
    let read = |out: &str| {
        let status = out
            .split("status: ")
            .nth(1)
            .and_then(|r| r.split(',').next())
            .unwrap_or("no answer")
            .to_string();
        let mut extra = false;
        let mut lines = Vec::new();
        for l in out.lines() {
            if l.starts_with(";; ADDITIONAL") {
                extra = true;
            }
            if l.is_empty() || l.starts_with(';') {
                continue;
            }
            let f: Vec<&str> = l.split_whitespace().collect();
            let line = format!("{} {} {}", f[0], f[3], f[4..].join(" "));
            lines.push(if extra { format!("+{line}") } else { line });
        }
        lines.sort();
        (status, lines)
    };
    let (u, t) = (read(&udp), read(&tcp));
    assert_eq!(u, t, "{qtype} {name}: UDP and TCP differ");
    u
}

/// The addresses an A or AAAA answer carries, sorted, with its status.
async fn addrs(running: &App, qtype: &str, name: &str) -> (String, Vec<String>) {
    let (status, lines) = dig(running, qtype, name).await;
    let addrs = lines
        .iter()
        .map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            assert_eq!(f[0], name, "owner of {l}");
            f[2].to_string()
        })
        .collect();
    (status, addrs)
}

const DB: &str = "_zone.db.prod.svc.cluster.local.";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zonal_names_select_the_endpoints_of_one_zone() {
    let r = &serve("        zonal").await;
    let ok = |v: &[&str]| {
        (
            "NOERROR".to_string(),
            v.iter().map(|s| s.to_string()).collect(),
        )
    };
    let nodata = ("NOERROR".to_string(), Vec::new());
    let nxdomain = ("NXDOMAIN".to_string(), Vec::new());

    // pin: the ready endpoints in that zone only, each family on its own; the endpoint that
    // is not ready, and the one whose slice names no zone, never.
    let n = format!("us-west-2a.pin.{DB}");
    assert_eq!(addrs(r, "A", &n).await, ok(&["10.1.0.1"]));
    assert_eq!(addrs(r, "AAAA", &n).await, ok(&["fd00::1"]));
    let n = format!("us-west-2b.pin.{DB}");
    assert_eq!(addrs(r, "A", &n).await, ok(&["10.1.0.2"]));
    assert_eq!(addrs(r, "AAAA", &n).await, nodata);
    // A zone with dots in its value is every label left of the directive, in any case.
    let n = format!("corp.example.com.pin.{DB}");
    assert_eq!(addrs(r, "A", &n).await, ok(&["10.1.0.3"]));
    let n = format!("US-WEST-2A.PIN.{DB}");
    assert_eq!(dig(r, "A", &n).await.1.len(), 1);
    // A zone no endpoint is in: NODATA, for every type.
    let n = format!("us-east-1a.pin.{DB}");
    assert_eq!(addrs(r, "A", &n).await, nodata);
    assert_eq!(addrs(r, "AAAA", &n).await, nodata);
    assert_eq!(dig(r, "SRV", &n).await, nodata);
    let n = format!("corp.pin.{DB}");
    assert_eq!(addrs(r, "A", &n).await, nodata);
    // Other types: NODATA.
    assert_eq!(dig(r, "TXT", &format!("us-west-2a.pin.{DB}")).await, nodata);

    // prefer: the zone's endpoints where it has some, else every ready endpoint.
    let n = format!("us-west-2b.prefer.{DB}");
    assert_eq!(addrs(r, "A", &n).await, ok(&["10.1.0.2"]));
    let n = format!("us-east-1a.prefer.{DB}");
    assert_eq!(
        addrs(r, "A", &n).await,
        ok(&["10.1.0.1", "10.1.0.2", "10.1.0.3", "10.1.0.4"])
    );
    assert_eq!(addrs(r, "AAAA", &n).await, ok(&["fd00::1"]));
    let n = format!("a.b.c.prefer.{DB}");
    assert_eq!(addrs(r, "A", &n).await.1.len(), 4);

    // SRV is filtered at the endpoints too: the zone's targets, and their addresses as glue.
    let n = format!("us-west-2a.pin.{DB}");
    assert_eq!(
        dig(r, "SRV", &n).await,
        ok(&[
            "+db-0.db.prod.svc.cluster.local. A 10.1.0.1",
            "+db-0.db.prod.svc.cluster.local. AAAA fd00::1",
            &format!("{n} SRV 0 50 5432 db-0.db.prod.svc.cluster.local."),
        ])
    );
    let n = format!("nowhere.prefer.{DB}");
    let (_, srv) = dig(r, "SRV", &n).await;
    assert_eq!(
        srv.iter().filter(|l| l.contains(" SRV ")).count(),
        4,
        "{srv:#?}"
    );

    // Not zonal names: ClusterIP and ExternalName Services, a Service that does not exist, no
    // zone, an unknown directive, the name the zonal names hang from.
    for n in [
        "us-west-2a.pin._zone.web.prod.svc.cluster.local.",
        "us-west-2a.prefer._zone.web.prod.svc.cluster.local.",
        "us-west-2a.pin._zone.ext.prod.svc.cluster.local.",
        "us-west-2a.pin._zone.nope.prod.svc.cluster.local.",
        "us-west-2a.pin._zone.db.nope.svc.cluster.local.",
        "pin._zone.db.prod.svc.cluster.local.",
        "_zone.db.prod.svc.cluster.local.",
        "us-west-2a.hint._zone.db.prod.svc.cluster.local.",
    ] {
        assert_eq!(dig(r, "A", n).await, nxdomain, "{n}");
    }
    // A headless Service without ready endpoints exists: its zonal names are NODATA.
    let n = "us-west-2a.prefer._zone.empty.prod.svc.cluster.local.";
    assert_eq!(dig(r, "A", n).await, nodata);
    // The plain names are as they were.
    let (_, all) = addrs(r, "A", "db.prod.svc.cluster.local.").await;
    assert_eq!(all.len(), 4);

    // Zonal names are answered, not transferred.
    let port = r.listeners()[0].udp.port();
    let axfr = tokio::task::spawn_blocking(move || {
        clients::dig(port, &["+noall", "+answer", "AXFR", "cluster.local"])
    })
    .await
    .unwrap();
    assert!(axfr.contains("db-0.db.prod.svc.cluster.local."), "{axfr}");
    assert!(!axfr.contains("_zone"), "{axfr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_zonal_the_names_do_not_exist() {
    let r = &serve("").await;
    for n in [
        format!("us-west-2a.pin.{DB}"),
        format!("us-east-1a.prefer.{DB}"),
    ] {
        assert_eq!(dig(r, "A", &n).await, ("NXDOMAIN".to_string(), Vec::new()));
    }
}
