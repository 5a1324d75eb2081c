//! CoreDNS's metrics: the same names, label sets, label values and histogram buckets, so the
//! dashboards and alerts operators run against CoreDNS read clusterdns unchanged.
//! (Names and buckets from CoreDNS's `plugin/metrics/vars`.)

use std::borrow::Cow;
use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::Duration;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;
use prometheus::{
    Encoder, Gauge, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGaugeVec,
    Opts, Registry, TextEncoder,
};

use crate::dns::wire::Transport;

/// `ExponentialBuckets(0.00025, 2, 16)`: 0.25 ms to about 8 s.
pub fn time_buckets() -> Vec<f64> {
    prometheus::exponential_buckets(0.00025, 2.0, 16).unwrap_or_default()
}

/// `ExponentialBuckets(0.00025, 10, 5)`.
pub fn slim_time_buckets() -> Vec<f64> {
    prometheus::exponential_buckets(0.00025, 10.0, 5).unwrap_or_default()
}

/// CoreDNS's size buckets, in bytes.
pub const SIZE_BUCKETS: &[f64] = &[
    0.0, 100.0, 200.0, 300.0, 400.0, 511.0, 1023.0, 2047.0, 4095.0, 8291.0, 16e3, 32e3, 48e3, 64e3,
];

/// The zone label of queries no server block took.
pub const DROPPED: &str = "dropped";

pub struct Metrics {
    registry: Registry,
    /// `coredns_dns_*`: every query the server answers.
    dns: DnsMetrics,
    /// Build, plugins, panics and reloads.
    pub core: CoreMetrics,
    pub health: HealthMetrics,
    /// UDP queries dropped by the per-source limit (ours; CoreDNS has no such limit).
    pub rate_limited: IntCounter,
    /// `coredns_shed_dropped_total{server, reason}`: UDP queries dropped before any plugin
    /// because the port's queries in flight were at their bound (`query`), and answers that
    /// could not be written (`response`).
    pub shed_dropped: IntCounterVec,
    /// `clusterdns_tcp_connections{server}`: TCP and TLS connections open on a listener.
    pub tcp_connections: IntGaugeVec,
    /// `clusterdns_tcp_evicted_total{server, reason}`: connections closed to make room for a
    /// new one: the listener was `full`, or the new one's `source` had its share.
    pub tcp_evicted: IntCounterVec,
    pub kubernetes: KubernetesMetrics,
    pub forward: ForwardMetrics,
    pub cache: CacheMetrics,
    pub hosts: HostsMetrics,
    pub template: TemplateMetrics,
    /// `coredns_autopath_success_total{server}`
    pub autopath_success: IntCounterVec,
    /// Counters a plugin folder defines for itself ([`Metrics::plugin_counter`]), by name.
    plugin_counters: std::sync::Mutex<std::collections::HashMap<&'static str, IntCounterVec>>,
    /// Gauges a plugin folder defines for itself ([`Metrics::plugin_gauge`]), by name.
    plugin_gauges: std::sync::Mutex<std::collections::HashMap<&'static str, IntGaugeVec>>,
}

/// `coredns_dns_*`, with CoreDNS's names, labels and buckets.
struct DnsMetrics {
    requests: IntCounterVec,
    duration: HistogramVec,
    request_size: HistogramVec,
    response_size: HistogramVec,
    do_requests: IntCounterVec,
    responses: IntCounterVec,
}

impl DnsMetrics {
    fn new(r: &Registry) -> Self {
        Self {
            requests: counter_vec(
                r,
                "coredns_dns_requests_total",
                "Counter of DNS requests made per zone, protocol and family.",
                &["server", "zone", "view", "proto", "family", "type"],
            ),
            duration: histogram_vec(
                r,
                "coredns_dns_request_duration_seconds",
                "Histogram of the time (in seconds) each request took per zone.",
                time_buckets(),
                &["server", "zone", "view"],
            ),
            request_size: histogram_vec(
                r,
                "coredns_dns_request_size_bytes",
                "Size of the EDNS0 UDP buffer in bytes (64K for TCP) per zone and protocol.",
                SIZE_BUCKETS.to_vec(),
                &["server", "zone", "view", "proto"],
            ),
            response_size: histogram_vec(
                r,
                "coredns_dns_response_size_bytes",
                "Size of the returned response in bytes.",
                SIZE_BUCKETS.to_vec(),
                &["server", "zone", "view", "proto"],
            ),
            do_requests: counter_vec(
                r,
                "coredns_dns_do_requests_total",
                "Counter of DNS requests with DO bit set per zone.",
                &["server", "zone", "view"],
            ),
            responses: counter_vec(
                r,
                "coredns_dns_responses_total",
                "Counter of response status codes.",
                &["server", "zone", "view", "rcode", "plugin"],
            ),
        }
    }
}

/// The server's own: which plugins run, the build, panics and reloads.
pub struct CoreMetrics {
    pub plugin_enabled: IntGaugeVec,
    pub panics: IntCounter,
    pub reload_failed: IntCounter,
    pub reload_version: IntGaugeVec,
}

impl CoreMetrics {
    fn new(r: &Registry) -> Self {
        let build_info = gauge_vec(
            r,
            "coredns_build_info",
            "A metric with a constant '1' value labeled by version, revision, and goversion from which CoreDNS was built.",
            &["version", "revision", "goversion"],
        );
        build_info
            .with_label_values(&[
                env!("CARGO_PKG_VERSION"),
                option_env!("CLUSTERDNS_REVISION").unwrap_or("unknown"),
                "rust",
            ])
            .set(1);
        Self {
            plugin_enabled: gauge_vec(
                r,
                "coredns_plugin_enabled",
                "A metric that indicates whether a plugin is enabled on per server and zone basis.",
                &["server", "zone", "view", "name"],
            ),
            panics: int_counter(
                r,
                "coredns_panics_total",
                "A metrics that counts the number of panics.",
            ),
            reload_failed: int_counter(
                r,
                "coredns_reload_failed_total",
                "Counter of the number of failed reload attempts.",
            ),
            reload_version: gauge_vec(
                r,
                "coredns_reload_version_info",
                "A metric with a constant '1' value labeled by hash, and value which type of hash generated.",
                &["hash", "value"],
            ),
        }
    }
}

/// `health`'s: how long `/health` took, and how often it failed.
pub struct HealthMetrics {
    pub duration: Histogram,
    pub failures: IntCounter,
}

impl HealthMetrics {
    fn new(r: &Registry) -> Self {
        Self {
            duration: register(
                r,
                Histogram::with_opts(
                    HistogramOpts::new(
                        "coredns_health_request_duration_seconds",
                        "Histogram of the time (in seconds) each request took.",
                    )
                    .buckets(slim_time_buckets()),
                )
                .expect("valid metric"),
            ),
            failures: int_counter(
                r,
                "coredns_health_request_failures_total",
                "The number of times the health check failed.",
            ),
        }
    }
}

/// The cluster's data: CoreDNS's programming latency, and ours.
pub struct KubernetesMetrics {
    /// `coredns_kubernetes_dns_programming_duration_seconds{service_kind}`.
    pub dns_programming: HistogramVec,
    /// Objects a `kubernetes` source holds, per kind (ours).
    pub objects: IntGaugeVec,
    /// How long a kind's watch has been failing, 0 while it is healthy (ours).
    pub stale: prometheus::GaugeVec,
}

impl KubernetesMetrics {
    fn new(r: &Registry) -> Self {
        Self {
            dns_programming: histogram_vec(
                r,
                "coredns_kubernetes_dns_programming_duration_seconds",
                "Histogram of the time (in seconds) it took to program a dns instance.",
                prometheus::exponential_buckets(0.001, 2.0, 20).unwrap_or_default(),
                &["service_kind"],
            ),
            objects: gauge_vec(
                r,
                "clusterdns_kubernetes_objects",
                "Kubernetes objects held by the kubernetes plugin, per kind.",
                &["kind"],
            ),
            stale: register(
                r,
                prometheus::GaugeVec::new(
                    Opts::new(
                        "clusterdns_kubernetes_stale_seconds",
                        "How long the watch of a kind has been failing (answers come from the last known data); 0 when healthy.",
                    ),
                    &["kind"],
                )
                .expect("valid metric"),
            ),
        }
    }
}

/// `hosts`'s, with CoreDNS's names.
pub struct HostsMetrics {
    /// `coredns_hosts_entries{hostsfile}`: name–address pairs of the hosts file and the inline
    /// lines.
    pub entries: IntGaugeVec,
    /// `coredns_hosts_reload_timestamp_seconds`: when the hosts file was last read.
    pub reload_timestamp: Gauge,
}

impl HostsMetrics {
    fn new(r: &Registry) -> Self {
        Self {
            entries: gauge_vec(
                r,
                "coredns_hosts_entries",
                "The combined number of entries in hosts and Corefile.",
                &["hostsfile"],
            ),
            reload_timestamp: register(
                r,
                Gauge::new(
                    "coredns_hosts_reload_timestamp_seconds",
                    "The timestamp of the last reload of hosts file.",
                )
                .expect("valid metric"),
            ),
        }
    }
}

/// `template`'s metrics, with CoreDNS's names and labels.
pub struct TemplateMetrics {
    /// `{server, zone, view, class, type}`
    pub matches: IntCounterVec,
    /// `{server, zone, view, class, type, section, template}`
    pub template_failures: IntCounterVec,
    pub rr_failures: IntCounterVec,
}

impl TemplateMetrics {
    fn new(r: &Registry) -> Self {
        let failure = [
            "server", "zone", "view", "class", "type", "section", "template",
        ];
        Self {
            matches: counter_vec(
                r,
                "coredns_template_matches_total",
                "Counter of template regex matches.",
                &["server", "zone", "view", "class", "type"],
            ),
            template_failures: counter_vec(
                r,
                "coredns_template_template_failures_total",
                "Counter of go template failures.",
                &failure,
            ),
            rr_failures: counter_vec(
                r,
                "coredns_template_rr_failures_total",
                "Counter of mis-templated RRs.",
                &failure,
            ),
        }
    }
}

/// `forward`'s metrics: CoreDNS's current `coredns_proxy_*` names, and the `coredns_forward_*`
/// names CoreDNS used before 1.11, which the widely used alerts still query.
pub struct ForwardMetrics {
    /// `{proxy_name, to, rcode}`
    pub duration: HistogramVec,
    /// `{proxy_name, to}`
    pub healthcheck_failures: IntCounterVec,
    /// `{proxy_name, to, proto}`
    pub conn_cache_hits: IntCounterVec,
    pub conn_cache_misses: IntCounterVec,
    pub healthcheck_broken: IntCounter,
    pub max_concurrent_rejects: IntCounter,
    /// `{to}`
    pub legacy_requests: IntCounterVec,
    /// `{to, rcode}`
    pub legacy_responses: IntCounterVec,
    pub legacy_duration: HistogramVec,
    /// `{to}`
    pub legacy_healthcheck_failures: IntCounterVec,
    /// `{to, proto}`
    pub legacy_conn_cache_hits: IntCounterVec,
    pub legacy_conn_cache_misses: IntCounterVec,
}

impl ForwardMetrics {
    fn new(r: &Registry) -> Self {
        let counter = |name: &str, help: &str| {
            register(r, IntCounter::new(name, help).expect("valid metric"))
        };
        Self {
            duration: histogram_vec(
                r,
                "coredns_proxy_request_duration_seconds",
                "Histogram of the time each request took.",
                time_buckets(),
                &["proxy_name", "to", "rcode"],
            ),
            healthcheck_failures: counter_vec(
                r,
                "coredns_proxy_healthcheck_failures_total",
                "Counter of the number of failed healthchecks.",
                &["proxy_name", "to"],
            ),
            conn_cache_hits: counter_vec(
                r,
                "coredns_proxy_conn_cache_hits_total",
                "Counter of connection cache hits per upstream and protocol.",
                &["proxy_name", "to", "proto"],
            ),
            conn_cache_misses: counter_vec(
                r,
                "coredns_proxy_conn_cache_misses_total",
                "Counter of connection cache misses per upstream and protocol.",
                &["proxy_name", "to", "proto"],
            ),
            healthcheck_broken: counter(
                "coredns_forward_healthcheck_broken_total",
                "Counter of the number of complete failures of the healthchecks.",
            ),
            max_concurrent_rejects: counter(
                "coredns_forward_max_concurrent_rejects_total",
                "Counter of the number of queries rejected because the concurrent queries were at maximum.",
            ),
            legacy_requests: counter_vec(
                r,
                "coredns_forward_requests_total",
                "Counter of requests made per upstream.",
                &["to"],
            ),
            legacy_responses: counter_vec(
                r,
                "coredns_forward_responses_total",
                "Counter of responses received per upstream.",
                &["to", "rcode"],
            ),
            legacy_duration: histogram_vec(
                r,
                "coredns_forward_request_duration_seconds",
                "Histogram of the time each request took.",
                time_buckets(),
                &["to", "rcode"],
            ),
            legacy_healthcheck_failures: counter_vec(
                r,
                "coredns_forward_healthcheck_failures_total",
                "Counter of the number of failed healthchecks.",
                &["to"],
            ),
            legacy_conn_cache_hits: counter_vec(
                r,
                "coredns_forward_conn_cache_hits_total",
                "Counter of connection cache hits per upstream and protocol.",
                &["to", "proto"],
            ),
            legacy_conn_cache_misses: counter_vec(
                r,
                "coredns_forward_conn_cache_misses_total",
                "Counter of connection cache misses per upstream and protocol.",
                &["to", "proto"],
            ),
        }
    }
}

/// `cache`'s metrics, with CoreDNS's names and labels.
pub struct CacheMetrics {
    /// `{server, type, zones, view}`
    pub entries: IntGaugeVec,
    /// `{server, zones, view}`
    pub requests: IntCounterVec,
    /// `{server, type, zones, view}`
    pub hits: IntCounterVec,
    /// `{server, zones, view}`
    pub misses: IntCounterVec,
    pub prefetch: IntCounterVec,
    pub drops: IntCounterVec,
    pub served_stale: IntCounterVec,
    /// `{server, type, zones, view}`
    pub evictions: IntCounterVec,
}

impl CacheMetrics {
    fn new(r: &Registry) -> Self {
        let typed = ["server", "type", "zones", "view"];
        let plain = ["server", "zones", "view"];
        Self {
            entries: register(
                r,
                IntGaugeVec::new(
                    Opts::new(
                        "coredns_cache_entries",
                        "The number of elements in the cache.",
                    ),
                    &typed,
                )
                .expect("valid metric"),
            ),
            requests: counter_vec(
                r,
                "coredns_cache_requests_total",
                "The count of cache requests.",
                &plain,
            ),
            hits: counter_vec(
                r,
                "coredns_cache_hits_total",
                "The count of cache hits.",
                &typed,
            ),
            misses: counter_vec(
                r,
                "coredns_cache_misses_total",
                "The count of cache misses. Deprecated, derive misses from cache hits/requests counters.",
                &plain,
            ),
            prefetch: counter_vec(
                r,
                "coredns_cache_prefetch_total",
                "The number of times the cache has prefetched a cached item.",
                &plain,
            ),
            drops: counter_vec(
                r,
                "coredns_cache_drops_total",
                "The number responses that are not cached, because the reply is malformed.",
                &plain,
            ),
            served_stale: counter_vec(
                r,
                "coredns_cache_served_stale_total",
                "The number of requests served from stale cache entries.",
                &plain,
            ),
            evictions: counter_vec(
                r,
                "coredns_cache_evictions_total",
                "The count of cache evictions.",
                &typed,
            ),
        }
    }
}

/// One answered query, as the metrics see it.
pub struct Observation<'a> {
    pub server: &'a str,
    pub zone: &'a str,
    pub transport: Transport,
    pub src: SocketAddr,
    pub qtype: Option<RecordType>,
    pub dnssec_ok: bool,
    pub rcode: ResponseCode,
    pub plugin: &'a str,
    /// The `view` label: the block's view, or empty.
    pub view: &'a str,
    pub request_size: usize,
    pub response_size: usize,
    pub duration: Duration,
}

/// Registers `c` (each metric once: a second registration is a bug) and hands it back.
fn register<C: prometheus::core::Collector + Clone + 'static>(r: &Registry, c: C) -> C {
    r.register(Box::new(c.clone())).expect("registered once");
    c
}

fn counter_vec(r: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    register(
        r,
        IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric"),
    )
}

fn gauge_vec(r: &Registry, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    register(
        r,
        IntGaugeVec::new(Opts::new(name, help), labels).expect("valid metric"),
    )
}

fn int_counter(r: &Registry, name: &str, help: &str) -> IntCounter {
    register(r, IntCounter::new(name, help).expect("valid metric"))
}

fn histogram_vec(
    r: &Registry,
    name: &str,
    help: &str,
    buckets: Vec<f64>,
    labels: &[&str],
) -> HistogramVec {
    let opts = HistogramOpts::new(name, help).buckets(buckets);
    register(r, HistogramVec::new(opts, labels).expect("valid metric"))
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Metrics {
    pub fn new() -> Self {
        let r = Registry::new();
        let metrics = Self {
            dns: DnsMetrics::new(&r),
            core: CoreMetrics::new(&r),
            health: HealthMetrics::new(&r),
            rate_limited: int_counter(
                &r,
                "clusterdns_udp_rate_limited_total",
                "UDP queries dropped because their source sent more than the per-source limit in one second.",
            ),
            shed_dropped: counter_vec(
                &r,
                "coredns_shed_dropped_total",
                "Counter of queries and responses dropped by shed.",
                &["server", "reason"],
            ),
            tcp_connections: gauge_vec(
                &r,
                "clusterdns_tcp_connections",
                "TCP and TLS connections open.",
                &["server"],
            ),
            tcp_evicted: counter_vec(
                &r,
                "clusterdns_tcp_evicted_total",
                "Idle TCP connections closed to make room for a new one, because the listener (full) or the new connection's source (source) had as many as it may.",
                &["server", "reason"],
            ),
            kubernetes: KubernetesMetrics::new(&r),
            forward: ForwardMetrics::new(&r),
            cache: CacheMetrics::new(&r),
            hosts: HostsMetrics::new(&r),
            template: TemplateMetrics::new(&r),
            autopath_success: counter_vec(
                &r,
                "coredns_autopath_success_total",
                "Counter of requests that did autopath.",
                &["server"],
            ),
            plugin_counters: Default::default(),
            plugin_gauges: Default::default(),
            registry: r,
        };
        // process_* (CPU, memory, file descriptors, start time), as Go's client exports them.
        let _ = metrics.registry.register(Box::new(
            prometheus::process_collector::ProcessCollector::for_self(),
        ));
        metrics
    }

    /// The counter `name` of a plugin, registered the first time a configuration asks for it
    /// and the same series after every reload (a plugin's folder names its own metrics).
    /// Asking again with other labels is a bug in that plugin.
    pub fn plugin_counter(
        &self,
        name: &'static str,
        help: &'static str,
        labels: &[&str],
    ) -> IntCounterVec {
        let mut kept = self
            .plugin_counters
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        kept.entry(name)
            .or_insert_with(|| counter_vec(&self.registry, name, help, labels))
            .clone()
    }

    /// The gauge `name` of a plugin, as [`Metrics::plugin_counter`] keeps counters.
    pub fn plugin_gauge(
        &self,
        name: &'static str,
        help: &'static str,
        labels: &[&str],
    ) -> IntGaugeVec {
        let mut kept = self.plugin_gauges.lock().unwrap_or_else(|e| e.into_inner());
        kept.entry(name)
            .or_insert_with(|| {
                register(
                    &self.registry,
                    IntGaugeVec::new(Opts::new(name, help), labels).expect("valid metric"),
                )
            })
            .clone()
    }

    /// Counts one query and its response in the series of `zone`, found by their labels the
    /// first time each is counted and kept: what a query costs in counting is then a few atomic
    /// additions, not a lookup by labels per series. `o.server` and `o.zone` must be the
    /// server and zone `zone` was made for.
    pub fn observe_in(&self, zone: &ZoneSeries, o: &Observation) {
        let proto = usize::from(o.transport == Transport::Tcp);
        let family = usize::from(o.src.is_ipv6() && !is_mapped_v4(o.src));
        let qtype = o.qtype.map_or(TYPE_LABELS.len() - 1, type_index);
        let (server, zname, tport, view) = (o.server, o.zone, o.transport.as_str(), o.view);
        zone.requests[proto][family][qtype]
            .get_or_init(|| {
                let family = ["1", "2"][family];
                let l = [server, zname, view, tport, family, TYPE_LABELS[qtype]];
                self.dns.requests.with_label_values(&l)
            })
            .inc();
        if o.dnssec_ok {
            self.dns
                .do_requests
                .with_label_values(&[server, zname, view])
                .inc();
        }
        zone.duration
            .get_or_init(|| self.dns.duration.with_label_values(&[server, zname, view]))
            .observe(o.duration.as_secs_f64());
        let (request, response) = zone.sizes[proto].get_or_init(|| {
            let l = [server, zname, view, tport];
            (
                self.dns.request_size.with_label_values(&l),
                self.dns.response_size.with_label_values(&l),
            )
        });
        request.observe(o.request_size as f64);
        response.observe(o.response_size as f64);
        let slots = match o.rcode {
            ResponseCode::NoError => Some(&zone.responses[0]),
            ResponseCode::NXDomain => Some(&zone.responses[1]),
            _ => None,
        };
        // A slot per plugin that answers with this rcode, taken by the first to count one.
        let kept = slots.and_then(|slots| {
            slots.iter().find_map(|slot| {
                let (plugin, counter) = slot.get_or_init(|| {
                    let l = [server, zname, view, &rcode_label(o.rcode), o.plugin];
                    (
                        o.plugin.to_string(),
                        self.dns.responses.with_label_values(&l),
                    )
                });
                (plugin == o.plugin).then_some(counter)
            })
        });
        match kept {
            Some(counter) => counter.inc(),
            None => self
                .dns
                .responses
                .with_label_values(&[o.server, o.zone, o.view, &rcode_label(o.rcode), o.plugin])
                .inc(),
        }
    }

    /// Counts one query and its response.
    pub fn observe(&self, o: &Observation) {
        let proto = o.transport.as_str();
        let family = if o.src.is_ipv6() && !is_mapped_v4(o.src) {
            "2"
        } else {
            "1"
        };
        let qtype = o.qtype.map(type_label).unwrap_or("other");
        self.dns
            .requests
            .with_label_values(&[o.server, o.zone, o.view, proto, family, qtype])
            .inc();
        if o.dnssec_ok {
            self.dns
                .do_requests
                .with_label_values(&[o.server, o.zone, o.view])
                .inc();
        }
        self.dns
            .duration
            .with_label_values(&[o.server, o.zone, o.view])
            .observe(o.duration.as_secs_f64());
        self.dns
            .request_size
            .with_label_values(&[o.server, o.zone, o.view, proto])
            .observe(o.request_size as f64);
        self.dns
            .response_size
            .with_label_values(&[o.server, o.zone, o.view, proto])
            .observe(o.response_size as f64);
        self.dns
            .responses
            .with_label_values(&[o.server, o.zone, o.view, &rcode_label(o.rcode), o.plugin])
            .inc();
    }

    /// The text exposition format Prometheus scrapes.
    pub fn render(&self) -> Vec<u8> {
        let mut buf = Vec::new();
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut buf);
        buf
    }

    pub fn registry(&self) -> &Registry {
        &self.registry
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

fn is_mapped_v4(addr: SocketAddr) -> bool {
    match addr {
        SocketAddr::V6(v6) => v6.ip().to_ipv4_mapped().is_some(),
        SocketAddr::V4(_) => false,
    }
}

/// The `type` labels of `coredns_dns_requests_total`, `other` last.
const TYPE_LABELS: [&str; 19] = [
    "A", "AAAA", "MX", "SOA", "CNAME", "PTR", "TXT", "NS", "SRV", "DS", "DNSKEY", "RRSIG", "NSEC",
    "NSEC3", "HTTPS", "IXFR", "AXFR", "ANY", "other",
];

fn type_index(t: RecordType) -> usize {
    let label = type_label(t);
    TYPE_LABELS
        .iter()
        .position(|l| *l == label)
        .unwrap_or(TYPE_LABELS.len() - 1)
}

/// How many plugins' answers of one rcode a zone keeps series for (more are looked up).
const PLUGIN_SLOTS: usize = 4;

/// The series one server block of one server counts its queries in, each found the first time
/// it is counted ([`Metrics::observe_in`]).
#[derive(Default)]
pub struct ZoneSeries {
    /// By transport (UDP, TCP), family (1, 2) and type.
    requests: [[[OnceLock<IntCounter>; TYPE_LABELS.len()]; 2]; 2],
    duration: OnceLock<Histogram>,
    /// Request and response size, by transport.
    sizes: [OnceLock<(Histogram, Histogram)>; 2],
    /// NOERROR and NXDOMAIN responses, by plugin.
    responses: [[OnceLock<(String, IntCounter)>; PLUGIN_SLOTS]; 2],
}

/// CoreDNS labels these types by name and every other type `other`.
pub fn type_label(t: RecordType) -> &'static str {
    match t {
        RecordType::A => "A",
        RecordType::AAAA => "AAAA",
        RecordType::MX => "MX",
        RecordType::SOA => "SOA",
        RecordType::CNAME => "CNAME",
        RecordType::PTR => "PTR",
        RecordType::TXT => "TXT",
        RecordType::NS => "NS",
        RecordType::SRV => "SRV",
        RecordType::DS => "DS",
        RecordType::DNSKEY => "DNSKEY",
        RecordType::RRSIG => "RRSIG",
        RecordType::NSEC => "NSEC",
        RecordType::NSEC3 => "NSEC3",
        RecordType::HTTPS => "HTTPS",
        RecordType::IXFR => "IXFR",
        RecordType::AXFR => "AXFR",
        RecordType::ANY => "ANY",
        _ => "other",
    }
}

/// Rcode names as CoreDNS (miekg/dns) writes them; borrowed, so that counting an answer
/// allocates nothing.
pub fn rcode_label(r: ResponseCode) -> Cow<'static, str> {
    match r {
        ResponseCode::NoError => Cow::Borrowed("NOERROR"),
        ResponseCode::FormErr => Cow::Borrowed("FORMERR"),
        ResponseCode::ServFail => Cow::Borrowed("SERVFAIL"),
        ResponseCode::NXDomain => Cow::Borrowed("NXDOMAIN"),
        ResponseCode::NotImp => Cow::Borrowed("NOTIMP"),
        ResponseCode::Refused => Cow::Borrowed("REFUSED"),
        ResponseCode::YXDomain => Cow::Borrowed("YXDOMAIN"),
        ResponseCode::YXRRSet => Cow::Borrowed("YXRRSET"),
        ResponseCode::NXRRSet => Cow::Borrowed("NXRRSET"),
        ResponseCode::NotAuth => Cow::Borrowed("NOTAUTH"),
        ResponseCode::NotZone => Cow::Borrowed("NOTZONE"),
        ResponseCode::BADVERS | ResponseCode::BADSIG => Cow::Borrowed("BADSIG"),
        other => Cow::Owned(u16::from(other).to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Counting through a zone's kept series writes what counting by labels writes.
    #[test]
    fn kept_series_count_as_labels_do() {
        let observations = |i: usize| Observation {
            server: "dns://:53",
            zone: "cluster.local.",
            transport: [Transport::Udp, Transport::Tcp][i % 2],
            src: [
                "10.0.0.1:5353",
                "[2001:db8::1]:5353",
                "[::ffff:10.0.0.2]:53",
            ][i % 3]
                .parse()
                .unwrap(),
            qtype: [
                Some(RecordType::A),
                Some(RecordType::SRV),
                Some(RecordType::NULL),
                None,
            ][i % 4],
            dnssec_ok: i.is_multiple_of(5),
            rcode: [
                ResponseCode::NoError,
                ResponseCode::NXDomain,
                ResponseCode::ServFail,
            ][i % 3],
            // More plugins than a zone keeps slots for.
            plugin: ["kubernetes", "cache", "", "forward", "hosts", "template"][i % 6],
            view: "",
            request_size: 40 + i,
            response_size: 90 + 7 * i,
            duration: Duration::from_micros(i as u64 * 37),
        };
        let (by_labels, kept) = (Metrics::new(), Metrics::new());
        let series = ZoneSeries::default();
        for i in 0..500 {
            by_labels.observe(&observations(i));
            kept.observe_in(&series, &observations(i));
        }
        // The query series (the process's own, memory and the like, differ by the moment).
        let text = |m: &Metrics| {
            let all = String::from_utf8(m.render()).unwrap();
            let dns: Vec<&str> = all
                .lines()
                .filter(|l| l.starts_with("coredns_dns_"))
                .collect();
            dns.join("\n")
        };
        assert_eq!(text(&by_labels), text(&kept));
        assert!(text(&kept).contains("plugin=\"template\""));
    }
}
