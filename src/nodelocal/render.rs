//! The Corefile node-cache writes: its base template (the `node-local-dns` ConfigMap) with the
//! `__PILLAR__` variables filled in, and a block for each of the kube-dns ConfigMap's
//! `stubDomains`. Pure text in, text out, as node-cache does it, so that a Corefile written
//! for node-cache renders to the same Corefile here.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::Path;

pub const UPSTREAM_SERVERS: &str = "__PILLAR__UPSTREAM__SERVERS__";
pub const CLUSTER_DNS: &str = "__PILLAR__CLUSTER__DNS__";
pub const LOCAL_DNS: &str = "__PILLAR__LOCAL__DNS__";
pub const DNS_SERVER: &str = "__PILLAR__DNS__SERVER__";

/// The stock template's upstream block for `.`, and what node-cache puts in its place when
/// the kube-dns ConfigMap names upstream servers (they are asked over UDP).
const UPSTREAM_TCP_BLOCK: &str =
    "\n    forward . __PILLAR__UPSTREAM__SERVERS__ {\n            force_tcp\n    }\n";
const UPSTREAM_UDP_BLOCK: &str = "\n    forward . __PILLAR__UPSTREAM__SERVERS__\n";

/// What the kube-dns ConfigMap (mounted as a directory, one file per key) says.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KubeDns {
    pub upstream_nameservers: Vec<String>,
    pub stub_domains: BTreeMap<String, Vec<String>>,
}

impl KubeDns {
    /// Reads the mount at `dir`: the files `upstreamNameservers` (a JSON list) and
    /// `stubDomains` (a JSON object of lists). A missing file is an empty key.
    pub fn read(dir: &Path) -> Result<KubeDns, String> {
        let mut out = KubeDns::default();
        let key = |name: &str| -> Result<Option<String>, String> {
            match std::fs::read_to_string(dir.join(name)) {
                Ok(s) if s.trim().is_empty() => Ok(None),
                Ok(s) => Ok(Some(s)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(format!("{}: {e}", dir.join(name).display())),
            }
        };
        if let Some(s) = key("upstreamNameservers")? {
            out.upstream_nameservers = serde_json::from_str(&s).map_err(|e| {
                format!(
                    "{}: {e}; expected a JSON list of addresses, such as [\"8.8.8.8\", \"1.1.1.1:53\"]",
                    dir.join("upstreamNameservers").display()
                )
            })?;
        }
        if let Some(s) = key("stubDomains")? {
            out.stub_domains = serde_json::from_str(&s).map_err(|e| {
                format!(
                    "{}: {e}; expected a JSON object of lists, such as {{\"acme.local\": [\"1.2.3.4\"]}}",
                    dir.join("stubDomains").display()
                )
            })?;
        }
        if out.upstream_nameservers.len() > 3 {
            return Err(format!(
                "{}: {} upstream nameservers; at most 3 are allowed, as kube-dns allows",
                dir.join("upstreamNameservers").display(),
                out.upstream_nameservers.len()
            ));
        }
        Ok(out)
    }
}

/// What fills the variables.
#[derive(Clone, Debug)]
pub struct Inputs<'a> {
    pub base: &'a str,
    pub local_ips: &'a [IpAddr],
    /// The upstream Service's ClusterIP (`$KUBE_DNS_UPSTREAM_SERVICE_HOST`).
    pub cluster_dns: IpAddr,
    pub kube_dns: &'a KubeDns,
    /// The DNS port (`-dns.port`), for the stub domains' blocks.
    pub port: u16,
}

/// The Corefile node-cache would write.
pub fn render(i: &Inputs) -> String {
    let local = i
        .local_ips
        .iter()
        .map(IpAddr::to_string)
        .collect::<Vec<_>>()
        .join(" ");
    let mut text = i.base.to_string();
    let upstream = i.kube_dns.upstream_nameservers.join(" ");
    if upstream.is_empty() {
        text = text.replace(UPSTREAM_SERVERS, "/etc/resolv.conf");
    } else {
        text = text.replace(UPSTREAM_TCP_BLOCK, UPSTREAM_UDP_BLOCK);
        text = text.replace(UPSTREAM_SERVERS, &upstream);
    }
    text = text.replace(CLUSTER_DNS, &i.cluster_dns.to_string());
    text = text.replace(LOCAL_DNS, &local);
    // Every local address came in through __PILLAR__LOCAL__DNS__ (`-localip` names them all).
    text = text.replace(DNS_SERVER, "");
    for (domain, servers) in &i.kube_dns.stub_domains {
        text.push_str(&format!(
            "\n{domain}:{port} {{\n    errors\n    cache 30\n    bind {local}\n    forward . {servers}\n}}\n",
            port = i.port,
            servers = servers.join(" "),
        ));
    }
    text
}

/// The environment variable that holds a Service's ClusterIP in every pod:
/// `kube-dns-upstream` → `KUBE_DNS_UPSTREAM_SERVICE_HOST`.
pub fn service_env(service: &str) -> String {
    format!("{}_SERVICE_HOST", service.replace('-', "_").to_uppercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Kubernetes' nodelocaldns.yaml Corefile after its documented `sed` (iptables mode).
    const STOCK: &str = "cluster.local:53 {
    errors
    cache {
            success 9984 30
            denial 9984 5
    }
    reload
    loop
    bind 169.254.20.10 10.96.0.10
    forward . __PILLAR__CLUSTER__DNS__ {
            force_tcp
    }
    prometheus :9253
    health 169.254.20.10:8080
    }
.:53 {
    errors
    cache 30
    reload
    loop
    bind 169.254.20.10 10.96.0.10
    forward . __PILLAR__UPSTREAM__SERVERS__
    prometheus :9253
    }
";

    fn ips() -> Vec<IpAddr> {
        vec![
            "169.254.20.10".parse().unwrap(),
            "10.96.0.10".parse().unwrap(),
        ]
    }

    #[test]
    fn the_stock_template_renders_as_node_cache_renders_it() {
        let kd = KubeDns::default();
        let ips = ips();
        let out = render(&Inputs {
            base: STOCK,
            local_ips: &ips,
            cluster_dns: "10.96.0.11".parse().unwrap(),
            kube_dns: &kd,
            port: 53,
        });
        assert!(out.contains("forward . 10.96.0.11 {\n            force_tcp"));
        assert!(out.contains("forward . /etc/resolv.conf\n"));
        assert!(!out.contains("__PILLAR__"));
    }

    #[test]
    fn upstream_servers_and_stub_domains_come_from_the_kube_dns_configmap() {
        let base = STOCK.replace(
            "forward . __PILLAR__UPSTREAM__SERVERS__\n",
            "forward . __PILLAR__UPSTREAM__SERVERS__ {\n            force_tcp\n    }\n",
        );
        let kd = KubeDns {
            upstream_nameservers: vec!["8.8.8.8".into(), "1.1.1.1:53".into()],
            stub_domains: [("acme.local".to_string(), vec!["1.2.3.4".to_string()])].into(),
        };
        let ips = ips();
        let out = render(&Inputs {
            base: &base,
            local_ips: &ips,
            cluster_dns: "10.96.0.11".parse().unwrap(),
            kube_dns: &kd,
            port: 53,
        });
        // The TCP block for `.` becomes UDP to the listed servers.
        assert!(
            out.contains("\n    forward . 8.8.8.8 1.1.1.1:53\n    prometheus"),
            "{out}"
        );
        assert!(out.ends_with(
            "\nacme.local:53 {\n    errors\n    cache 30\n    bind 169.254.20.10 10.96.0.10\n    forward . 1.2.3.4\n}\n"
        ));
    }

    #[test]
    fn the_kube_dns_mount_is_read_with_clear_errors() {
        let dir = std::env::temp_dir().join(format!("kubedns-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        assert_eq!(KubeDns::read(&dir).unwrap(), KubeDns::default());
        std::fs::write(dir.join("stubDomains"), "{\"acme.local\": [\"1.2.3.4\"]}").unwrap();
        std::fs::write(dir.join("upstreamNameservers"), "[\"8.8.8.8\"]").unwrap();
        let kd = KubeDns::read(&dir).unwrap();
        assert_eq!(kd.upstream_nameservers, vec!["8.8.8.8"]);
        std::fs::write(dir.join("stubDomains"), "acme.local: 1.2.3.4").unwrap();
        let e = KubeDns::read(&dir).unwrap_err();
        assert!(
            e.contains("stubDomains") && e.contains("expected a JSON object"),
            "{e}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn service_names_become_their_environment_variable() {
        assert_eq!(
            service_env("kube-dns-upstream"),
            "KUBE_DNS_UPSTREAM_SERVICE_HOST"
        );
        assert_eq!(service_env("kube-dns"), "KUBE_DNS_SERVICE_HOST");
    }
}
