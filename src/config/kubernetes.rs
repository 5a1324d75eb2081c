//! `kubernetes [ZONES…] { … }`: authoritative answers for the cluster's names.
//!
//! ```text
//! kubernetes cluster.local in-addr.arpa ip6.arpa {
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
//!     upstream                        # accepted and ignored, as in CoreDNS
//! }
//! ```

use std::path::PathBuf;
use std::time::Duration;

use hickory_proto::rr::Name;

use crate::corefile::Directive;

use super::args::{no_block, parse_duration};
use super::selector::Selector;
use super::{Args, BlockContext, ConfigError, parse_zone, relative_path, zones_or_block};

/// How `A-B-C-D.NAMESPACE.pod.ZONE` names are answered.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PodMode {
    /// No pod records (CoreDNS's default).
    #[default]
    Disabled,
    /// Any well-formed name answers with the IP it spells.
    Insecure,
    /// Only IPs of pods that exist in that namespace.
    Verified,
}

/// Which NXDOMAIN answers go on to the next plugin.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Fallthrough {
    #[default]
    Never,
    /// `fallthrough` with no zones: every name.
    All,
    /// Only names in these zones.
    Zones(Vec<Name>),
}

impl Fallthrough {
    pub fn covers(&self, name: &Name) -> bool {
        match self {
            Fallthrough::Never => false,
            Fallthrough::All => true,
            Fallthrough::Zones(zones) => zones.iter().any(|z| z.zone_of(name)),
        }
    }
}

/// Where the cluster's objects come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// `objects PATH`: a YAML/JSON file or a folder of them.
    Objects(PathBuf),
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
}

pub const DEFAULT_TTL: u32 = 5;
pub const MAX_TTL: u32 = 3600;

const PROPERTIES: &str = "objects, pods, fallthrough, ttl, endpoint_pod_names, namespaces, labels, namespace_labels, noendpoints, ignore, startup_timeout, upstream";

pub fn parse(d: &Directive, ctx: &BlockContext) -> Result<KubernetesConfig, Vec<ConfigError>> {
    let zones = zones_or_block(&d.args, ctx)?;
    let mut errors = Vec::new();
    let mut source = None;
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
    };
    for p in d.block.iter().flatten() {
        let name = p.name.text.as_str();
        let args = Args::new(format!("kubernetes: {name}"), p);
        let result =
            no_block(&args.what, p).and_then(|()| property(&mut cfg, &mut source, name, &args));
        if let Err(e) = result {
            errors.push(e);
        }
    }
    match source {
        Some(s) => cfg.source = s,
        None if errors.is_empty() => errors.push(ConfigError::new(
            &d.name.pos,
            "kubernetes: no source of cluster objects: add 'objects PATH' (a file or folder of \
             Kubernetes objects, as `kubectl get -o yaml` prints them); connecting to the \
             Kubernetes API is not implemented yet",
        )),
        None => {}
    }
    if errors.is_empty() {
        Ok(cfg)
    } else {
        Err(errors)
    }
}

fn property(
    cfg: &mut KubernetesConfig,
    source: &mut Option<Source>,
    name: &str,
    args: &Args,
) -> Result<(), ConfigError> {
    match name {
        "objects" => {
            let path = args.one("a file or folder of Kubernetes objects")?;
            *source = Some(Source::Objects(relative_path(&path.pos, &path.text)));
        }
        "pods" => {
            let mode = args.one("insecure, verified or disabled")?;
            cfg.pods = match mode.text.as_str() {
                "insecure" => PodMode::Insecure,
                "verified" => PodMode::Verified,
                "disabled" => PodMode::Disabled,
                other => {
                    return Err(args.err(
                        mode,
                        format!("unknown mode '{other}'; expected insecure, verified or disabled"),
                    ));
                }
            };
        }
        "fallthrough" => {
            cfg.fallthrough = if args.rest.is_empty() {
                Fallthrough::All
            } else {
                let mut zones = Vec::new();
                for a in args.rest {
                    zones.extend(parse_zone(&a.text).map_err(|m| args.err(a, m))?);
                }
                Fallthrough::Zones(zones)
            };
        }
        "ttl" => {
            let t = args.one("a TTL in seconds")?;
            cfg.ttl = t
                .text
                .parse::<u32>()
                .ok()
                .filter(|v| *v <= super::kubernetes::MAX_TTL)
                .ok_or_else(|| {
                    args.err(
                        t,
                        format!("'{}' is not a TTL: expected 0 to {MAX_TTL}", t.text),
                    )
                })?;
        }
        "endpoint_pod_names" => {
            args.none()?;
            cfg.endpoint_pod_names = true;
        }
        "namespaces" => {
            cfg.namespaces = args
                .some("one or more namespace names")?
                .iter()
                .map(|t| t.text.to_ascii_lowercase())
                .collect();
        }
        "labels" | "namespace_labels" => {
            let words = args.some("a label selector such as 'app=web'")?;
            let text = words
                .iter()
                .map(|t| t.text.as_str())
                .collect::<Vec<_>>()
                .join(" ");
            let sel = Selector::parse(&text).map_err(|m| args.err(&words[0], m))?;
            if name == "labels" {
                cfg.labels = Some(sel);
            } else {
                cfg.namespace_labels = Some(sel);
            }
        }
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
        "kubeconfig" | "endpoint" | "tls" => {
            return Err(args.err_here(format!(
                "connecting to the Kubernetes API ('{name}') is not implemented yet; use 'objects PATH'"
            )));
        }
        "resyncperiod"
        | "multicluster"
        | "apiserver_qps"
        | "apiserver_burst"
        | "apiserver_max_inflight"
        | "zonal"
        | "transfer" => {
            return Err(args.err_here(format!(
                "property '{name}' is not supported by clusterdns yet"
            )));
        }
        other => {
            return Err(args
                .err_here(format!(
                    "unknown property '{other}'; expected one of: {PROPERTIES}"
                ))
                .with_msg(|m| m.replacen(&format!("kubernetes: {other}: "), "kubernetes: ", 1)));
        }
    }
    Ok(())
}

impl ConfigError {
    fn with_msg(mut self, f: impl FnOnce(&str) -> String) -> Self {
        self.msg = f(&self.msg);
        self
    }
}
