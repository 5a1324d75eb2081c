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
//!     upstream                        # accepted and ignored, as in CoreDNS
//! }
//! ```

use std::path::PathBuf;
use std::time::Duration;

use hickory_proto::rr::Name;

use crate::corefile::{Directive, Pos, Token};

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

/// `ttl N`, 0 to [`MAX_TTL`] seconds (`kubernetes` and `k8s_external` take the same range).
pub fn parse_ttl(args: &Args) -> Result<u32, ConfigError> {
    let t = args.one("a TTL in seconds")?;
    t.text
        .parse::<u32>()
        .ok()
        .filter(|v| *v <= MAX_TTL)
        .ok_or_else(|| {
            args.err(
                t,
                format!("'{}' is not a TTL: expected 0 to {MAX_TTL}", t.text),
            )
        })
}

/// `fallthrough [ZONES…]`: every name when no zone is given.
pub fn parse_fallthrough(args: &Args) -> Result<Fallthrough, ConfigError> {
    if args.rest.is_empty() {
        return Ok(Fallthrough::All);
    }
    let mut zones = Vec::new();
    for a in args.rest {
        zones.extend(parse_zone(&a.text).map_err(|m| args.err(a, m))?);
    }
    Ok(Fallthrough::Zones(zones))
}

/// Where the cluster's objects come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// `objects PATH`: a YAML/JSON file or a folder of them.
    Objects(PathBuf),
    /// The Kubernetes API, watched.
    Api(ApiConfig),
}

/// How to reach the Kubernetes API. All `None`: in-cluster, with the pod's service account.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ApiConfig {
    /// `kubeconfig PATH [CONTEXT]`.
    pub kubeconfig: Option<PathBuf>,
    pub context: Option<String>,
    /// `endpoint URL`.
    pub endpoint: Option<String>,
    /// `tls CERT KEY CACERT` (with `endpoint`).
    pub tls: Option<TlsFiles>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub ca: PathBuf,
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
    /// Where the `objects` property stands, for errors in reading the file it names.
    pub objects_at: Option<Pos>,
}

impl KubernetesConfig {
    /// An error from loading the objects file, told as `check` and startup print it: where
    /// the error has no place in the file (it cannot be read, say), at the `objects` line of
    /// the Corefile; else at its place in the objects file.
    pub fn objects_error(&self, e: &crate::cluster::file::LoadError) -> String {
        match (&self.objects_at, e.line) {
            (Some(at), None) => format!("{at}: kubernetes: objects: {e}"),
            _ => e.to_string(),
        }
    }
}

pub const DEFAULT_TTL: u32 = 5;
pub const MAX_TTL: u32 = 3600;

const PROPERTIES: &str = "kubeconfig, endpoint, tls, objects, pods, fallthrough, ttl, endpoint_pod_names, namespaces, labels, namespace_labels, noendpoints, ignore, startup_timeout, upstream";

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
        objects_at: None,
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

fn property(
    cfg: &mut KubernetesConfig,
    source: &mut Sources,
    name: &str,
    args: &Args,
) -> Result<(), ConfigError> {
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
        "tls" => {
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
        "fallthrough" => cfg.fallthrough = parse_fallthrough(args)?,
        "ttl" => cfg.ttl = parse_ttl(args)?,
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
