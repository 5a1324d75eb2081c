//! Slim objects: only the fields DNS needs, copied out of the Kubernetes API types at the boundary
//! (CoreDNS learned from OOMs to drop the rest). Names are lower-cased here, once. The same
//! conversions serve the objects file and, later, the API watchers.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Namespace, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use smallvec::SmallVec;

/// `namespace/name`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key {
    pub namespace: Arc<str>,
    pub name: Arc<str>,
}

impl Key {
    pub fn new(namespace: &str, name: &str) -> Self {
        Self {
            namespace: Arc::from(namespace),
            name: Arc::from(name),
        }
    }
}

impl std::fmt::Display for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ServiceKind {
    /// ClusterIP, NodePort and LoadBalancer Services: their cluster IPs, every family.
    ClusterIp(Vec<IpAddr>),
    /// `clusterIP: None`: answered from the ready endpoints.
    Headless,
    /// `type: ExternalName`: a CNAME to this (lower-cased, absolute) name.
    ExternalName(String),
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SlimPort {
    /// Lower-cased; empty for an unnamed port.
    pub name: String,
    /// Lower-cased: `tcp`, `udp` or `sctp`.
    pub protocol: Cow<'static, str>,
    pub port: u16,
}

/// A list of ports, shared: Services and slices repeat the same few lists (`http/8080`,
/// `metrics/9090`), and the index keeps one copy of each.
pub type Ports = Arc<[SlimPort]>;

/// An address a Service is reachable at from outside the cluster (`k8s_external` answers them).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum External {
    Ip(IpAddr),
    /// A load balancer known by name (a cloud's LB hostname): lower-cased, absolute.
    Host(hickory_proto::rr::Name),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SlimService {
    pub key: Key,
    pub kind: ServiceKind,
    pub ports: Ports,
    pub publish_not_ready: bool,
    /// `spec.externalIPs`, then `status.loadBalancer.ingress` (an IP, else its hostname), in
    /// that order, as CoreDNS lists them.
    pub external: Vec<External>,
}

/// One endpoint: a cluster has hundreds of thousands, nearly all with one address, so the
/// address is kept inline and the strings without room to grow.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SlimEndpoint {
    pub addresses: SmallVec<[IpAddr; 1]>,
    pub hostname: Option<Box<str>>,
    /// The name in `targetRef` when it points at a Pod, kept only where `endpoint_pod_names`
    /// names endpoints by it.
    pub pod_name: Option<Box<str>>,
    /// The topology zone it is in (`zone`, lower case), kept only where `zonal` names select
    /// by it.
    pub zone: Option<Box<str>>,
    /// `conditions.ready`, where an absent value means ready (as the API defines it).
    pub ready: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SlimSlice {
    pub key: Key,
    /// The Service this slice belongs to (label `kubernetes.io/service-name`); empty for a
    /// slice that only a ServiceImport owns.
    pub service: Arc<str>,
    pub endpoints: Vec<SlimEndpoint>,
    /// Ports of this slice; `None` when the slice declares none (CoreDNS's "port -1").
    pub ports: Option<Ports>,
    /// The multi-cluster Service it belongs to, for a slice labelled with one. Boxed: few
    /// slices are.
    pub import: Option<Box<ImportLabels>>,
}

/// The MCS API's labels on an EndpointSlice of an imported Service.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImportLabels {
    /// `multicluster.kubernetes.io/service-name`: the ServiceImport, in the slice's namespace.
    pub service: Arc<str>,
    /// `multicluster.kubernetes.io/source-cluster`: the cluster ID the endpoints are in, when
    /// it is a DNS label (`HOST.CLUSTER.SVC.NS.svc.ZONE` names need one).
    pub cluster: Option<Arc<str>>,
}

/// What kind of multi-cluster Service a ServiceImport is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ImportKind {
    /// `type: ClusterSetIP`: answered with `spec.ips`.
    ClusterSetIp(Vec<IpAddr>),
    /// `type: Headless`: answered from the ready endpoints of its labelled slices.
    Headless,
}

/// A ServiceImport (`multicluster.x-k8s.io/v1alpha1`), as DNS needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SlimImport {
    pub key: Key,
    pub kind: ImportKind,
    pub ports: Ports,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SlimPod {
    pub key: Key,
    pub ips: Vec<IpAddr>,
}

pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";
/// The MCS API's label naming the ServiceImport a slice belongs to (KEP-1645).
pub const IMPORT_NAME_LABEL: &str = "multicluster.kubernetes.io/service-name";
/// The MCS API's label naming the cluster a slice's endpoints are in (KEP-1645, KEP-2149).
pub const SOURCE_CLUSTER_LABEL: &str = "multicluster.kubernetes.io/source-cluster";

/// Why an object could not be used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{what}: {msg}")]
pub struct SlimError {
    pub what: String,
    pub msg: String,
}

fn meta_key(
    kind: &str,
    meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
) -> Result<Key, SlimError> {
    let name = meta
        .name
        .as_deref()
        .unwrap_or_default()
        .to_ascii_lowercase();
    let namespace = meta
        .namespace
        .as_deref()
        .unwrap_or("default")
        .to_ascii_lowercase();
    let what = format!("{kind} {namespace}/{name}");
    if !is_label(&name) {
        return Err(SlimError {
            what,
            msg:
                "metadata.name must be a DNS label (lower-case letters, digits and '-', at most 63)"
                    .into(),
        });
    }
    if !is_label(&namespace) {
        return Err(SlimError {
            what,
            msg: "metadata.namespace must be a DNS label".into(),
        });
    }
    Ok(Key::new(&namespace, &name))
}

/// Whether `s` is usable as one DNS label of a cluster name.
pub fn is_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

fn parse_ip(what: &str, field: &str, text: &str) -> Result<IpAddr, SlimError> {
    text.trim().parse().map_err(|_| SlimError {
        what: what.to_string(),
        msg: format!("{field}: '{text}' is not an IP address"),
    })
}

fn port_name(name: Option<&str>) -> String {
    name.unwrap_or_default().to_ascii_lowercase()
}

/// Lower case; the three the API allows cost no allocation (a cluster has tens of thousands
/// of ports).
fn protocol(p: Option<&str>) -> Cow<'static, str> {
    let p = p.unwrap_or("TCP");
    ["tcp", "udp", "sctp"]
        .into_iter()
        .find(|known| p.eq_ignore_ascii_case(known))
        .map_or_else(|| Cow::Owned(p.to_ascii_lowercase()), Cow::Borrowed)
}

/// `spec.ports` of a Service or a ServiceImport, as `(name, protocol, port)`.
fn spec_ports<'a>(
    what: &str,
    ports: impl ExactSizeIterator<Item = (Option<&'a str>, Option<&'a str>, i32)>,
) -> Result<Vec<SlimPort>, SlimError> {
    let mut out = Vec::with_capacity(ports.len());
    for (name, proto, number) in ports {
        let port = u16::try_from(number).map_err(|_| SlimError {
            what: what.to_string(),
            msg: format!("spec.ports: {number} is not a port number"),
        })?;
        out.push(SlimPort {
            name: port_name(name),
            protocol: protocol(proto),
            port,
        });
    }
    Ok(out)
}

pub fn service(svc: &Service) -> Result<SlimService, SlimError> {
    let key = meta_key("Service", &svc.metadata)?;
    let what = format!("Service {key}");
    let spec = svc.spec.clone().unwrap_or_default();
    let kind = if spec.type_.as_deref() == Some("ExternalName") {
        let target = spec.external_name.unwrap_or_default();
        let target = target.trim_end_matches('.').to_ascii_lowercase();
        if target.is_empty() {
            return Err(SlimError {
                what,
                msg: "spec.externalName is empty for a Service of type ExternalName".into(),
            });
        }
        ServiceKind::ExternalName(format!("{target}."))
    } else {
        let mut ips = Vec::new();
        let listed = spec
            .cluster_ips
            .clone()
            .filter(|l| !l.is_empty())
            .or_else(|| spec.cluster_ip.clone().map(|ip| vec![ip]))
            .unwrap_or_default();
        let headless = listed.is_empty() || listed.iter().any(|ip| ip == "None" || ip.is_empty());
        if headless {
            ServiceKind::Headless
        } else {
            for ip in &listed {
                let ip = parse_ip(&what, "spec.clusterIPs", ip)?;
                if !ips.contains(&ip) {
                    ips.push(ip);
                }
            }
            // Kept for the Service's life: no room to grow (a push starts at four).
            ips.shrink_to_fit();
            ServiceKind::ClusterIp(ips)
        }
    };
    let ports = spec_ports(
        &what,
        spec.ports
            .as_deref()
            .unwrap_or_default()
            .iter()
            .map(|p| (p.name.as_deref(), p.protocol.as_deref(), p.port)),
    )?;
    let mut external = Vec::new();
    for ip in spec.external_ips.iter().flatten() {
        external.push(External::Ip(parse_ip(&what, "spec.externalIPs", ip)?));
    }
    let ingress = svc
        .status
        .as_ref()
        .and_then(|s| s.load_balancer.as_ref())
        .and_then(|lb| lb.ingress.as_ref());
    for lb in ingress.into_iter().flatten() {
        match (lb.ip.as_deref(), lb.hostname.as_deref()) {
            (Some(ip), _) if !ip.is_empty() => external.push(External::Ip(parse_ip(
                &what,
                "status.loadBalancer.ingress.ip",
                ip,
            )?)),
            (_, Some(host)) if !host.is_empty() => {
                let name = crate::dns::name::fqdn(host.trim_end_matches('.'))
                    .filter(|n| !n.is_root() && host.parse::<IpAddr>().is_err());
                let Some(name) = name else {
                    return Err(SlimError {
                        what,
                        msg: format!(
                            "status.loadBalancer.ingress.hostname: '{host}' is not a host name"
                        ),
                    });
                };
                external.push(External::Host(name));
            }
            _ => {}
        }
    }
    external.shrink_to_fit();
    Ok(SlimService {
        key,
        kind,
        ports: ports.into(),
        publish_not_ready: spec.publish_not_ready_addresses.unwrap_or(false),
        external,
    })
}

/// What of an EndpointSlice is kept beyond what every block needs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SliceKeep {
    /// The endpoints' pod names (`endpoint_pod_names`).
    pub pod_names: bool,
    /// The slices of ServiceImports (`multicluster`).
    pub imports: bool,
    /// The endpoints' topology zones (`zonal`).
    pub zones: bool,
}

/// `Ok(None)` for slices DNS does not use (FQDN address type, no owning Service, nor with
/// `keep.imports` an owning ServiceImport).
pub fn endpoint_slice(
    slice: &EndpointSlice,
    keep: SliceKeep,
) -> Result<Option<SlimSlice>, SlimError> {
    let SliceKeep {
        pod_names,
        imports,
        zones,
    } = keep;
    let key = meta_key("EndpointSlice", &slice.metadata)?;
    let what = format!("EndpointSlice {key}");
    if slice.address_type != "IPv4" && slice.address_type != "IPv6" {
        return Ok(None);
    }
    let label = |name: &str| {
        slice
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(name))
            .map(|s| s.to_ascii_lowercase())
            .filter(|s| !s.is_empty())
    };
    let service = label(SERVICE_NAME_LABEL);
    let import = label(IMPORT_NAME_LABEL).filter(|_| imports).map(|service| {
        Box::new(ImportLabels {
            service: Arc::from(service),
            cluster: label(SOURCE_CLUSTER_LABEL)
                .filter(|c| is_label(c))
                .map(Arc::from),
        })
    });
    if service.is_none() && import.is_none() {
        return Ok(None);
    }
    let service = service.unwrap_or_default();
    let mut endpoints = Vec::with_capacity(slice.endpoints.len());
    for e in &slice.endpoints {
        let mut addresses = SmallVec::with_capacity(e.addresses.len());
        for a in &e.addresses {
            addresses.push(parse_ip(&what, "endpoints.addresses", a)?);
        }
        let pod_name = e
            .target_ref
            .as_ref()
            .filter(|_| pod_names)
            .filter(|r| r.kind.as_deref().is_none_or(|k| k == "Pod"))
            .and_then(|r| r.name.as_deref())
            .map(|n| n.to_ascii_lowercase().into_boxed_str());
        endpoints.push(SlimEndpoint {
            addresses,
            hostname: e
                .hostname
                .as_deref()
                .map(|h| h.to_ascii_lowercase().into_boxed_str()),
            pod_name,
            zone: e
                .zone
                .as_deref()
                .filter(|_| zones)
                .filter(|z| !z.is_empty())
                .map(|z| z.to_ascii_lowercase().into_boxed_str()),
            ready: e.conditions.as_ref().and_then(|c| c.ready).unwrap_or(true),
        });
    }
    let ports = match &slice.ports {
        Some(ports) if !ports.is_empty() => {
            let mut out = Vec::with_capacity(ports.len());
            for p in ports {
                let Some(number) = p.port else { continue };
                let port = u16::try_from(number).map_err(|_| SlimError {
                    what: what.clone(),
                    msg: format!("ports: {number} is not a port number"),
                })?;
                out.push(SlimPort {
                    name: port_name(p.name.as_deref()),
                    protocol: protocol(p.protocol.as_deref()),
                    port,
                });
            }
            Some(out.into())
        }
        _ => None,
    };
    Ok(Some(SlimSlice {
        key,
        service: Arc::from(service),
        endpoints,
        ports,
        import,
    }))
}

/// A ServiceImport, the MCS API's custom resource (`multicluster.x-k8s.io/v1alpha1`), with
/// the fields DNS reads. k8s-openapi has no type for it; this one implements its traits so
/// that kube lists and watches it as it does the built-in kinds.
#[derive(Clone, Debug, Default, serde::Deserialize, serde::Serialize)]
pub struct ServiceImport {
    #[serde(default)]
    pub metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
    #[serde(default)]
    pub spec: ServiceImportSpec,
}

#[derive(Clone, Debug, Default, serde::Deserialize, serde::Serialize)]
pub struct ServiceImportSpec {
    /// `ClusterSetIP` or `Headless`.
    #[serde(rename = "type", default)]
    pub type_: Option<String>,
    #[serde(default)]
    pub ips: Option<Vec<String>>,
    #[serde(default)]
    pub ports: Option<Vec<ServiceImportPort>>,
}

#[derive(Clone, Debug, Default, serde::Deserialize, serde::Serialize)]
pub struct ServiceImportPort {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub protocol: Option<String>,
    pub port: i32,
}

impl k8s_openapi::Resource for ServiceImport {
    const API_VERSION: &'static str = "multicluster.x-k8s.io/v1alpha1";
    const GROUP: &'static str = "multicluster.x-k8s.io";
    const KIND: &'static str = "ServiceImport";
    const VERSION: &'static str = "v1alpha1";
    const URL_PATH_SEGMENT: &'static str = "serviceimports";
    type Scope = k8s_openapi::NamespaceResourceScope;
}

impl k8s_openapi::ListableResource for ServiceImport {
    const LIST_KIND: &'static str = "ServiceImportList";
}

impl k8s_openapi::Metadata for ServiceImport {
    type Ty = k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
    fn metadata(&self) -> &Self::Ty {
        &self.metadata
    }
    fn metadata_mut(&mut self) -> &mut Self::Ty {
        &mut self.metadata
    }
}

pub fn service_import(imp: &ServiceImport) -> Result<SlimImport, SlimError> {
    let key = meta_key("ServiceImport", &imp.metadata)?;
    let what = format!("ServiceImport {key}");
    let spec = &imp.spec;
    let kind = match spec.type_.as_deref() {
        Some("Headless") => ImportKind::Headless,
        Some("ClusterSetIP") | None => {
            let mut ips = Vec::new();
            for text in spec.ips.iter().flatten() {
                let ip = parse_ip(&what, "spec.ips", text)?;
                if !ips.contains(&ip) {
                    ips.push(ip);
                }
            }
            ImportKind::ClusterSetIp(ips)
        }
        Some(other) => {
            return Err(SlimError {
                what,
                msg: format!("spec.type: '{other}'; expected ClusterSetIP or Headless"),
            });
        }
    };
    let ports = spec_ports(
        &what,
        spec.ports
            .as_deref()
            .unwrap_or_default()
            .iter()
            .map(|p| (p.name.as_deref(), p.protocol.as_deref(), p.port)),
    )?;
    Ok(SlimImport {
        key,
        kind,
        ports: ports.into(),
    })
}

/// `Ok(None)` for pods that have finished or have no IP yet.
pub fn pod(pod: &Pod) -> Result<Option<SlimPod>, SlimError> {
    let key = meta_key("Pod", &pod.metadata)?;
    let what = format!("Pod {key}");
    let Some(status) = &pod.status else {
        return Ok(None);
    };
    if matches!(status.phase.as_deref(), Some("Succeeded") | Some("Failed")) {
        return Ok(None);
    }
    let mut ips = Vec::new();
    let listed = status
        .pod_ips
        .iter()
        .flatten()
        .map(|p| p.ip.as_str())
        .chain(status.pod_ip.as_deref());
    for text in listed {
        let ip = parse_ip(&what, "status.podIPs", text)?;
        if !ips.contains(&ip) {
            ips.push(ip);
        }
    }
    if ips.is_empty() {
        return Ok(None);
    }
    Ok(Some(SlimPod { key, ips }))
}

/// A namespace's name and labels (labels only matter to `namespace_labels`).
pub fn namespace(ns: &Namespace) -> Result<(Arc<str>, BTreeMap<String, String>), SlimError> {
    let name = ns
        .metadata
        .name
        .as_deref()
        .unwrap_or_default()
        .to_ascii_lowercase();
    if !is_label(&name) {
        return Err(SlimError {
            what: format!("Namespace {name}"),
            msg: "metadata.name must be a DNS label".into(),
        });
    }
    Ok((
        Arc::from(name),
        ns.metadata.labels.clone().unwrap_or_default(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from_json(v: serde_json::Value) -> Result<SlimService, SlimError> {
        service(&serde_json::from_value::<Service>(v).unwrap())
    }

    #[test]
    fn external_addresses_are_external_ips_then_ingress() {
        let svc = from_json(serde_json::json!({
            "metadata": {"name": "web", "namespace": "shop"},
            "spec": {"type": "LoadBalancer", "clusterIP": "10.96.0.5",
                     "externalIPs": ["198.51.100.7"]},
            "status": {"loadBalancer": {"ingress": [
                {"ip": "203.0.113.1"}, {"hostname": "LB-1.Example.com."}, {"ip": "", "hostname": ""}
            ]}},
        }))
        .unwrap();
        assert_eq!(
            svc.external,
            [
                External::Ip("198.51.100.7".parse().unwrap()),
                External::Ip("203.0.113.1".parse().unwrap()),
                External::Host(crate::dns::name::fqdn("lb-1.example.com").unwrap()),
            ]
        );
        let plain = from_json(serde_json::json!({
            "metadata": {"name": "web", "namespace": "shop"},
            "spec": {"clusterIP": "10.96.0.5"},
        }))
        .unwrap();
        assert!(plain.external.is_empty());
    }

    #[test]
    fn bad_external_addresses_name_the_field() {
        for (status, spec_ips, field) in [
            (
                serde_json::json!({}),
                vec!["nope"],
                "spec.externalIPs: 'nope'",
            ),
            (
                serde_json::json!({"loadBalancer": {"ingress": [{"ip": "1.2.3"}]}}),
                vec![],
                "status.loadBalancer.ingress.ip: '1.2.3'",
            ),
            (
                serde_json::json!({"loadBalancer": {"ingress": [{"hostname": "10.0.0.1"}]}}),
                vec![],
                "status.loadBalancer.ingress.hostname: '10.0.0.1' is not a host name",
            ),
        ] {
            let err = from_json(serde_json::json!({
                "metadata": {"name": "web", "namespace": "shop"},
                "spec": {"clusterIP": "10.96.0.5", "externalIPs": spec_ips},
                "status": status,
            }))
            .unwrap_err();
            assert!(err.to_string().contains(field), "{err}");
            assert!(err.to_string().starts_with("Service shop/web"), "{err}");
        }
    }

    #[test]
    fn a_slice_of_an_import_is_read_only_with_imports() {
        let slice = |labels: serde_json::Value| -> EndpointSlice {
            serde_json::from_value(serde_json::json!({
                "metadata": {"name": "pg-east", "namespace": "db", "labels": labels},
                "addressType": "IPv4",
                "endpoints": [{"addresses": ["10.1.0.10"]}],
            }))
            .unwrap()
        };
        let only_import = slice(serde_json::json!({
            IMPORT_NAME_LABEL: "PG", SOURCE_CLUSTER_LABEL: "East"
        }));
        assert_eq!(
            endpoint_slice(
                &only_import,
                SliceKeep {
                    pod_names: false,
                    imports: false,
                    zones: false
                }
            )
            .unwrap(),
            None
        );
        let kept = endpoint_slice(
            &only_import,
            SliceKeep {
                pod_names: false,
                imports: true,
                zones: false,
            },
        )
        .unwrap()
        .unwrap();
        assert_eq!(&*kept.service, "");
        assert_eq!(
            kept.import.as_deref(),
            Some(&ImportLabels {
                service: Arc::from("pg"),
                cluster: Some(Arc::from("east")),
            })
        );
        // Both labels: the Service's slice, and the import's only with `imports`. A cluster ID
        // that is not a DNS label is not kept.
        let both = slice(serde_json::json!({
            SERVICE_NAME_LABEL: "derived-pg", IMPORT_NAME_LABEL: "pg",
            SOURCE_CLUSTER_LABEL: "not a label"
        }));
        let without = endpoint_slice(
            &both,
            SliceKeep {
                pod_names: false,
                imports: false,
                zones: false,
            },
        )
        .unwrap()
        .unwrap();
        assert_eq!((&*without.service, without.import), ("derived-pg", None));
        let with = endpoint_slice(
            &both,
            SliceKeep {
                pod_names: false,
                imports: true,
                zones: false,
            },
        )
        .unwrap()
        .unwrap();
        assert_eq!(with.import.and_then(|l| l.cluster), None);
    }

    #[test]
    fn endpoints_keep_their_pod_name_only_when_asked() {
        let slice: EndpointSlice = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "web-x1", "namespace": "Shop",
                         "labels": {SERVICE_NAME_LABEL: "web"}},
            "addressType": "IPv4",
            "endpoints": [{"addresses": ["10.0.0.1"], "hostname": "Db-0",
                           "targetRef": {"kind": "Pod", "name": "Web-7f9"}}],
        }))
        .unwrap();
        let kept = endpoint_slice(
            &slice,
            SliceKeep {
                pod_names: true,
                imports: false,
                zones: false,
            },
        )
        .unwrap()
        .unwrap();
        let e = &kept.endpoints[0];
        assert_eq!(e.pod_name.as_deref(), Some("web-7f9"));
        assert_eq!(e.hostname.as_deref(), Some("db-0"));
        assert_eq!(
            e.addresses.as_slice(),
            ["10.0.0.1".parse::<IpAddr>().unwrap()]
        );
        assert_eq!(kept.key, Key::new("shop", "web-x1"));
        let dropped = endpoint_slice(
            &slice,
            SliceKeep {
                pod_names: false,
                imports: false,
                zones: false,
            },
        )
        .unwrap()
        .unwrap();
        assert_eq!(dropped.endpoints[0].pod_name, None);
        assert_eq!(dropped.endpoints[0].hostname.as_deref(), Some("db-0"));
    }
}
