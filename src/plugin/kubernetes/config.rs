//! `kubernetes [ZONES…] { … }`: authoritative answers for the cluster's names.
//!
//! ```text
//! kubernetes cluster.local in-addr.arpa ip6.arpa {
//!     kubeconfig PATH [CONTEXT]       # the API server of a kubeconfig
//!     endpoint URL                    # or this API server ...
//!     tls CERT KEY CACERT             # ... with these client credentials
//!                                     # (neither: in-cluster, the service account)
//!     objects cluster.yaml            # ours: Kubernetes objects from a file or folder
//!     pods insecure|verified|disabled
//!     fallthrough [ZONES…]
//!     ttl 30
//!     endpoint_pod_names
//!     namespaces NAMESPACE…
//!     labels SELECTOR
//!     namespace_labels SELECTOR
//!     noendpoints
//!     ignore empty_service
//!     startup_timeout 5s
//!     multicluster [ZONES…]           # MCS API names from ServiceImports (clusterset.local)
//!     upstream                        # accepted and ignored, as in CoreDNS
//! }
//! ```

use std::path::PathBuf;
use std::time::Duration;

use hickory_proto::rr::Name;

use crate::corefile::{Directive, Pos, Token};

use crate::cluster::index::IndexOptions;
pub use crate::cluster::records::PodMode;
use crate::cluster::records::RecordOptions;
pub use crate::cluster::source::api::{ApiConfig, TlsFiles};
use crate::cluster::source::selector::Selector;
use crate::cluster::source::{Filters, Origin, SourceKey, SourceSpec};
use crate::corefile::args::Args;
use crate::corefile::args::{no_block, parse_duration};
use crate::corefile::error::ConfigError;
use crate::corefile::keys::{BlockContext, relative_path, zones_or_block};
use crate::plugin::shared::fallthrough::{Fallthrough, parse_fallthrough};
use crate::plugin::shared::parse_ttl;

/// Where the cluster's objects come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// `objects PATH`: a YAML/JSON file or a folder of them.
    Objects(PathBuf),
    /// The Kubernetes API, watched.
    Api(ApiConfig),
}

#[derive(Clone, Debug, PartialEq)]
pub struct KubernetesConfig {
    pub zones: Vec<Name>,
    pub source: Source,
    pub pods: PodMode,
    pub fallthrough: Fallthrough,
    pub ttl: u32,
    pub endpoint_pod_names: bool,
    /// Only these namespaces are served; empty means all.
    pub namespaces: Vec<String>,
    pub labels: Option<Selector>,
    pub namespace_labels: Option<Selector>,
    pub noendpoints: bool,
    pub ignore_empty_service: bool,
    pub startup_timeout: Duration,
    /// `multicluster ZONES…`: the zones (of `zones`) answered from ServiceImports.
    pub multicluster: Vec<Name>,
    /// `zonal`: headless Services also answer `ZONE.pin._zone.…` and `ZONE.prefer._zone.…`.
    pub zonal: bool,
    /// Where the `objects` property stands, for errors in reading the file it names.
    pub objects_at: Option<Pos>,
}

impl KubernetesConfig {
    /// Which objects the source keeps.
    pub fn filters(&self) -> Filters {
        Filters {
            namespaces: self.namespaces.clone(),
            labels: self.labels.clone(),
            namespace_labels: self.namespace_labels.clone(),
            noendpoints: self.noendpoints,
            pods: self.pods == PodMode::Verified,
            pod_names: self.endpoint_pod_names,
            // Only where a multicluster zone is served: one that is not answers nothing.
            imports: self.multicluster.iter().any(|z| self.zones.contains(z)),
            zones: self.zonal,
        }
    }

    /// What the block's source is started from (the application starts it, or keeps the
    /// running one with the same key, before the block is set up).
    pub fn source_spec(&self) -> SourceSpec {
        SourceSpec {
            key: SourceKey {
                index: IndexOptions {
                    zones: self.zones.clone(),
                    multicluster: self.multicluster.clone(),
                    ttl: self.ttl,
                    records: RecordOptions {
                        pods: self.pods,
                        endpoint_pod_names: self.endpoint_pod_names,
                        ignore_empty_service: self.ignore_empty_service,
                        zonal: self.zonal,
                    },
                },
                filters: self.filters(),
                origin: match &self.source {
                    Source::Objects(path) => Origin::Objects(path.clone()),
                    Source::Api(api) => Origin::Api(api.clone()),
                },
                startup_timeout: self.startup_timeout,
            },
            directive: "kubernetes",
            objects_at: self.objects_at.as_ref().map(ToString::to_string),
        }
    }
}

pub const DEFAULT_TTL: u32 = 5;

const PROPERTIES: &str = "kubeconfig, endpoint, tls, objects, pods, fallthrough, ttl, endpoint_pod_names, namespaces, labels, namespace_labels, noendpoints, ignore, startup_timeout, multicluster, zonal, upstream, apiserver_qps, apiserver_burst, apiserver_max_inflight";

/// The zone of the MCS API's names (KEP-1645), which `multicluster` alone means.
pub const CLUSTERSET_ZONE: &str = "clusterset.local.";

pub fn parse(d: &Directive, ctx: &BlockContext) -> Result<KubernetesConfig, Vec<ConfigError>> {
    let zones = zones_or_block(&d.args, ctx)?;
    let mut errors = Vec::new();
    let mut source = Sources::default();
    let mut cfg = KubernetesConfig {
        zones,
        source: Source::Objects(PathBuf::new()),
        pods: PodMode::Disabled,
        fallthrough: Fallthrough::Never,
        ttl: DEFAULT_TTL,
        endpoint_pod_names: false,
        namespaces: Vec::new(),
        labels: None,
        namespace_labels: None,
        noendpoints: false,
        ignore_empty_service: false,
        startup_timeout: Duration::from_secs(5),
        multicluster: Vec::new(),
        zonal: false,
        objects_at: None,
    };
    let mut zonal_at = None;
    for p in d.block.iter().flatten() {
        let name = p.name.text.as_str();
        let args = Args::new(format!("kubernetes: {name}"), p);
        let result =
            no_block(&args.what, p).and_then(|()| property(&mut cfg, &mut source, name, &args));
        if let Err(e) = result {
            errors.push(e);
        } else if name == "zonal" {
            zonal_at = Some(p.name.pos.clone());
        }
    }
    if let (Some(at), true) = (&zonal_at, cfg.noendpoints) {
        errors.push(ConfigError::new(
            at,
            "kubernetes: zonal: cannot be used with 'noendpoints': zonal names are answered \
             from the endpoints that noendpoints leaves out",
        ));
    }
    cfg.objects_at = source.objects.as_ref().map(|(at, _)| at.clone());
    match source.finish(&d.name.pos) {
        Ok(s) => cfg.source = s,
        Err(e) => errors.push(e),
    }
    if errors.is_empty() {
        Ok(cfg)
    } else {
        Err(errors)
    }
}

/// The source properties as written, checked together once the block is read.
#[derive(Default)]
struct Sources {
    objects: Option<(Pos, PathBuf)>,
    api: ApiConfig,
    /// The first API property seen, for the error when `objects` is there too.
    api_at: Option<(Pos, &'static str)>,
}

impl Sources {
    fn finish(self, block: &Pos) -> Result<Source, ConfigError> {
        if let (Some((at, _)), Some((_, what))) = (&self.objects, &self.api_at) {
            return Err(ConfigError::new(
                at,
                format!(
                    "kubernetes: objects: cannot be used with '{what}': the objects come either \
                     from a file or from the Kubernetes API"
                ),
            ));
        }
        if self.api.tls.is_some() && self.api.endpoint.is_none() {
            let at = self.api_at.as_ref().map(|a| &a.0).unwrap_or(block);
            return Err(ConfigError::new(
                at,
                "kubernetes: tls: needs 'endpoint URL' (the API server these credentials are for)",
            ));
        }
        if self.api.kubeconfig.is_some() && self.api.endpoint.is_some() {
            let at = self.api_at.as_ref().map(|a| &a.0).unwrap_or(block);
            return Err(ConfigError::new(
                at,
                "kubernetes: use either 'kubeconfig' or 'endpoint', not both",
            ));
        }
        Ok(match self.objects {
            Some((_, path)) => Source::Objects(path),
            None => Source::Api(self.api),
        })
    }

    fn api(&mut self, pos: &Pos, what: &'static str) {
        self.api_at.get_or_insert_with(|| (pos.clone(), what));
    }
}

/// One property line of the block: the source's in [`source_property`], each of the rest by
/// a small reader of its own.
fn property(
    cfg: &mut KubernetesConfig,
    source: &mut Sources,
    name: &str,
    args: &Args,
) -> Result<(), ConfigError> {
    match name {
        "objects" | "kubeconfig" | "endpoint" | "tls" => source_property(source, name, args)?,
        "apiserver_qps" | "apiserver_burst" | "apiserver_max_inflight" => {
            api_limit(source, name, args)?
        }
        "pods" => cfg.pods = pod_mode(args)?,
        "fallthrough" => cfg.fallthrough = parse_fallthrough(args)?,
        "ttl" => cfg.ttl = parse_ttl(args)?,
        "endpoint_pod_names" => {
            args.none()?;
            cfg.endpoint_pod_names = true;
        }
        "zonal" => {
            args.none()?;
            cfg.zonal = true;
        }
        "namespaces" => {
            cfg.namespaces = args
                .some("one or more namespace names")?
                .iter()
                .map(|t| t.text.to_ascii_lowercase())
                .collect();
        }
        "labels" => cfg.labels = Some(selector(args)?),
        "namespace_labels" => cfg.namespace_labels = Some(selector(args)?),
        "noendpoints" => {
            args.none()?;
            cfg.noendpoints = true;
        }
        "ignore" => {
            let what = args.one("empty_service")?;
            if what.text != "empty_service" {
                return Err(args.err(
                    what,
                    format!("unknown value '{}'; expected empty_service", what.text),
                ));
            }
            cfg.ignore_empty_service = true;
        }
        "startup_timeout" => {
            let t = args.one("a duration such as 5s")?;
            cfg.startup_timeout = parse_duration(&t.text).ok_or_else(|| {
                args.err(
                    t,
                    format!("'{}' is not a duration; expected e.g. 5s or 1m", t.text),
                )
            })?;
        }
        "upstream" => {
            tracing::warn!(
                "{}: kubernetes: 'upstream' is deprecated and ignored, as in CoreDNS",
                args.head.pos
            );
        }
        "multicluster" => cfg.multicluster = parse_multicluster(cfg, args)?,
        other => return Err(not_a_property(other, args)),
    }
    Ok(())
}

/// Where the cluster comes from: `objects PATH`, or the API (`kubeconfig PATH [CONTEXT]`,
/// `endpoint URL`, `tls CERT KEY CACERT`).
fn source_property(source: &mut Sources, name: &str, args: &Args) -> Result<(), ConfigError> {
    match name {
        "objects" => {
            let path = args.one("a file or folder of Kubernetes objects")?;
            source.objects = Some((args.head.pos.clone(), relative_path(&path.pos, &path.text)));
        }
        "kubeconfig" => {
            let words = args.some("a kubeconfig file and optionally a context")?;
            if words.len() > 2 {
                return Err(args.err(
                    &words[2],
                    "expected a kubeconfig file and at most a context",
                ));
            }
            source.api(&args.head.pos, "kubeconfig");
            source.api.kubeconfig = Some(relative_path(&words[0].pos, &words[0].text));
            source.api.context = words.get(1).map(|t| t.text.clone());
        }
        "endpoint" => {
            let url = args.one("the API server's URL, such as https://10.0.0.1:6443")?;
            if !(url.text.starts_with("https://") || url.text.starts_with("http://")) {
                return Err(args.err(
                    url,
                    format!("'{}' is not an http:// or https:// URL", url.text),
                ));
            }
            source.api(&args.head.pos, "endpoint");
            source.api.endpoint = Some(url.text.clone());
        }
        _ => {
            let files = args.some("CERT KEY CACERT")?;
            if files.len() != 3 {
                return Err(args.err(
                    &files[0],
                    format!("expected 3 files (CERT KEY CACERT), got {}", files.len()),
                ));
            }
            source.api(&args.head.pos, "tls");
            let path = |t: &Token| relative_path(&t.pos, &t.text);
            source.api.tls = Some(TlsFiles {
                cert: path(&files[0]),
                key: path(&files[1]),
                ca: path(&files[2]),
            });
        }
    }
    Ok(())
}

/// `apiserver_qps QPS` (a rate above 0, fractions allowed), `apiserver_burst BURST` and
/// `apiserver_max_inflight MAX` (whole numbers above 0): limits on what the API client asks.
fn api_limit(source: &mut Sources, name: &str, args: &Args) -> Result<(), ConfigError> {
    let t = args.one(if name == "apiserver_qps" {
        "a rate of requests per second, such as 5 or 2.5"
    } else {
        "a whole number above 0"
    })?;
    let limits = &mut source.api.limits;
    if name == "apiserver_qps" {
        let qps: f64 = t
            .text
            .parse()
            .ok()
            .filter(|q: &f64| q.is_finite() && *q > 0.0)
            .ok_or_else(|| {
                args.err(
                    t,
                    format!("'{}' is not a rate above 0, such as 5 or 2.5", t.text),
                )
            })?;
        limits.milli_qps = Some(((qps * 1000.0).round() as u64).max(1));
    } else {
        let n: u64 =
            t.text.parse().ok().filter(|n| *n > 0).ok_or_else(|| {
                args.err(t, format!("'{}' is not a whole number above 0", t.text))
            })?;
        if name == "apiserver_burst" {
            limits.burst = Some(n);
        } else {
            limits.max_inflight = Some(usize::try_from(n).unwrap_or(usize::MAX));
        }
    }
    source.api(&args.head.pos, "apiserver limits");
    Ok(())
}

/// `pods insecure|verified|disabled`.
fn pod_mode(args: &Args) -> Result<PodMode, ConfigError> {
    let mode = args.one("insecure, verified or disabled")?;
    match mode.text.as_str() {
        "insecure" => Ok(PodMode::Insecure),
        "verified" => Ok(PodMode::Verified),
        "disabled" => Ok(PodMode::Disabled),
        other => Err(args.err(
            mode,
            format!("unknown mode '{other}'; expected insecure, verified or disabled"),
        )),
    }
}

/// `labels` and `namespace_labels`: a label selector, its words joined again.
fn selector(args: &Args) -> Result<Selector, ConfigError> {
    let words = args.some("a label selector such as 'app=web'")?;
    let text = words
        .iter()
        .map(|t| t.text.as_str())
        .collect::<Vec<_>>()
        .join(" ");
    Selector::parse(&text).map_err(|m| args.err(&words[0], m))
}

/// A property that is not one: CoreDNS's that clusterdns does not have yet, one CoreDNS moved
/// elsewhere, or a slip.
fn not_a_property(name: &str, args: &Args) -> ConfigError {
    match name {
        "resyncperiod" => args.err_here(format!(
            "property '{name}' is not supported by clusterdns yet"
        )),
        "transfer" => args.err_here(
            "zone transfers are the transfer directive's (as in CoreDNS since 1.7): transfer { to ADDRESS… } in the server block",
        ),
        other => args
            .err_here(format!(
                "unknown property '{other}'; expected one of: {PROPERTIES}"
            ))
            .with_msg(|m| m.replacen(&format!("kubernetes: {other}: "), "kubernetes: ", 1)),
    }
}

/// `multicluster [ZONES…]`: forward zones, `clusterset.local` when none is given. A zone
/// the plugin does not serve is accepted, as CoreDNS accepts it, and the log says that its
/// names will not be answered.
fn parse_multicluster(cfg: &KubernetesConfig, args: &Args) -> Result<Vec<Name>, ConfigError> {
    let mut zones = Vec::new();
    if args.rest.is_empty() {
        zones.push(Name::from_ascii(CLUSTERSET_ZONE).map_err(|e| args.err_here(e.to_string()))?);
    }
    for w in args.rest {
        let parsed = crate::corefile::keys::parse_zone(&w.text).map_err(|m| args.err(w, m))?;
        for z in parsed {
            let arpa = Name::from_ascii("arpa.").map_err(|e| args.err(w, e.to_string()))?;
            if arpa.zone_of(&z) {
                return Err(args.err(
                    w,
                    format!("'{z}' is a reverse zone; multicluster names are forward names such as clusterset.local"),
                ));
            }
            zones.push(z);
        }
    }
    for z in &zones {
        if !cfg.zones.contains(z) {
            tracing::warn!(
                "{}: kubernetes: multicluster: {z} is not one of this plugin's zones ({}); add it \
                 there (kubernetes cluster.local {z} …) for its names to be answered",
                args.head.pos,
                cfg.zones
                    .iter()
                    .map(|z| z.to_string())
                    .collect::<Vec<_>>()
                    .join(" ")
            );
        }
    }
    Ok(zones)
}

impl ConfigError {
    fn with_msg(mut self, f: impl FnOnce(&str) -> String) -> Self {
        self.msg = f(&self.msg);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::testing::*;
    use crate::plugin::registry::PluginConfig;

    fn kube(text: &str) -> KubernetesConfig {
        let cfg = load_text(text).unwrap_or_else(|e| panic!("{text}\n{e}"));
        match &cfg.servers[0].plugins[..] {
            [.., PluginConfig::Kubernetes(k)] => (**k).clone(),
            other => panic!("no kubernetes plugin: {other:?}"),
        }
    }

    #[test]
    fn kubernetes_properties() {
        let k = kube(".:53 {\n kubernetes {\n  objects c.yaml\n }\n}");
        assert_eq!(zones(&k.zones), ["."]);
        assert_eq!(k.source, Source::Objects("/etc/coredns/c.yaml".into()));
        assert_eq!(k.pods, PodMode::Disabled);
        assert_eq!(k.ttl, 5);
        assert_eq!(k.fallthrough, Fallthrough::Never);
        assert_eq!(k.startup_timeout, Duration::from_secs(5));

        let k = kube(
            ".:53 {\n kubernetes cluster.local in-addr.arpa ip6.arpa 10.96.0.0/16 {\n  objects /data/objs\n  pods verified\n  fallthrough in-addr.arpa ip6.arpa\n  ttl 30\n  endpoint_pod_names\n  namespaces a b\n  labels app in (web, api), tier!=db\n  namespace_labels team=x\n  noendpoints\n  ignore empty_service\n  startup_timeout 1m\n  upstream\n }\n}",
        );
        assert_eq!(
            zones(&k.zones),
            [
                "cluster.local.",
                "in-addr.arpa.",
                "ip6.arpa.",
                "96.10.in-addr.arpa."
            ]
        );
        assert_eq!(k.source, Source::Objects("/data/objs".into()));
        assert_eq!(k.pods, PodMode::Verified);
        assert_eq!(k.ttl, 30);
        assert!(
            matches!(&k.fallthrough, Fallthrough::Zones(z) if zones(z) == ["in-addr.arpa.", "ip6.arpa."])
        );
        assert!(k.endpoint_pod_names && k.noendpoints && k.ignore_empty_service);
        assert_eq!(k.namespaces, ["a", "b"]);
        assert_eq!(
            k.labels.as_ref().map(|l| l.to_string()).as_deref(),
            Some("app in (web, api), tier!=db")
        );
        assert!(k.namespace_labels.is_some());
        assert_eq!(k.startup_timeout, Duration::from_secs(60));

        let k =
            kube(".:53 {\n kubernetes {\n  objects c.yaml\n  fallthrough\n  pods insecure\n }\n}");
        assert_eq!(k.fallthrough, Fallthrough::All);
        assert_eq!(k.pods, PodMode::Insecure);
    }

    #[test]
    fn kubernetes_api_sources() {
        use super::{ApiConfig, TlsFiles};
        // Neither objects nor an API property: in-cluster, as CoreDNS.
        let k = kube(".:53 {\n kubernetes cluster.local\n}");
        assert_eq!(k.source, Source::Api(ApiConfig::default()));
        let k = kube(".:53 {\n kubernetes {\n  kubeconfig kc.yaml prod\n }\n}");
        assert_eq!(
            k.source,
            Source::Api(ApiConfig {
                kubeconfig: Some("/etc/coredns/kc.yaml".into()),
                context: Some("prod".into()),
                ..ApiConfig::default()
            })
        );
        let k = kube(
            ".:53 {\n kubernetes {\n  endpoint https://10.0.0.1:6443\n  tls /c.pem /k.pem /ca.pem\n }\n}",
        );
        assert_eq!(
            k.source,
            Source::Api(ApiConfig {
                endpoint: Some("https://10.0.0.1:6443".into()),
                tls: Some(TlsFiles {
                    cert: "/c.pem".into(),
                    key: "/k.pem".into(),
                    ca: "/ca.pem".into(),
                }),
                ..ApiConfig::default()
            })
        );
    }

    #[test]
    fn multicluster_names_its_zones_and_defaults_to_clusterset_local() {
        let k = kube(
            ".:53 {\n kubernetes cluster.local clusterset.local {\n  objects c.yaml\n  multicluster\n }\n}",
        );
        assert_eq!(zones(&k.multicluster), ["clusterset.local."]);
        assert!(k.filters().imports);
        let k = kube(
            ".:53 {\n kubernetes cluster.local Set.Example {\n  objects c.yaml\n  multicluster set.example\n }\n}",
        );
        assert_eq!(zones(&k.multicluster), ["set.example."]);
        // A zone the plugin does not serve loads, as in CoreDNS (the log says so), and no
        // ServiceImport is read for it.
        let k =
            kube(".:53 {\n kubernetes cluster.local {\n  objects c.yaml\n  multicluster\n }\n}");
        assert_eq!(zones(&k.multicluster), ["clusterset.local."]);
        assert!(!k.filters().imports);
        let k = kube(".:53 {\n kubernetes cluster.local {\n  objects c.yaml\n }\n}");
        assert!(k.multicluster.is_empty() && !k.filters().imports);
    }

    #[test]
    fn errors_name_the_position_and_what_is_accepted() {
        assert_errors(&[
            (
                ".:53 {\n kubernetes {\n  transfer to *\n  objects x\n }\n}",
                "3:3: kubernetes: transfer: zone transfers are the transfer directive's",
            ),
            (
                ".:53 {\n kubernetes {\n  podz insecure\n  objects x\n }\n}",
                "3:3: kubernetes: unknown property 'podz'; expected one of: kubeconfig, endpoint, tls, objects, pods",
            ),
            (
                ".:53 {\n kubernetes {\n  pods maybe\n  objects x\n }\n}",
                "3:8: kubernetes: pods: unknown mode 'maybe'; expected insecure, verified or disabled",
            ),
            (
                ".:53 {\n kubernetes {\n  ttl 3601\n  objects x\n }\n}",
                "3:7: kubernetes: ttl: '3601' is not a TTL: expected 0 to 3600",
            ),
            (
                ".:53 {\n kubernetes {\n  ttl\n  objects x\n }\n}",
                "3:3: kubernetes: ttl: expected a TTL in seconds",
            ),
            (
                ".:53 {\n kubernetes {\n  objects a b\n }\n}",
                "3:13: kubernetes: objects: unexpected argument 'b'",
            ),
            (
                ".:53 {\n kubernetes {\n  objects x\n  endpoint_pod_names yes\n }\n}",
                "4:22: kubernetes: endpoint_pod_names: unexpected argument 'yes'; this takes none",
            ),
            (
                ".:53 {\n kubernetes {\n  zonal\n  objects x\n  noendpoints\n }\n}",
                "3:3: kubernetes: zonal: cannot be used with 'noendpoints'",
            ),
            (
                ".:53 {\n kubernetes {\n  objects x\n  zonal on\n }\n}",
                "4:9: kubernetes: zonal: unexpected argument 'on'; this takes none",
            ),
            (
                ".:53 {\n kubernetes {\n  objects x\n  ignore everything\n }\n}",
                "4:10: kubernetes: ignore: unknown value 'everything'; expected empty_service",
            ),
            (
                ".:53 {\n kubernetes {\n  objects x\n  labels app in web\n }\n}",
                "4:10: kubernetes: labels: expected a parenthesised list",
            ),
            (
                ".:53 {\n kubernetes {\n  objects x\n  startup_timeout soon\n }\n}",
                "4:19: kubernetes: startup_timeout: 'soon' is not a duration",
            ),
            (
                ".:53 {\n kubernetes {\n  objects x\n  kubeconfig /k\n }\n}",
                "3:3: kubernetes: objects: cannot be used with 'kubeconfig'",
            ),
            (
                ".:53 {\n kubernetes {\n  tls a b c\n }\n}",
                "3:3: kubernetes: tls: needs 'endpoint URL'",
            ),
            (
                ".:53 {\n kubernetes {\n  tls a b\n  endpoint https://k:6443\n }\n}",
                "3:7: kubernetes: tls: expected 3 files (CERT KEY CACERT), got 2",
            ),
            (
                ".:53 {\n kubernetes {\n  endpoint 10.0.0.1:6443\n }\n}",
                "3:12: kubernetes: endpoint: '10.0.0.1:6443' is not an http:// or https:// URL",
            ),
            (
                ".:53 {\n kubernetes {\n  endpoint https://k\n  kubeconfig /k\n }\n}",
                "3:3: kubernetes: use either 'kubeconfig' or 'endpoint', not both",
            ),
            (
                ".:53 {\n kubernetes {\n  kubeconfig /k ctx extra\n }\n}",
                "3:21: kubernetes: kubeconfig: expected a kubeconfig file and at most a context",
            ),
            (
                ".:53 {\n kubernetes cluster.local in-addr.arpa {\n  objects x\n  multicluster 10.0.0.0/8\n }\n}",
                "4:16: kubernetes: multicluster: '10.in-addr.arpa.' is a reverse zone",
            ),
            (
                ".:53 {\n kubernetes {\n  objects x\n  multicluster exa..mple\n }\n}",
                "4:16: kubernetes: multicluster: 'exa..mple' is not a valid domain name",
            ),
            (
                ".:53 {\n kubernetes {\n  objects x\n  fallthrough 10.0.0.0/99\n }\n}",
                "4:15: kubernetes: fallthrough: bad prefix length '/99'",
            ),
            (
                ".:53 {\n kubernetes {\n objects x\n }\n kubernetes {\n objects y\n }\n}",
                "5:2: kubernetes: only one 'kubernetes' directive is allowed per server block",
            ),
        ]);
    }
}
