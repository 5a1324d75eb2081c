//! The order handlers run in, whatever order the Corefile lists them: CoreDNS's `plugin.cfg`.
//! A handler sees a query before every handler below it, and may answer, pass it on, or wrap
//! what the rest of the chain answers.

/// Directive names in execution order, from CoreDNS's `plugin.cfg`.
pub const ORDER: &[&str] = &[
    "root",
    "metadata",
    "geoip",
    "cancel",
    "tls",
    "quic",
    "timeouts",
    "multisocket",
    "reload",
    "nsid",
    "bufsize",
    "bind",
    // Not in CoreDNS's plugin.cfg: the external `ratelimit` plugin, which clusterdns applies
    // to a port's datagrams before any handler (server/limit.rs).
    "ratelimit",
    "debug",
    "trace",
    "ready",
    "health",
    "pprof",
    "prometheus",
    "errors",
    "log",
    "dnstap",
    "local",
    "dns64",
    "acl",
    "any",
    "chaos",
    "loadbalance",
    "tsig",
    "cache",
    "rewrite",
    "header",
    "dnssec",
    "autopath",
    "minimal",
    "template",
    "transfer",
    "hosts",
    "route53",
    "azure",
    "clouddns",
    "k8s_external",
    "kubernetes",
    "file",
    "auto",
    "secondary",
    "etcd",
    "loop",
    "forward",
    "grpc",
    "erratic",
    "whoami",
    "on",
    "sign",
    "view",
    "nomad",
];

/// The position of a directive in [`ORDER`], or `None` if CoreDNS has no such directive.
pub fn rank(name: &str) -> Option<usize> {
    ORDER.iter().position(|n| *n == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_matches_coredns_for_the_directives_stock_corefiles_use() {
        let stock = [
            "reload",
            "bind",
            "ready",
            "health",
            "prometheus",
            "errors",
            "log",
            "any",
            "loadbalance",
            "cache",
            "rewrite",
            "autopath",
            "template",
            "hosts",
            "k8s_external",
            "kubernetes",
            "loop",
            "forward",
        ];
        let ranks: Vec<usize> = stock.iter().map(|n| rank(n).unwrap()).collect();
        assert!(ranks.windows(2).all(|w| w[0] < w[1]), "{ranks:?}");
        assert_eq!(rank("nonsense"), None);
    }
}
