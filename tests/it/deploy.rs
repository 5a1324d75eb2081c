//! deploy/kubernetes: both overlays render with `kubectl kustomize`, parse into k8s-openapi
//! types and carry the stock kube-system values that kubeadm upgrades, dashboards, alerts and
//! NetworkPolicies written for CoreDNS key on: names, labels, ports, probes, RBAC, security
//! context and scheduling. The expected values below are kubeadm's, written out here on their
//! own so that an edit to the manifests cannot change what they are checked against.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::process::Command;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Container, Probe, Service, ServiceAccount};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use clusterdns::config::{self, LoadOptions};

use crate::compat::{Upstreams, check, localize};
use crate::support;

/// kubeadm's Corefile (its `CoreDNSConfigMap` with the domain cluster.local).
const KUBEADM_COREFILE: &str = "\
.:53 {
    errors
    health {
       lameduck 5s
    }
    ready
    kubernetes cluster.local in-addr.arpa ip6.arpa {
       pods insecure
       fallthrough in-addr.arpa ip6.arpa
       ttl 30
    }
    prometheus :9153
    forward . /etc/resolv.conf {
       max_concurrent 1000
    }
    cache 30 {
       disable success cluster.local
       disable denial cluster.local
    }
    loop
    reload
    loadbalance
}
";

const IMAGE: &str = "registry.example/clusterdns:0.1.0";

/// `kubectl kustomize DIR`, split into its objects.
pub fn render(overlay: &str) -> Vec<Value> {
    let dir = support::root()
        .join("deploy/kubernetes/overlays")
        .join(overlay);
    let out = Command::new("kubectl")
        .arg("kustomize")
        .arg(&dir)
        .output()
        .unwrap_or_else(|e| {
            panic!("kubectl: {e} (.ci/run installs it: Debian's kubernetes-client)")
        });
    assert!(
        out.status.success(),
        "kubectl kustomize {}: {}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).expect("kustomize prints UTF-8");
    yaml_serde::Deserializer::from_str(&text)
        .map(|doc| Value::deserialize(doc).expect("kustomize prints YAML"))
        .filter(|v| !v.is_null())
        .collect()
}

/// The one object of this kind and name, as its k8s-openapi type.
fn object<T: DeserializeOwned>(objects: &[Value], kind: &str, name: &str) -> T {
    let found: Vec<&Value> = objects
        .iter()
        .filter(|o| o["kind"] == kind && o["metadata"]["name"] == name)
        .collect();
    assert_eq!(found.len(), 1, "{kind} {name}: {found:?}");
    serde_json::from_value(found[0].clone())
        .unwrap_or_else(|e| panic!("{kind} {name} does not parse as k8s-openapi's type: {e}"))
}

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// A ClusterRole's rules as `(groups, resources, verbs)`.
fn rules_of(role: ClusterRole) -> Vec<(Vec<String>, Vec<String>, Vec<String>)> {
    role.rules
        .unwrap()
        .into_iter()
        .map(|r| (r.api_groups.unwrap(), r.resources.unwrap(), r.verbs))
        .collect()
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

#[test]
fn the_fresh_overlay_is_the_stock_kube_system_install() {
    let objects = render("fresh");
    let mut kinds: Vec<String> = objects
        .iter()
        .map(|o| {
            format!(
                "{} {} {}",
                o["kind"].as_str().unwrap(),
                o["metadata"]["namespace"].as_str().unwrap_or("-"),
                o["metadata"]["name"].as_str().unwrap()
            )
        })
        .collect();
    kinds.sort();
    assert_eq!(
        kinds,
        [
            "ClusterRole - system:coredns",
            "ClusterRoleBinding - system:coredns",
            "ConfigMap kube-system coredns",
            "Deployment kube-system coredns",
            "PodDisruptionBudget kube-system coredns",
            "Service kube-system kube-dns",
            "ServiceAccount kube-system coredns",
        ]
    );

    let _: ServiceAccount = object(&objects, "ServiceAccount", "coredns");

    // RBAC: list and watch of what the kubernetes plugin reads, nothing else.
    let role: ClusterRole = object(&objects, "ClusterRole", "system:coredns");
    let rules = rules_of(role);
    assert_eq!(
        rules,
        [
            (
                strings(&[""]),
                strings(&["endpoints", "services", "pods", "namespaces"]),
                strings(&["list", "watch"])
            ),
            (
                strings(&["discovery.k8s.io"]),
                strings(&["endpointslices"]),
                strings(&["list", "watch"])
            ),
        ]
    );
    let binding: ClusterRoleBinding = object(&objects, "ClusterRoleBinding", "system:coredns");
    assert_eq!(
        (
            binding.role_ref.api_group.as_str(),
            binding.role_ref.kind.as_str(),
            binding.role_ref.name.as_str()
        ),
        ("rbac.authorization.k8s.io", "ClusterRole", "system:coredns")
    );
    let subjects: Vec<(String, Option<String>, Option<String>)> = binding
        .subjects
        .unwrap()
        .into_iter()
        .map(|s| (s.kind, s.name.into(), s.namespace))
        .collect();
    assert_eq!(
        subjects,
        [(
            "ServiceAccount".to_string(),
            Some("coredns".to_string()),
            Some("kube-system".to_string())
        )]
    );

    // The ConfigMap holds kubeadm's Corefile, and clusterdns loads it.
    let cm: ConfigMap = object(&objects, "ConfigMap", "coredns");
    let data = cm.data.unwrap();
    assert_eq!(data.keys().collect::<Vec<_>>(), ["Corefile"]);
    assert_eq!(data["Corefile"], KUBEADM_COREFILE);
    if let Err(e) = config::from_str("Corefile", &data["Corefile"], &LoadOptions::default()) {
        panic!("the ConfigMap's Corefile does not load: {e}");
    }

    // The Service: the name, labels, annotations and ports every pod and dashboard expects.
    let svc: Service = object(&objects, "Service", "kube-dns");
    assert_eq!(
        svc.metadata.labels.unwrap(),
        map(&[
            ("k8s-app", "kube-dns"),
            ("kubernetes.io/cluster-service", "true"),
            ("kubernetes.io/name", "CoreDNS"),
        ])
    );
    assert_eq!(
        svc.metadata.annotations.unwrap(),
        map(&[
            ("prometheus.io/port", "9153"),
            ("prometheus.io/scrape", "true")
        ])
    );
    let spec = svc.spec.unwrap();
    assert_eq!(spec.cluster_ip.as_deref(), Some("10.96.0.10"));
    assert_eq!(spec.selector.unwrap(), map(&[("k8s-app", "kube-dns")]));
    let ports: Vec<(String, i32, String, IntOrString)> = spec
        .ports
        .unwrap()
        .into_iter()
        .map(|p| {
            (
                p.name.unwrap(),
                p.port,
                p.protocol.unwrap(),
                p.target_port.unwrap(),
            )
        })
        .collect();
    assert_eq!(
        ports,
        [
            ("dns".into(), 53, "UDP".into(), IntOrString::Int(53)),
            ("dns-tcp".into(), 53, "TCP".into(), IntOrString::Int(53)),
            ("metrics".into(), 9153, "TCP".into(), IntOrString::Int(9153)),
        ]
    );

    let deployment: Deployment = object(&objects, "Deployment", "coredns");
    check_stock_deployment(&deployment);
    assert_eq!(
        deployment.spec.unwrap().template.spec.unwrap().containers[0]
            .image
            .as_deref(),
        Some(IMAGE)
    );

    let pdb: PodDisruptionBudget = object(&objects, "PodDisruptionBudget", "coredns");
    let spec = pdb.spec.unwrap();
    assert_eq!(spec.max_unavailable, Some(IntOrString::Int(1)));
    assert_eq!(spec.min_available, None);
    assert_eq!(
        spec.selector.unwrap().match_labels.unwrap(),
        map(&[("k8s-app", "kube-dns")])
    );
}

/// Everything of kubeadm's CoreDNS Deployment but the image.
fn check_stock_deployment(d: &Deployment) {
    assert_eq!(d.metadata.namespace.as_deref(), Some("kube-system"));
    assert_eq!(
        d.metadata.labels.clone().unwrap(),
        map(&[("k8s-app", "kube-dns")])
    );
    let spec = d.spec.clone().unwrap();
    assert_eq!(
        spec.replicas, None,
        "no replica count: the autoscaler or kubectl scale owns it"
    );
    let strategy = spec.strategy.unwrap();
    assert_eq!(strategy.type_.as_deref(), Some("RollingUpdate"));
    assert_eq!(
        strategy.rolling_update.unwrap().max_unavailable,
        Some(IntOrString::Int(1))
    );
    assert_eq!(
        spec.selector.match_labels.unwrap(),
        map(&[("k8s-app", "kube-dns")])
    );
    assert_eq!(
        spec.template.metadata.unwrap().labels.unwrap(),
        map(&[("k8s-app", "kube-dns")])
    );

    let pod = spec.template.spec.unwrap();
    assert_eq!(
        pod.priority_class_name.as_deref(),
        Some("system-cluster-critical")
    );
    assert_eq!(pod.service_account_name.as_deref(), Some("coredns"));
    assert_eq!(pod.dns_policy.as_deref(), Some("Default"));
    assert_eq!(
        pod.node_selector.unwrap(),
        map(&[("kubernetes.io/os", "linux")])
    );
    let tolerations: Vec<(Option<String>, Option<String>, Option<String>)> = pod
        .tolerations
        .unwrap()
        .into_iter()
        .map(|t| (t.key, t.operator, t.effect))
        .collect();
    assert_eq!(
        tolerations,
        [
            (
                Some("CriticalAddonsOnly".into()),
                Some("Exists".into()),
                None
            ),
            (
                Some("node-role.kubernetes.io/control-plane".into()),
                None,
                Some("NoSchedule".into())
            ),
        ]
    );
    let anti = pod
        .affinity
        .unwrap()
        .pod_anti_affinity
        .unwrap()
        .preferred_during_scheduling_ignored_during_execution
        .unwrap();
    assert_eq!(anti.len(), 1);
    assert_eq!(anti[0].weight, 100);
    assert_eq!(
        anti[0].pod_affinity_term.topology_key,
        "kubernetes.io/hostname"
    );
    let expr = &anti[0]
        .pod_affinity_term
        .label_selector
        .as_ref()
        .unwrap()
        .match_expressions
        .as_ref()
        .unwrap()[0];
    assert_eq!(
        (
            expr.key.as_str(),
            expr.operator.as_str(),
            expr.values.clone()
        ),
        ("k8s-app", "In", Some(strings(&["kube-dns"])))
    );
    let volumes = pod.volumes.unwrap();
    assert_eq!(volumes.len(), 1);
    assert_eq!(volumes[0].name, "config-volume");
    let cm = volumes[0].config_map.as_ref().unwrap();
    assert_eq!(cm.name, "coredns");
    let items: Vec<(String, String)> = cm
        .items
        .clone()
        .unwrap()
        .into_iter()
        .map(|i| (i.key, i.path))
        .collect();
    assert_eq!(items, [("Corefile".to_string(), "Corefile".to_string())]);

    assert_eq!(pod.containers.len(), 1);
    check_stock_container(&pod.containers[0]);
}

fn check_stock_container(c: &Container) {
    assert_eq!(c.name, "coredns");
    assert_eq!(c.image_pull_policy.as_deref(), Some("IfNotPresent"));
    assert_eq!(c.args.clone().unwrap(), ["-conf", "/etc/coredns/Corefile"]);
    assert_eq!(
        c.command, None,
        "the image's entrypoint runs, as CoreDNS's does"
    );
    let resources = c.resources.clone().unwrap();
    let quantities =
        |m: Option<BTreeMap<String, k8s_openapi::apimachinery::pkg::api::resource::Quantity>>| {
            m.unwrap()
                .into_iter()
                .map(|(k, v)| (k, v.0))
                .collect::<BTreeMap<_, _>>()
        };
    assert_eq!(quantities(resources.limits), map(&[("memory", "170Mi")]));
    assert_eq!(
        quantities(resources.requests),
        map(&[("cpu", "100m"), ("memory", "70Mi")])
    );
    let mounts: Vec<(String, String, Option<bool>)> = c
        .volume_mounts
        .clone()
        .unwrap()
        .into_iter()
        .map(|m| (m.name, m.mount_path, m.read_only))
        .collect();
    assert_eq!(
        mounts,
        [(
            "config-volume".to_string(),
            "/etc/coredns".to_string(),
            Some(true)
        )]
    );
    let ports: Vec<(i32, Option<String>, Option<String>)> = c
        .ports
        .clone()
        .unwrap()
        .into_iter()
        .map(|p| (p.container_port, p.name, p.protocol))
        .collect();
    let port =
        |n: i32, name: &str, proto: &str| (n, Some(name.to_string()), Some(proto.to_string()));
    assert_eq!(
        ports,
        [
            port(53, "dns", "UDP"),
            port(53, "dns-tcp", "TCP"),
            port(9153, "metrics", "TCP"),
            port(8080, "liveness-probe", "TCP"),
            port(8181, "readiness-probe", "TCP"),
        ]
    );

    // Both probes: an HTTP GET of a path on a named port.
    let http_get = |probe: Option<Probe>| {
        let get = probe.unwrap().http_get.unwrap();
        (get.path.unwrap(), get.port, get.scheme.unwrap())
    };
    let named = |path: &str, port: &str| {
        (
            path.to_string(),
            IntOrString::String(port.into()),
            "HTTP".to_string(),
        )
    };
    assert_eq!(
        http_get(c.liveness_probe.clone()),
        named("/health", "liveness-probe")
    );
    assert_eq!(
        http_get(c.readiness_probe.clone()),
        named("/ready", "readiness-probe")
    );
    let live = c.liveness_probe.clone().unwrap();
    assert_eq!(
        (
            live.initial_delay_seconds,
            live.timeout_seconds,
            live.success_threshold,
            live.failure_threshold
        ),
        (Some(60), Some(5), Some(1), Some(5))
    );
    let sc = c.security_context.clone().unwrap();
    assert_eq!(sc.allow_privilege_escalation, Some(false));
    assert_eq!(sc.read_only_root_filesystem, Some(true));
    let caps = sc.capabilities.unwrap();
    assert_eq!(caps.add.unwrap(), ["NET_BIND_SERVICE"]);
    assert_eq!(caps.drop.unwrap(), ["ALL"]);
}

/// Leaves of a JSON value as `path = value`, for comparing shapes.
fn leaves(v: &Value, path: &str, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                leaves(v, &format!("{path}.{k}"), out);
            }
        }
        Value::Array(a) => {
            for (i, v) in a.iter().enumerate() {
                leaves(v, &format!("{path}[{i}]"), out);
            }
        }
        other => out.push(format!("{path} = {other}")),
    }
}

/// What server-side apply does with `patch` on `live` for the fields used here: maps merge,
/// and lists of named items (containers) merge by name.
fn apply(live: &mut Value, patch: &Value) {
    match (live, patch) {
        (Value::Object(l), Value::Object(p)) => {
            for (k, pv) in p {
                match l.get_mut(k) {
                    Some(lv) => apply(lv, pv),
                    None => {
                        l.insert(k.clone(), pv.clone());
                    }
                }
            }
        }
        (Value::Array(l), Value::Array(p)) if p.iter().all(|i| i["name"].is_string()) => {
            for pi in p {
                match l.iter_mut().find(|li| li["name"] == pi["name"]) {
                    Some(li) => apply(li, pi),
                    None => l.push(pi.clone()),
                }
            }
        }
        (l, p) => *l = p.clone(),
    }
}

#[test]
fn the_swap_image_overlay_changes_only_the_image() {
    let objects = render("swap-image");
    assert_eq!(objects.len(), 1, "{objects:?}");
    let patch = &objects[0];
    let mut shape = Vec::new();
    leaves(patch, "", &mut shape);
    shape.sort();
    assert_eq!(
        shape,
        [
            ".apiVersion = \"apps/v1\"",
            ".kind = \"Deployment\"",
            ".metadata.name = \"coredns\"",
            ".metadata.namespace = \"kube-system\"",
            &format!(".spec.template.spec.containers[0].image = \"{IMAGE}\""),
            ".spec.template.spec.containers[0].name = \"coredns\"",
        ]
    );
    let _: Deployment = serde_json::from_value(patch.clone()).expect("parses as a Deployment");

    // Applied to a stock CoreDNS Deployment (the fresh overlay's, with CoreDNS's image, as
    // kubeadm leaves it), it gives back that Deployment with our image and nothing else moved.
    let fresh = render("fresh");
    let ours = fresh
        .iter()
        .find(|o| o["kind"] == "Deployment")
        .unwrap()
        .clone();
    let mut live = ours.clone();
    live["spec"]["template"]["spec"]["containers"][0]["image"] =
        json!("registry.k8s.io/coredns/coredns:v1.12.1");
    apply(&mut live, patch);
    assert_eq!(live, ours);
    let swapped: Deployment = serde_json::from_value(live).unwrap();
    check_stock_deployment(&swapped);
}

/// k3s's packaged CoreDNS Deployment, the fields that matter to a swap: the second key of the
/// ConfigMap (`NodeHosts`) mounted beside the Corefile, the optional `coredns-custom` ConfigMap
/// at `/etc/coredns/custom`, topology spread instead of anti-affinity, and k3s's probe timings
/// (k3s-io/k3s `manifests/coredns.yaml`, with its template variables filled in).
fn k3s_deployment() -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "coredns",
            "namespace": "kube-system",
            "labels": {"k8s-app": "kube-dns", "kubernetes.io/name": "CoreDNS"}
        },
        "spec": {
            "revisionHistoryLimit": 0,
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1}},
            "selector": {"matchLabels": {"k8s-app": "kube-dns"}},
            "template": {
                "metadata": {"labels": {"k8s-app": "kube-dns"}},
                "spec": {
                    "priorityClassName": "system-cluster-critical",
                    "serviceAccountName": "coredns",
                    "tolerations": [
                        {"key": "CriticalAddonsOnly", "operator": "Exists"},
                        {"key": "node-role.kubernetes.io/control-plane", "operator": "Exists", "effect": "NoSchedule"}
                    ],
                    "nodeSelector": {"kubernetes.io/os": "linux"},
                    "topologySpreadConstraints": [{
                        "maxSkew": 1,
                        "topologyKey": "kubernetes.io/hostname",
                        "whenUnsatisfiable": "DoNotSchedule",
                        "labelSelector": {"matchLabels": {"k8s-app": "kube-dns"}}
                    }],
                    "containers": [{
                        "name": "coredns",
                        "image": "rancher/mirrored-coredns-coredns:1.12.1",
                        "imagePullPolicy": "IfNotPresent",
                        "resources": {"limits": {"memory": "170Mi"}, "requests": {"cpu": "100m", "memory": "70Mi"}},
                        "args": ["-conf", "/etc/coredns/Corefile"],
                        "volumeMounts": [
                            {"name": "config-volume", "mountPath": "/etc/coredns", "readOnly": true},
                            {"name": "custom-config-volume", "mountPath": "/etc/coredns/custom", "readOnly": true}
                        ],
                        "ports": [
                            {"containerPort": 53, "name": "dns", "protocol": "UDP"},
                            {"containerPort": 53, "name": "dns-tcp", "protocol": "TCP"},
                            {"containerPort": 9153, "name": "metrics", "protocol": "TCP"}
                        ],
                        "securityContext": {
                            "allowPrivilegeEscalation": false,
                            "capabilities": {"add": ["NET_BIND_SERVICE"], "drop": ["all"]},
                            "readOnlyRootFilesystem": true
                        },
                        "livenessProbe": {
                            "httpGet": {"path": "/health", "port": 8080, "scheme": "HTTP"},
                            "initialDelaySeconds": 60, "periodSeconds": 10, "timeoutSeconds": 1,
                            "successThreshold": 1, "failureThreshold": 3
                        },
                        "readinessProbe": {
                            "httpGet": {"path": "/ready", "port": 8181, "scheme": "HTTP"},
                            "initialDelaySeconds": 0, "periodSeconds": 2, "timeoutSeconds": 1,
                            "successThreshold": 1, "failureThreshold": 3
                        }
                    }],
                    "dnsPolicy": "Default",
                    "volumes": [
                        {"name": "config-volume", "configMap": {"name": "coredns", "items": [
                            {"key": "Corefile", "path": "Corefile"},
                            {"key": "NodeHosts", "path": "NodeHosts"}
                        ]}},
                        {"name": "custom-config-volume", "configMap": {"name": "coredns-custom", "optional": true}}
                    ]
                }
            }
        }
    })
}

/// Swapped into k3s's Deployment, the image changes and nothing else: the pod still mounts
/// `NodeHosts` and the optional custom folder, and clusterdns serves k3s's Corefile from files
/// laid out as kubelet lays out those volumes (k3s's ConfigMap, no `coredns-custom`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_k3s_the_swap_keeps_node_hosts_and_the_custom_imports() {
    let patch = render("swap-image").remove(0);
    let stock = k3s_deployment();
    let mut live = stock.clone();
    apply(&mut live, &patch);
    let mut expected = stock;
    expected["spec"]["template"]["spec"]["containers"][0]["image"] = json!(IMAGE);
    assert_eq!(live, expected);
    let swapped: Deployment = serde_json::from_value(live).expect("parses as a Deployment");

    let k3s = support::root().join("Corefile-compat/k3s");
    let read = |f: &str| std::fs::read_to_string(k3s.join(f)).unwrap();
    // The ConfigMaps a stock k3s cluster has: `coredns` with both keys, no `coredns-custom`.
    let config_maps = BTreeMap::from([(
        "coredns",
        BTreeMap::from([
            ("Corefile", read("Corefile")),
            ("NodeHosts", read("NodeHosts")),
        ]),
    )]);
    let pod = swapped.spec.unwrap().template.spec.unwrap();
    let container = &pod.containers[0];
    assert_eq!(
        container.args.as_deref(),
        Some(&strings(&["-conf", "/etc/coredns/Corefile"])[..])
    );
    let root = tempfile::tempdir().unwrap();
    let volumes = pod.volumes.unwrap();
    for mount in container.volume_mounts.as_ref().unwrap() {
        let volume = volumes.iter().find(|v| v.name == mount.name).unwrap();
        let source = volume.config_map.as_ref().expect("a ConfigMap volume");
        let dir = root.path().join(mount.mount_path.trim_start_matches('/'));
        std::fs::create_dir_all(&dir).unwrap();
        match config_maps.get(source.name.as_str()) {
            Some(data) => {
                for item in source.items.as_ref().expect("k3s lists the keys it mounts") {
                    std::fs::write(dir.join(&item.path), &data[item.key.as_str()]).unwrap();
                }
            }
            None => assert_eq!(source.optional, Some(true), "{} is missing", source.name),
        }
    }

    // Served as mounted, with only its addresses changed, as the compat test does.
    let etc = root.path().join("etc/coredns");
    assert!(etc.join("NodeHosts").is_file(), "NodeHosts is mounted");
    let text = std::fs::read_to_string(etc.join("Corefile")).unwrap();
    let nowhere = SocketAddr::from((Ipv4Addr::LOCALHOST, 9));
    let up = Upstreams {
        root: nowhere,
        cluster: nowhere,
        stub: nowhere,
    };
    let port = crate::cli::free_port();
    let corefile = localize(&text, &etc, port, &up);
    let path = root.path().join("Corefile");
    std::fs::write(&path, &corefile).unwrap();
    let running = support::start(&path, &corefile).await;
    support::until_ready(&running).await;
    for line in [
        "kubernetes.default.svc.cluster.local. A NOERROR 10.96.0.1",
        "k3s-server. A NOERROR 172.18.0.2",
        "3.0.18.172.in-addr.arpa. PTR NOERROR k3s-agent-1.",
    ] {
        if let Err(e) = check(&running, port, line).await {
            panic!("{e}\n{corefile}");
        }
    }
    running.close().await;
}

/// The rendered ConfigMap's Corefile, the one a fresh install serves.
pub fn fresh_corefile() -> String {
    let objects = render("fresh");
    let cm: ConfigMap = object(&objects, "ConfigMap", "coredns");
    cm.data.unwrap().remove("Corefile").unwrap()
}

/// The commands of deploy/README.md's ```` ```sh verify ```` blocks, in order.
fn guide_commands() -> Vec<String> {
    let guide = std::fs::read_to_string(support::root().join("deploy/README.md")).unwrap();
    let mut commands = Vec::new();
    let mut inside = false;
    for line in guide.lines() {
        match line.trim() {
            "```sh verify" => inside = true,
            "```" => inside = false,
            l if inside && !l.is_empty() && !l.starts_with('#') => commands.push(l.to_string()),
            _ => {}
        }
    }
    commands
}

/// What each command of the guide must print, against the demo cluster plus what the guide's
/// `kubectl create service` and `kubectl run` make. In a real cluster the addresses differ;
/// the guide's comments say what to look for.
const GUIDE: &[(&str, &[&str])] = &[
    (
        "dig kubernetes.default.svc.cluster.local",
        &["status: NOERROR", "flags: qr aa rd", "10.96.0.1"],
    ),
    (
        "dig +short SRV _https._tcp.kubernetes.default.svc.cluster.local",
        &["0 100 443 kubernetes.default.svc.cluster.local."],
    ),
    (
        "nslookup kube-dns.kube-system.svc.cluster.local",
        &[
            "Name:\tkube-dns.kube-system.svc.cluster.local",
            "Address: 10.96.0.10",
        ],
    ),
    (
        "dig +short -x 10.96.0.10",
        &["kube-dns.kube-system.svc.cluster.local."],
    ),
    (
        "dig +short dns-check.default.svc.cluster.local",
        &["10.244.3.7"],
    ),
    (
        "dig +short \"$(echo \"$IP\" | tr . -).default.pod.cluster.local\"",
        &["10.244.3.7"],
    ),
    (
        "dig +short -x \"$IP\"",
        &["10-244-3-7.dns-check.default.svc.cluster.local."],
    ),
    ("dig +short example.org", &["93.184.215.14"]),
    (
        "dig nosuchname.default.svc.cluster.local",
        &["status: NXDOMAIN", "IN\tSOA"],
    ),
    ("curl -s http://$DNS_POD:8080/health", &["OK"]),
    ("curl -s http://$DNS_POD:8181/ready", &["OK"]),
    (
        "curl -s http://$DNS_POD:9153/metrics | grep '^coredns_dns_requests_total'",
        &["coredns_dns_requests_total{"],
    ),
];

/// The guide's verify commands, run as written (the server and ports put in for this machine)
/// against the real binary serving the fresh overlay's ConfigMap, with the test API server in
/// place of the cluster's and Knot DNS in place of the node's resolvers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_guides_verify_commands_answer_from_a_fresh_install() {
    let commands = guide_commands();
    let strip = |c: &str| c.split(" #").next().unwrap().trim().to_string();
    assert_eq!(
        commands.iter().map(|c| strip(c)).collect::<Vec<_>>(),
        GUIDE.iter().map(|(c, _)| c.to_string()).collect::<Vec<_>>(),
        "deploy/README.md's verify commands and this test's list differ"
    );
    for tool in ["dig", "nslookup", "curl"] {
        assert!(
            crate::clients::have(tool),
            "{tool} is missing (.ci/run installs it)"
        );
    }

    let api = crate::apiserver::ApiServer::start().await;
    api.load_file(&support::root().join("deploy/local/cluster.yaml"));
    // What `kubectl create service clusterip dns-check --clusterip=None --tcp=80:80` and
    // `kubectl run dns-check --labels=app=dns-check …` leave in the API once the pod runs.
    api.apply_all(vec![
        json!({"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "dns-check", "namespace": "default", "labels": {"app": "dns-check"}},
            "spec": {"clusterIP": "None", "clusterIPs": ["None"], "selector": {"app": "dns-check"},
                "ports": [{"name": "80-80", "port": 80, "protocol": "TCP", "targetPort": 80}],
                "type": "ClusterIP"}}),
        json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": "dns-check-x1", "namespace": "default",
                "labels": {"kubernetes.io/service-name": "dns-check"}},
            "addressType": "IPv4",
            "endpoints": [{"addresses": ["10.244.3.7"], "conditions": {"ready": true},
                "targetRef": {"kind": "Pod", "name": "dns-check", "namespace": "default"}}],
            "ports": [{"name": "80-80", "port": 80, "protocol": "TCP"}]}),
        json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "dns-check", "namespace": "default", "labels": {"app": "dns-check"}},
            "spec": {"containers": [{"name": "dns-check", "image": "nicolaka/netshoot"}]},
            "status": {"phase": "App", "podIP": "10.244.3.7", "podIPs": [{"ip": "10.244.3.7"}]}}),
    ]);
    let knot = crate::upstream::Knot::start().await;

    let dns = crate::cli::free_port();
    let health = crate::cli::free_port();
    let ready = crate::cli::free_port();
    let metrics = crate::cli::free_port();
    let mut corefile = fresh_corefile();
    for (from, to) in [
        (".:53 {".to_string(), format!(".:{dns} {{")),
        ("health {".into(), format!("health 127.0.0.1:{health} {{")),
        (
            "    ready\n".into(),
            format!("    ready 127.0.0.1:{ready}\n"),
        ),
        (
            "prometheus :9153".into(),
            format!("prometheus 127.0.0.1:{metrics}"),
        ),
        (
            "forward . /etc/resolv.conf {".into(),
            format!("forward . 127.0.0.1:{} {{", knot.port),
        ),
        (
            "pods insecure\n".into(),
            format!("pods insecure\n           endpoint http://{}\n", api.addr),
        ),
    ] {
        assert!(corefile.contains(&from), "{from:?} is not in\n{corefile}");
        corefile = corefile.replacen(&from, &to, 1);
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("Corefile"), &corefile).unwrap();
    // The real binary; it answers once the API's Services are listed.
    let server = crate::process::Proc::start(dir.path(), &[], dns);

    let run = |command: &str| -> String {
        let local = if let Some(rest) = command.strip_prefix("dig ") {
            format!("dig @127.0.0.1 -p {dns} +time=2 +tries=1 {rest}")
        } else if let Some(rest) = command.strip_prefix("nslookup ") {
            format!("nslookup -port={dns} -timeout=2 {rest} 127.0.0.1")
        } else {
            command
                .replace(":8080/", &format!(":{health}/"))
                .replace(":8181/", &format!(":{ready}/"))
                .replace(":9153/", &format!(":{metrics}/"))
        };
        let out = std::process::Command::new("sh")
            .args(["-c", &local])
            .env("IP", "10.244.3.7")
            .env("DNS_POD", "127.0.0.1")
            .output()
            .expect("sh runs");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };

    // Ready once every kind is listed from the API; then every command, as the guide has it.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !run("curl -s http://$DNS_POD:8181/ready").contains("OK") {
        assert!(
            std::time::Instant::now() < deadline,
            "the server did not become ready:\n{}",
            server.output()
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    for (command, want) in GUIDE {
        let out = run(command);
        for w in *want {
            assert!(
                out.contains(w),
                "`{command}` should print {w:?}; it printed:\n{out}\nThe server printed:\n{}",
                server.output()
            );
        }
    }
}

/// The rules of every ClusterRole among `objects`: `(group, resource, verb)`.
fn granted(objects: &[Value]) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    for o in objects.iter().filter(|o| o["kind"] == "ClusterRole") {
        let role: ClusterRole = serde_json::from_value(o.clone()).unwrap();
        for r in role.rules.unwrap_or_default() {
            for g in r.api_groups.iter().flatten() {
                for res in r.resources.iter().flatten() {
                    for v in &r.verbs {
                        out.push((g.clone(), res.clone(), v.clone()));
                    }
                }
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_multicluster_overlay_grants_what_multicluster_asks_for_and_no_more() {
    let objects = render("multicluster");
    let role: ClusterRole = object(&objects, "ClusterRole", "system:coredns-multicluster");
    let rules = rules_of(role);
    assert_eq!(
        rules,
        [(
            strings(&["multicluster.x-k8s.io"]),
            strings(&["serviceimports"]),
            strings(&["list", "watch"])
        )]
    );
    let binding: ClusterRoleBinding = object(
        &objects,
        "ClusterRoleBinding",
        "system:coredns-multicluster",
    );
    assert_eq!(binding.role_ref.name, "system:coredns-multicluster");
    let subject = &binding.subjects.unwrap()[0];
    assert_eq!(
        (subject.kind.as_str(), subject.name.as_str()),
        ("ServiceAccount", "coredns")
    );
    assert_eq!(subject.namespace.as_deref(), Some("kube-system"));
    assert_eq!(objects.len(), 2, "{objects:?}");

    // Every request clusterdns makes with `multicluster` (and `pods verified`, the most it
    // watches) is one the stock rules and this overlay allow together.
    let mut rules = granted(&render("fresh"));
    rules.extend(granted(&objects));
    let api = crate::apiserver::ApiServer::start().await;
    api.load_file(&support::root().join("tests/fixtures/multicluster.yaml"));
    let dir = tempfile::tempdir().unwrap();
    let corefile = format!(
        ".:0 {{\n    kubernetes cluster.local clusterset.local in-addr.arpa {{\n        kubeconfig {}\n        pods verified\n        multicluster\n    }}\n}}\n",
        api.kubeconfig(dir.path()).display()
    );
    let running = support::start(&dir.path().join("Corefile"), &corefile).await;
    support::until_ready(&running).await;
    let mut asked = 0;
    for request in api.requests() {
        let path = request
            .split_whitespace()
            .nth(1)
            .unwrap()
            .split('?')
            .next()
            .unwrap()
            .to_string();
        if path == "/version" {
            continue; // a non-resource URL every authenticated user may read
        }
        let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
        let (group, resource) = match parts.as_slice() {
            ["api", "v1", .., r] => ("", *r),
            ["apis", g, _, .., r] => (*g, *r),
            _ => panic!("unexpected request {request}"),
        };
        let verb = if request.contains("watch=true") {
            "watch"
        } else {
            "list"
        };
        assert!(
            rules
                .iter()
                .any(|(g, r, v)| g == group && r == resource && v == verb),
            "{request}: {verb} {group}/{resource} is not granted"
        );
        asked += 1;
    }
    // Namespaces, Services, EndpointSlices, Pods and ServiceImports, at least once each.
    assert!(asked >= 5, "{:?}", api.requests());
}

/// The node-local overlay: Kubernetes' nodelocaldns.yaml objects, node-cache's arguments
/// unchanged, the node-local image, and the changes that make an update with surge possible.
/// Its Corefile renders (as node-cache renders it) to one that loads.
#[test]
fn the_node_local_overlay_runs_node_caches_daemonset_with_our_image() {
    use k8s_openapi::api::apps::v1::DaemonSet;
    let objects = render("node-local");
    let ds: DaemonSet = object(&objects, "DaemonSet", "node-local-dns");
    let spec = ds.spec.unwrap();
    let strategy = spec.update_strategy.unwrap().rolling_update.unwrap();
    assert_eq!(strategy.max_surge, Some(IntOrString::Int(1)));
    assert_eq!(strategy.max_unavailable, Some(IntOrString::Int(0)));
    assert_eq!(spec.min_ready_seconds, Some(5));
    let pod = spec.template.spec.unwrap();
    assert_eq!(pod.host_network, Some(true));
    assert_eq!(pod.dns_policy.as_deref(), Some("Default"));
    assert_eq!(
        pod.priority_class_name.as_deref(),
        Some("system-node-critical")
    );
    assert_eq!(pod.service_account_name.as_deref(), Some("node-local-dns"));
    let c = &pod.containers[0];
    assert_eq!(c.name, "node-cache");
    assert_eq!(
        c.image.as_deref(),
        Some("registry.example/clusterdns-node-local:0.1.0")
    );
    // The stock arguments, as node-cache takes them, and as clusterdns reads them.
    let args = c.args.clone().unwrap();
    assert_eq!(
        args,
        [
            "-localip",
            "169.254.20.10,10.96.0.10",
            "-conf",
            "/etc/Corefile",
            "-upstreamsvc",
            "kube-dns-upstream",
            "-pidfile",
            "/tmp/node-cache.pid"
        ]
    );
    let params = clusterdns::nodelocal::Params::parse(&args).unwrap();
    assert_eq!(
        params.local_ips,
        [
            "169.254.20.10".parse::<std::net::IpAddr>().unwrap(),
            "10.96.0.10".parse().unwrap()
        ]
    );
    assert!(
        c.ports.is_none(),
        "host ports would keep the surge pod off the node"
    );
    let caps = c.security_context.clone().unwrap().capabilities.unwrap();
    assert_eq!(caps.add, Some(vec!["NET_ADMIN".to_string()]));
    let mounts: Vec<&str> = c
        .volume_mounts
        .as_ref()
        .unwrap()
        .iter()
        .map(|m| m.mount_path.as_str())
        .collect();
    assert_eq!(
        mounts,
        ["/run/xtables.lock", "/etc/coredns", "/etc/kube-dns"]
    );
    assert_eq!(
        params.base_corefile,
        std::path::PathBuf::from("/etc/coredns/Corefile.base")
    );

    let upstream: Service = object(&objects, "Service", "kube-dns-upstream");
    let selector = upstream.spec.unwrap().selector.unwrap();
    assert_eq!(
        selector.get("k8s-app").map(String::as_str),
        Some("kube-dns")
    );

    let cm: ConfigMap = object(&objects, "ConfigMap", "node-local-dns");
    let base = cm.data.unwrap()["Corefile"].clone();
    let ips = params.local_ips.clone();
    let rendered = clusterdns::nodelocal::render::render(&clusterdns::nodelocal::render::Inputs {
        base: &base,
        local_ips: &ips,
        cluster_dns: "10.96.0.11".parse().unwrap(),
        kube_dns: &Default::default(),
        port: 53,
    });
    assert!(!rendered.contains("__PILLAR__"), "{rendered}");
    if let Err(e) = config::from_str("Corefile", &rendered, &LoadOptions::default()) {
        panic!("the rendered Corefile does not load: {e}\n{rendered}");
    }
}
