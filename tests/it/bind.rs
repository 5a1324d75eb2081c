//! `bind`: blocks listen only on the addresses they name; one zone and port may be served by
//! different blocks at different addresses.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use hickory_proto::op::Message;
use hickory_proto::rr::RecordType;

use crate::support;

async fn a_at(ip: Ipv4Addr, port: u16, name: &str) -> Option<Vec<String>> {
    let q = support::query(name, RecordType::A, None).to_vec().unwrap();
    let bytes = support::udp(SocketAddr::new(IpAddr::V4(ip), port), &q).await?;
    let msg = Message::from_vec(&bytes).ok()?;
    Some(msg.answers.iter().map(|r| r.data.to_string()).collect())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocks_answer_only_on_their_addresses() {
    let port = crate::cli::free_port();
    let corefile = format!(
        ".:{port} {{\n    bind 127.0.0.1\n    template IN A {{\n        answer \"{{{{ .Name }}}} 60 IN A 10.0.0.1\"\n    }}\n}}\n\
         .:{port} {{\n    bind 127.0.0.2 127.0.0.3 {{\n        except 127.0.0.3\n    }}\n    template IN A {{\n        answer \"{{{{ .Name }}}} 60 IN A 10.0.0.2\"\n    }}\n}}\n"
    );
    let running = support::start(&support::root().join("Corefile"), &corefile).await;
    let mut binds: Vec<String> = running
        .listeners()
        .iter()
        .map(|l| format!("{:?} {}", l.bind, l.udp))
        .collect();
    binds.sort();
    assert_eq!(
        binds,
        [
            format!("Some(127.0.0.1) 127.0.0.1:{port}"),
            format!("Some(127.0.0.2) 127.0.0.2:{port}")
        ]
    );
    assert_eq!(
        a_at(Ipv4Addr::new(127, 0, 0, 1), port, "x.example.")
            .await
            .unwrap(),
        ["10.0.0.1"]
    );
    assert_eq!(
        a_at(Ipv4Addr::new(127, 0, 0, 2), port, "x.example.")
            .await
            .unwrap(),
        ["10.0.0.2"]
    );
    // Excepted, and never named: nothing listens there.
    for ip in [Ipv4Addr::new(127, 0, 0, 3), Ipv4Addr::new(127, 0, 0, 4)] {
        assert_eq!(a_at(ip, port, "x.example.").await, None, "{ip}");
    }
    let metrics = String::from_utf8(running.metrics().render()).unwrap();
    for ip in ["127.0.0.1", "127.0.0.2"] {
        let label = format!("server=\"dns://{ip}:{port}\"");
        assert!(
            metrics
                .lines()
                .any(|l| l.starts_with("coredns_dns_requests_total{") && l.contains(&label)),
            "{label} in\n{metrics}"
        );
    }
}
