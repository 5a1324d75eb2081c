//! A Kubernetes API server for tests: the list/watch protocol of Namespaces, Services,
//! EndpointSlices, Pods and the MCS API's ServiceImports (a custom resource, whose CRD can be
//! left out: then its paths are 404, as on a cluster without it), the way kube-apiserver
//! speaks it, over plain HTTP on loopback.
//!
//! - Every write bumps one global resourceVersion; objects carry theirs.
//! - Lists: `labelSelector`, `fieldSelector` (`metadata.name`, `metadata.namespace`), `limit`
//!   with `continue` tokens that read a consistent snapshot at the first page's version, and
//!   410 Expired once that version has been compacted away.
//! - What a list costs, as kube-apiserver serves it: `resourceVersion=0` (any version), and a
//!   list with no version and no `limit` (a consistent read, which 1.31+ serves from the watch
//!   cache once it is fresh), are one response from the watch cache, whatever the `limit`. A
//!   list with a `limit` and no version, a `continue`, or an exact version reads etcd a page
//!   at a time: each page is charged [`Costs`] (a round trip, and decoding each object read)
//!   before it is answered. [`ApiServer::served`] counts each kind of request and the bytes.
//! - Watches: from a resourceVersion (events after it, label-selector transitions turned into
//!   ADDED/DELETED as the real server does), from "0"/"" (the current state as ADDED first),
//!   `sendInitialEvents=true` (the current state, then a BOOKMARK annotated
//!   `k8s.io/initial-events-end`), periodic BOOKMARKs when `allowWatchBookmarks`, a clean end
//!   after `timeoutSeconds`, and an ERROR event with 410 when the version is older than the
//!   retained history.
//! - Faults a test can cause: drop every open watch (the connection is cut), hang (requests and
//!   streams go silent until released), fail (every request gets a 500), go down (every
//!   connection is closed at once), and expire history (compaction).

use std::collections::{BTreeMap, VecDeque};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::ops::Bound;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, StreamBody, combinators::BoxBody};
use hyper::body::{Frame, Incoming};
use hyper::{Request, Response, StatusCode};
use serde_json::{Value, json};
use tokio::sync::{mpsc, watch};

type Body = BoxBody<Bytes, std::io::Error>;

/// The resources served.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Res {
    Namespaces,
    Services,
    EndpointSlices,
    Pods,
    ServiceImports,
}

impl Res {
    fn of_kind(kind: &str) -> Option<Res> {
        Some(match kind {
            "Namespace" => Res::Namespaces,
            "Service" => Res::Services,
            "EndpointSlice" => Res::EndpointSlices,
            "Pod" => Res::Pods,
            "ServiceImport" => Res::ServiceImports,
            _ => return None,
        })
    }
    fn kind(self) -> &'static str {
        match self {
            Res::Namespaces => "Namespace",
            Res::Services => "Service",
            Res::EndpointSlices => "EndpointSlice",
            Res::Pods => "Pod",
            Res::ServiceImports => "ServiceImport",
        }
    }
    fn api_version(self) -> &'static str {
        match self {
            Res::EndpointSlices => "discovery.k8s.io/v1",
            Res::ServiceImports => "multicluster.x-k8s.io/v1alpha1",
            _ => "v1",
        }
    }
    fn namespaced(self) -> bool {
        self != Res::Namespaces
    }
}

/// `(resource, namespace, name)`; the namespace is empty for Namespaces.
type ObjKey = (Res, String, String);

#[derive(Clone)]
struct Ev {
    rv: u64,
    key: ObjKey,
    /// ADDED, MODIFIED or DELETED.
    kind: &'static str,
    /// The object after the change (before it, for DELETED, with the new version).
    obj: Arc<Value>,
    /// The object before the change.
    prev: Option<Arc<Value>>,
}

#[derive(Default)]
struct Store {
    rv: u64,
    objects: BTreeMap<ObjKey, Arc<Value>>,
    history: VecDeque<Ev>,
    /// Requests at versions older than this get 410 Gone.
    oldest: u64,
    uid: u64,
}

/// How the server treats requests right now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Up,
    /// Requests get no answer and streams go silent until the mode changes.
    Hung,
    /// Every request is answered 500.
    Failing,
    /// Every connection is closed as soon as it is accepted.
    Down,
    /// Every request is answered 503, as a load balancer in front of API servers that are all
    /// down answers (connections stay open: a client reuses them).
    Unavailable,
}

/// What reading etcd costs the server, per page of a list that is not served from the watch
/// cache. A model, not a measurement: a quorum read's round trip, and decoding and converting
/// each object read, at what a healthy control plane takes (a few milliseconds a request, tens
/// of microseconds an object). The watch cache costs only the encoding, which this server does
/// for real.
#[derive(Clone, Copy, Debug)]
pub struct Costs {
    pub etcd_request: Duration,
    pub etcd_per_object: Duration,
}

impl Default for Costs {
    fn default() -> Self {
        Self {
            etcd_request: Duration::from_millis(2),
            etcd_per_object: Duration::from_micros(20),
        }
    }
}

/// What the server has served, by kind of request.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Served {
    /// Lists answered whole from the watch cache.
    pub cache_lists: usize,
    /// Pages of lists read from etcd.
    pub etcd_pages: usize,
    /// Objects read from etcd for those pages.
    pub etcd_objects: usize,
    /// Watches opened (streaming lists among them).
    pub watches: usize,
    /// Bytes of list bodies and watch events sent.
    pub bytes: u64,
}

#[derive(Default)]
struct Counters {
    cache_lists: std::sync::atomic::AtomicUsize,
    etcd_pages: std::sync::atomic::AtomicUsize,
    etcd_objects: std::sync::atomic::AtomicUsize,
    watches: std::sync::atomic::AtomicUsize,
    bytes: std::sync::atomic::AtomicU64,
}

struct State {
    store: Mutex<Store>,
    costs: Costs,
    /// The version `/version` reports, `(minor, streaming)`: 1.MINOR, and whether watches take
    /// `sendInitialEvents` (the WatchList gate; off, they are refused with 422 as 1.33 does).
    version: Mutex<(u32, bool)>,
    counters: Counters,
    /// The newest resourceVersion, for watches to wake on.
    rv: watch::Sender<u64>,
    /// Bumped to cut every open watch.
    epoch: watch::Sender<u64>,
    /// Bumped to end every open watch cleanly (as its timeout does).
    end: watch::Sender<u64>,
    /// 410 Gone answers sent, to lists and watches.
    gone: std::sync::atomic::AtomicUsize,
    mode: watch::Sender<Mode>,
    /// Every request's path and query, in order.
    log: Mutex<Vec<String>>,
    /// When each request came, in the same order.
    times: Mutex<Vec<std::time::Instant>>,
    /// Requests being answered now (a watch until its answer starts streaming), and the most
    /// there ever were at once.
    inflight: std::sync::atomic::AtomicUsize,
    max_inflight: std::sync::atomic::AtomicUsize,
    bookmark_every: Duration,
    /// Whether the ServiceImport CRD is installed (its paths are 404 otherwise).
    mcs_crd: std::sync::atomic::AtomicBool,
    /// History kept before the oldest events are compacted (as the watch cache's capacity).
    history_cap: usize,
}

pub struct ApiServer {
    pub addr: SocketAddr,
    state: Arc<State>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for ApiServer {
    fn drop(&mut self) {
        self.task.abort();
        self.state.epoch.send_modify(|e| *e += 1);
    }
}

impl ApiServer {
    pub async fn start() -> ApiServer {
        Self::start_with(Duration::from_secs(1), 100_000).await
    }

    /// With bookmarks every `bookmark_every` and at most `history_cap` events kept.
    pub async fn start_with(bookmark_every: Duration, history_cap: usize) -> ApiServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the API server");
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(State {
            store: Mutex::new(Store {
                rv: 1,
                oldest: 1,
                ..Store::default()
            }),
            rv: watch::channel(1).0,
            epoch: watch::channel(0).0,
            end: watch::channel(0).0,
            gone: Default::default(),
            mode: watch::channel(Mode::Up).0,
            log: Mutex::new(Vec::new()),
            times: Mutex::new(Vec::new()),
            inflight: Default::default(),
            max_inflight: Default::default(),
            bookmark_every,
            mcs_crd: std::sync::atomic::AtomicBool::new(true),
            history_cap,
            costs: Costs::default(),
            counters: Counters::default(),
            version: Mutex::new((34, true)),
        });
        let st = state.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                // As Go's net/http does: events go out as they are written.
                let _ = stream.set_nodelay(true);
                if *st.mode.borrow() == Mode::Down {
                    drop(stream);
                    continue;
                }
                let st = st.clone();
                tokio::spawn(async move {
                    let io = hyper_util::rt::TokioIo::new(stream);
                    let svc = hyper::service::service_fn(move |req| {
                        let st = st.clone();
                        async move { Ok::<_, Infallible>(handle(st, req).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(io, svc)
                        .await;
                });
            }
        });
        ApiServer { addr, state, task }
    }

    /// A kubeconfig for this server, written to `dir`.
    pub fn kubeconfig(&self, dir: &Path) -> std::path::PathBuf {
        let path = dir.join("kubeconfig");
        let text = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: test\n  cluster:\n    server: http://{}\nusers:\n- name: test\n  user: {{}}\ncontexts:\n- name: test\n  context:\n    cluster: test\n    user: test\ncurrent-context: test\n",
            self.addr
        );
        std::fs::write(&path, text).expect("write the kubeconfig");
        path
    }

    /// Creates or replaces an object (a Namespace, Service, EndpointSlice or Pod as JSON).
    pub fn apply(&self, obj: Value) -> u64 {
        self.apply_all(vec![obj])
    }

    /// Creates or replaces several objects, one version each; returns the last version.
    pub fn apply_all(&self, objs: Vec<Value>) -> u64 {
        let mut store = self.state.store.lock().unwrap();
        for mut obj in objs {
            let kind = obj["kind"].as_str().unwrap_or_default().to_string();
            let res = Res::of_kind(&kind).unwrap_or_else(|| panic!("unserved kind {kind:?}"));
            let name = obj["metadata"]["name"]
                .as_str()
                .expect("a name")
                .to_string();
            let ns = if res.namespaced() {
                let ns = obj["metadata"]["namespace"]
                    .as_str()
                    .unwrap_or("default")
                    .to_string();
                obj["metadata"]["namespace"] = json!(ns);
                ns
            } else {
                String::new()
            };
            obj["apiVersion"] = json!(res.api_version());
            let key = (res, ns, name);
            store.rv += 1;
            let rv = store.rv;
            let prev = store.objects.get(&key).cloned();
            let meta = &mut obj["metadata"];
            meta["resourceVersion"] = json!(rv.to_string());
            match &prev {
                Some(p) => {
                    meta["uid"] = p["metadata"]["uid"].clone();
                    meta["creationTimestamp"] = p["metadata"]["creationTimestamp"].clone();
                }
                None => {
                    store.uid += 1;
                    meta["uid"] = json!(format!("00000000-0000-0000-0000-{:012}", store.uid));
                    meta["creationTimestamp"] = json!("2026-01-01T00:00:00Z");
                }
            }
            let obj = Arc::new(obj);
            store.objects.insert(key.clone(), obj.clone());
            let kind = if prev.is_some() { "MODIFIED" } else { "ADDED" };
            push(
                &mut store,
                self.state.history_cap,
                Ev {
                    rv,
                    key,
                    kind,
                    obj,
                    prev,
                },
            );
        }
        let rv = store.rv;
        drop(store);
        self.state.rv.send_replace(rv);
        rv
    }

    /// Deletes an object; `false` when there was none.
    pub fn delete(&self, kind: &str, namespace: &str, name: &str) -> bool {
        let res = Res::of_kind(kind).expect("a served kind");
        let ns = if res.namespaced() { namespace } else { "" };
        let key = (res, ns.to_string(), name.to_string());
        let mut store = self.state.store.lock().unwrap();
        let Some(prev) = store.objects.remove(&key) else {
            return false;
        };
        store.rv += 1;
        let rv = store.rv;
        let mut last = (*prev).clone();
        last["metadata"]["resourceVersion"] = json!(rv.to_string());
        let cap = self.state.history_cap;
        push(
            &mut store,
            cap,
            Ev {
                rv,
                key,
                kind: "DELETED",
                obj: Arc::new(last),
                prev: Some(prev),
            },
        );
        drop(store);
        self.state.rv.send_replace(rv);
        true
    }

    /// Loads every object of a YAML or JSON file (a List, or several documents).
    pub fn load_file(&self, path: &Path) {
        let text = std::fs::read_to_string(path).expect("read the objects file");
        let mut objs = Vec::new();
        for doc in yaml_serde::Deserializer::from_str(&text) {
            let v: Value = serde::Deserialize::deserialize(doc).expect("YAML");
            collect(v, &mut objs);
        }
        self.apply_all(objs);
    }

    /// Compacts history: requests at any version before now get 410 Gone.
    pub fn expire_history(&self) {
        let mut store = self.state.store.lock().unwrap();
        store.oldest = store.rv;
        store.history.clear();
    }

    /// Cuts every open watch connection.
    pub fn drop_watches(&self) {
        self.state.epoch.send_modify(|e| *e += 1);
    }

    /// Ends every open watch cleanly: clients watch again from the version they had.
    pub fn end_watches(&self) {
        self.state.end.send_modify(|e| *e += 1);
    }

    /// How many 410 Gone answers were sent.
    pub fn gone_sent(&self) -> usize {
        self.state.gone.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Failing, Down and Unavailable also cut the open watches (after the mode is in place, so that the
    /// clients' reconnections meet it).
    pub fn set_mode(&self, mode: Mode) {
        self.state.mode.send_replace(mode);
        if matches!(mode, Mode::Down | Mode::Failing | Mode::Unavailable) {
            self.drop_watches();
        }
    }

    /// Ends an outage: the mode goes back to Up, and the answer is where that happened in
    /// [`ApiServer::requests`] (what came before was asked during the outage, what comes after
    /// was asked once the server was back): the recovery event a catch-up is measured from.
    pub fn recover(&self) -> usize {
        let log = self.state.log.lock().unwrap();
        let at = log.len();
        self.state.mode.send_replace(Mode::Up);
        at
    }

    /// Installs or removes the ServiceImport CRD (installed at start). Without it, its paths
    /// answer 404 and its objects stay stored, as a CRD's objects do not outlive it on a real
    /// server but nothing here needs that.
    pub fn set_mcs_crd(&self, installed: bool) {
        self.state
            .mcs_crd
            .store(installed, std::sync::atomic::Ordering::Relaxed);
        if !installed {
            self.drop_watches();
        }
    }

    /// Makes the server Kubernetes 1.`minor`, with or without streaming lists.
    pub fn set_version(&self, minor: u32, streaming: bool) {
        *self.state.version.lock().unwrap() = (minor, streaming);
    }

    /// What has been served so far.
    pub fn served(&self) -> Served {
        use std::sync::atomic::Ordering::Relaxed;
        let c = &self.state.counters;
        Served {
            cache_lists: c.cache_lists.load(Relaxed),
            etcd_pages: c.etcd_pages.load(Relaxed),
            etcd_objects: c.etcd_objects.load(Relaxed),
            watches: c.watches.load(Relaxed),
            bytes: c.bytes.load(Relaxed),
        }
    }

    /// When each request of [`ApiServer::requests`] came.
    pub fn request_times(&self) -> Vec<std::time::Instant> {
        self.state.times.lock().unwrap().clone()
    }

    /// Requests being answered now, and the most there ever were at once.
    pub fn inflight(&self) -> (usize, usize) {
        use std::sync::atomic::Ordering::SeqCst;
        (
            self.state.inflight.load(SeqCst),
            self.state.max_inflight.load(SeqCst),
        )
    }

    /// The requests seen so far (`GET path?query`).
    pub fn requests(&self) -> Vec<String> {
        self.state.log.lock().unwrap().clone()
    }

    pub fn resource_version(&self) -> u64 {
        self.state.store.lock().unwrap().rv
    }
}

fn push(store: &mut Store, cap: usize, ev: Ev) {
    store.history.push_back(ev);
    while store.history.len() > cap {
        if let Some(old) = store.history.pop_front() {
            store.oldest = store.oldest.max(old.rv);
        }
    }
}

fn collect(v: Value, out: &mut Vec<Value>) {
    match v["kind"].as_str() {
        Some(k) if k.ends_with("List") => {
            let item_kind = k.strip_suffix("List").filter(|k| !k.is_empty());
            if let Some(items) = v["items"].as_array() {
                for item in items {
                    let mut item = item.clone();
                    if let Some(k) = item_kind
                        && item.get("kind").is_none()
                    {
                        item["kind"] = json!(k);
                    }
                    collect(item, out);
                }
            }
        }
        Some(k) if Res::of_kind(k).is_some() => out.push(v),
        _ => {}
    }
}

/// A parsed request.
struct Query {
    res: Res,
    namespace: Option<String>,
    params: BTreeMap<String, String>,
}

fn parse_path(path: &str) -> Option<(Res, Option<String>)> {
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    let res = |s: &str| -> Option<Res> {
        Some(match s {
            "namespaces" => Res::Namespaces,
            "services" => Res::Services,
            "pods" => Res::Pods,
            "endpointslices" => Res::EndpointSlices,
            "serviceimports" => Res::ServiceImports,
            _ => return None,
        })
    };
    let (group_ok, rest): (fn(Res) -> bool, &[&str]) = match parts.as_slice() {
        ["api", "v1", rest @ ..] => (
            |r| matches!(r, Res::Namespaces | Res::Services | Res::Pods),
            rest,
        ),
        ["apis", "discovery.k8s.io", "v1", rest @ ..] => (|r| r == Res::EndpointSlices, rest),
        ["apis", "multicluster.x-k8s.io", "v1alpha1", rest @ ..] => {
            (|r| r == Res::ServiceImports, rest)
        }
        _ => return None,
    };
    let (r, ns) = match rest {
        [r] => (res(r)?, None),
        ["namespaces", ns, r] => (res(r)?, Some(ns.to_string())),
        _ => return None,
    };
    (group_ok(r) && (ns.is_none() || r.namespaced())).then_some((r, ns))
}

fn decode(s: &str) -> String {
    let mut out = Vec::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                    out.push(v);
                    i += 2;
                } else {
                    out.push(b'%');
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

async fn handle(st: Arc<State>, req: Request<Incoming>) -> Response<Body> {
    use std::sync::atomic::Ordering::SeqCst;
    let now = st.inflight.fetch_add(1, SeqCst) + 1;
    st.max_inflight.fetch_max(now, SeqCst);
    let response = answer(st.clone(), req).await;
    st.inflight.fetch_sub(1, SeqCst);
    response
}

async fn answer(st: Arc<State>, req: Request<Incoming>) -> Response<Body> {
    let uri = req.uri().clone();
    {
        let mut log = st.log.lock().unwrap();
        log.push(format!("{} {}", req.method(), uri));
        st.times.lock().unwrap().push(std::time::Instant::now());
    }
    // Subscribed before anything else, so that a cut made while this request is on its way
    // still reaches the watch it starts.
    let cuts = (st.epoch.subscribe(), st.end.subscribe());
    // A hung server answers nothing until it is released.
    let mut mode = st.mode.subscribe();
    loop {
        let m = *mode.borrow_and_update();
        match m {
            Mode::Up => break,
            Mode::Failing => {
                return status(500, "InternalError", "the test server is failing requests");
            }
            Mode::Down | Mode::Unavailable => {
                return status(503, "ServiceUnavailable", "down");
            }
            Mode::Hung => {
                if mode.changed().await.is_err() {
                    return status(503, "ServiceUnavailable", "shutting down");
                }
            }
        }
    }
    if req.method() != hyper::Method::GET {
        return status(405, "MethodNotAllowed", "only list and watch are served");
    }
    if uri.path() == "/version" {
        let (minor, _) = *st.version.lock().unwrap();
        let body = json!({
            "major": "1", "minor": minor.to_string(),
            "gitVersion": format!("v1.{minor}.0"), "platform": "linux/amd64",
            "gitCommit": "", "gitTreeState": "clean", "buildDate": "2026-01-01T00:00:00Z",
            "goVersion": "go1.24", "compiler": "gc",
        });
        return Response::builder()
            .header("content-type", "application/json")
            .body(full(body.to_string()))
            .unwrap();
    }
    let crd = st.mcs_crd.load(std::sync::atomic::Ordering::Relaxed);
    let Some((res, namespace)) =
        parse_path(uri.path()).filter(|(r, _)| crd || *r != Res::ServiceImports)
    else {
        return status(
            404,
            "NotFound",
            &format!("the server could not find {}", uri.path()),
        );
    };
    let params: BTreeMap<String, String> = uri
        .query()
        .unwrap_or_default()
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (decode(k), decode(v)),
            None => (decode(p), String::new()),
        })
        .collect();
    let q = Query {
        res,
        namespace,
        params,
    };
    let filter = match Filter::new(&q) {
        Ok(f) => f,
        Err(msg) => return status(400, "BadRequest", &msg),
    };
    if matches!(
        q.params.get("watch").map(String::as_str),
        Some("true" | "1")
    ) {
        let streaming = st.version.lock().unwrap().1;
        if !streaming && q.params.get("sendInitialEvents").map(String::as_str) == Some("true") {
            return status(
                422,
                "Invalid",
                "sendInitialEvents: Forbidden: sendInitialEvents is forbidden for watch unless the WatchList feature gate is enabled",
            );
        }
        st.counters
            .watches
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        watch_response(st, q, filter, cuts)
    } else {
        let (response, etcd_objects) = list(&st, &q, &filter);
        if let Some(read) = etcd_objects {
            // Charged after the store is let go: other requests go on meanwhile, as they do
            // while a real server waits on etcd.
            let c = st.costs;
            tokio::time::sleep(c.etcd_request + c.etcd_per_object * read as u32).await;
        }
        response
    }
}

fn status(code: u16, reason: &str, message: &str) -> Response<Body> {
    let body = json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {},
        "status": "Failure", "message": message, "reason": reason, "code": code,
    });
    Response::builder()
        .status(StatusCode::from_u16(code).unwrap())
        .header("content-type", "application/json")
        .body(full(body.to_string()))
        .unwrap()
}

fn full(s: String) -> Body {
    Full::new(Bytes::from(s))
        .map_err(|never: Infallible| match never {})
        .boxed()
}

/// Which objects a request sees.
struct Filter {
    res: Res,
    namespace: Option<String>,
    labels: Vec<Requirement>,
    fields: Vec<(String, bool, String)>,
}

enum Requirement {
    Eq(String, String),
    Ne(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    Absent(String),
}

impl Filter {
    fn new(q: &Query) -> Result<Filter, String> {
        let labels = parse_labels(
            q.params
                .get("labelSelector")
                .map(String::as_str)
                .unwrap_or(""),
        )?;
        let mut fields = Vec::new();
        for term in q
            .params
            .get("fieldSelector")
            .map(String::as_str)
            .unwrap_or("")
            .split(',')
            .filter(|t| !t.trim().is_empty())
        {
            let (field, eq, value) = if let Some((f, v)) = term.split_once("!=") {
                (f, false, v)
            } else if let Some((f, v)) = term.split_once("==") {
                (f, true, v)
            } else if let Some((f, v)) = term.split_once('=') {
                (f, true, v)
            } else {
                return Err(format!("invalid field selector: {term}"));
            };
            let field = field.trim();
            if field != "metadata.name" && field != "metadata.namespace" {
                return Err(format!("field label not supported: {field}"));
            }
            fields.push((field.to_string(), eq, value.trim().to_string()));
        }
        Ok(Filter {
            res: q.res,
            namespace: q.namespace.clone(),
            labels,
            fields,
        })
    }

    fn in_scope(&self, key: &ObjKey) -> bool {
        key.0 == self.res && self.namespace.as_ref().is_none_or(|ns| *ns == key.1)
    }

    fn matches(&self, obj: &Value) -> bool {
        let labels = obj["metadata"]["labels"].as_object();
        let label = |k: &str| labels.and_then(|l| l.get(k)).and_then(|v| v.as_str());
        let labels_ok = self.labels.iter().all(|r| match r {
            Requirement::Eq(k, v) => label(k) == Some(v),
            Requirement::Ne(k, v) => label(k) != Some(v),
            Requirement::In(k, vs) => label(k).is_some_and(|l| vs.iter().any(|v| v == l)),
            Requirement::NotIn(k, vs) => label(k).is_none_or(|l| !vs.iter().any(|v| v == l)),
            Requirement::Exists(k) => label(k).is_some(),
            Requirement::Absent(k) => label(k).is_none(),
        });
        let fields_ok = self.fields.iter().all(|(f, eq, v)| {
            let got = match f.as_str() {
                "metadata.name" => obj["metadata"]["name"].as_str(),
                _ => obj["metadata"]["namespace"].as_str(),
            }
            .unwrap_or("");
            (got == v) == *eq
        });
        labels_ok && fields_ok
    }
}

/// Kubernetes label selector syntax: `a=b`, `a==b`, `a!=b`, `a`, `!a`, `a in (x,y)`,
/// `a notin (x,y)`, joined by commas.
fn parse_labels(text: &str) -> Result<Vec<Requirement>, String> {
    let mut terms = Vec::new();
    let mut depth = 0;
    let mut cur = String::new();
    for c in text.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                terms.push(std::mem::take(&mut cur));
                continue;
            }
            _ => {}
        }
        cur.push(c);
    }
    terms.push(cur);
    let mut out = Vec::new();
    for t in terms.iter().map(|t| t.trim()).filter(|t| !t.is_empty()) {
        let set = |rest: &str| -> Result<Vec<String>, String> {
            let inner = rest
                .trim()
                .strip_prefix('(')
                .and_then(|r| r.strip_suffix(')'))
                .ok_or_else(|| format!("invalid label selector term: {t}"))?;
            Ok(inner.split(',').map(|v| v.trim().to_string()).collect())
        };
        let words: Vec<&str> = t.splitn(2, char::is_whitespace).collect();
        let r = if let Some(k) = t.strip_prefix('!') {
            Requirement::Absent(k.trim().to_string())
        } else if let Some((k, v)) = t.split_once("!=") {
            Requirement::Ne(k.trim().into(), v.trim().into())
        } else if let Some((k, v)) = t.split_once("==").or_else(|| t.split_once('=')) {
            Requirement::Eq(k.trim().into(), v.trim().into())
        } else if words.len() == 2 && words[1].trim_start().starts_with("notin") {
            Requirement::NotIn(words[0].into(), set(&words[1].trim_start()[5..])?)
        } else if words.len() == 2 && words[1].trim_start().starts_with("in") {
            Requirement::In(words[0].into(), set(&words[1].trim_start()[2..])?)
        } else if words.len() == 1 {
            Requirement::Exists(t.to_string())
        } else {
            return Err(format!("invalid label selector term: {t}"));
        };
        out.push(r);
    }
    Ok(out)
}

/// The objects of `filter`'s resource as they were at version `at` (the current ones, with
/// every later event undone), after the key `after`, at most `limit` of them and whether more
/// follow.
fn snapshot(
    store: &Store,
    filter: &Filter,
    at: u64,
    after: Option<(&str, &str)>,
    limit: usize,
) -> (Vec<(ObjKey, Arc<Value>)>, usize) {
    let start = match after {
        Some((ns, name)) => Bound::Excluded((filter.res, ns.to_string(), name.to_string())),
        None => Bound::Included((filter.res, String::new(), String::new())),
    };
    let current = store
        .objects
        .range((start.clone(), Bound::Unbounded))
        .take_while(|(k, _)| k.0 == filter.res)
        .filter(|(k, _)| filter.in_scope(k))
        .map(|(k, v)| (k.clone(), v.clone()));
    let later = store.history.partition_point(|e| e.rv <= at);
    let page: Vec<(ObjKey, Arc<Value>)> = if later == store.history.len() {
        // Nothing happened since `at`: the current objects are the snapshot.
        current.filter(|(_, v)| filter.matches(v)).collect()
    } else {
        let mut objs: BTreeMap<ObjKey, Arc<Value>> = current.collect();
        let past = |k: &ObjKey| match &start {
            Bound::Excluded(s) => k > s,
            _ => true,
        };
        for ev in store.history.range(later..).rev() {
            if !filter.in_scope(&ev.key) || !past(&ev.key) {
                continue;
            }
            match &ev.prev {
                Some(p) => objs.insert(ev.key.clone(), p.clone()),
                None => objs.remove(&ev.key),
            };
        }
        objs.into_iter()
            .filter(|(_, v)| filter.matches(v))
            .collect()
    };
    let more = page.len().saturating_sub(limit);
    (page.into_iter().take(limit).collect(), more)
}

/// A list's response, and how many objects it read from etcd (`None`: served from the watch
/// cache).
fn list(st: &State, q: &Query, filter: &Filter) -> (Response<Body>, Option<usize>) {
    use std::sync::atomic::Ordering::Relaxed;
    let expired = |message: String| {
        st.gone.fetch_add(1, Relaxed);
        (status(410, "Expired", &message), None)
    };
    let store = st.store.lock().unwrap();
    let param = |k: &str| q.params.get(k).map(String::as_str);
    let asked_limit = param("limit")
        .and_then(|l| l.parse::<usize>().ok())
        .filter(|l| *l > 0);
    // The watch cache answers `resourceVersion=0`, and a consistent list without a limit, whole.
    let from_cache = param("continue").is_none_or(str::is_empty)
        && match param("resourceVersion").unwrap_or("") {
            "0" => true,
            "" => asked_limit.is_none(),
            _ => false,
        };
    let limit = if from_cache {
        usize::MAX
    } else {
        asked_limit.unwrap_or(usize::MAX)
    };
    // A continue token is `VERSION/NAMESPACE/NAME` of the last item sent, hex-encoded.
    let (at, after) = match q.params.get("continue").filter(|c| !c.is_empty()) {
        Some(token) => {
            let Some((at, ns, name)) = decode_token(token) else {
                return (status(400, "BadRequest", "invalid continue token"), None);
            };
            if at < store.oldest {
                return expired(format!(
                    "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list. ({at} < {})",
                    store.oldest
                ));
            }
            (at, Some((ns, name)))
        }
        None => {
            let rv = q
                .params
                .get("resourceVersion")
                .map(String::as_str)
                .unwrap_or("");
            let exact = q.params.get("resourceVersionMatch").map(String::as_str) == Some("Exact");
            match rv.parse::<u64>() {
                Ok(v) if v > 0 && exact && v < store.oldest => {
                    return expired(format!("too old resource version: {v} ({})", store.oldest));
                }
                Ok(v) if v > 0 && exact => (v, None),
                _ => (store.rv, None),
            }
        }
    };
    let after_ref = after
        .as_ref()
        .map(|(ns, name)| (ns.as_str(), name.as_str()));
    let (page, remaining) = snapshot(&store, filter, at, after_ref, limit);
    let read = (!from_cache).then_some(page.len());
    let mut items = Vec::with_capacity(page.len());
    let mut last = None;
    for (k, v) in page {
        let mut item = (*v).clone();
        // The real server leaves kind and apiVersion off list items.
        if let Some(o) = item.as_object_mut() {
            o.remove("kind");
            o.remove("apiVersion");
        }
        items.push(item);
        last = Some((k.1, k.2));
    }
    let mut meta = json!({ "resourceVersion": at.to_string() });
    if remaining > 0
        && let Some((ns, name)) = last
    {
        meta["continue"] = json!(encode_token(at, &ns, &name));
        meta["remainingItemCount"] = json!(remaining);
    }
    drop(store);
    let body = json!({
        "kind": format!("{}List", q.res.kind()),
        "apiVersion": q.res.api_version(),
        "metadata": meta,
        "items": items,
    })
    .to_string();
    let c = &st.counters;
    c.bytes.fetch_add(body.len() as u64, Relaxed);
    match read {
        Some(n) => {
            c.etcd_pages.fetch_add(1, Relaxed);
            c.etcd_objects.fetch_add(n, Relaxed);
        }
        None => {
            c.cache_lists.fetch_add(1, Relaxed);
        }
    }
    let response = Response::builder()
        .header("content-type", "application/json")
        .body(full(body))
        .unwrap();
    (response, read)
}

fn encode_token(at: u64, ns: &str, name: &str) -> String {
    format!("{at}/{ns}/{name}")
        .bytes()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn decode_token(token: &str) -> Option<(u64, String, String)> {
    let bytes: Option<Vec<u8>> = (0..token.len())
        .step_by(2)
        .map(|i| {
            token
                .get(i..i + 2)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        })
        .collect();
    let text = String::from_utf8(bytes?).ok()?;
    let mut parts = text.splitn(3, '/');
    Some((
        parts.next()?.parse().ok()?,
        parts.next()?.to_string(),
        parts.next()?.to_string(),
    ))
}

type Tx = mpsc::Sender<Result<Frame<Bytes>, std::io::Error>>;

type Cuts = (watch::Receiver<u64>, watch::Receiver<u64>);

fn watch_response(st: Arc<State>, q: Query, filter: Filter, cuts: Cuts) -> Response<Body> {
    let (tx, rx) = mpsc::channel(256);
    tokio::spawn(run_watch(st, q, filter, tx, cuts));
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    Response::builder()
        .header("content-type", "application/json")
        .body(BodyExt::boxed(StreamBody::new(stream)))
        .unwrap()
}

async fn send(st: &State, tx: &Tx, kind: &str, object: &Value) -> bool {
    // As kube-apiserver writes it: `type` first. (A JSON map sorts `object` first, and a client
    // reading an adjacently tagged event must then hold the whole object before it knows what
    // it is: a cost the real server never causes.)
    let line = format!("{{\"type\":\"{kind}\",\"object\":{object}}}\n");
    st.counters
        .bytes
        .fetch_add(line.len() as u64, std::sync::atomic::Ordering::Relaxed);
    tx.send(Ok(Frame::data(Bytes::from(line)))).await.is_ok()
}

fn bookmark(res: Res, rv: u64, initial_end: bool) -> Value {
    let mut meta = json!({ "resourceVersion": rv.to_string() });
    if initial_end {
        meta["annotations"] = json!({ "k8s.io/initial-events-end": "true" });
    }
    json!({ "kind": res.kind(), "apiVersion": res.api_version(), "metadata": meta })
}

async fn run_watch(st: Arc<State>, q: Query, filter: Filter, tx: Tx, cuts: Cuts) {
    let (mut epoch, mut end) = cuts;
    let param = |k: &str| q.params.get(k).map(String::as_str).unwrap_or("");
    let bookmarks = param("allowWatchBookmarks") == "true";
    let initial_events = param("sendInitialEvents") == "true";
    let timeout = param("timeoutSeconds")
        .parse::<u64>()
        .ok()
        .map(Duration::from_secs);
    let deadline = tokio::time::Instant::now() + timeout.unwrap_or(Duration::from_secs(1800));
    let mut rv_rx = st.rv.subscribe();
    // Events between the version asked for and now are sent at once.
    rv_rx.mark_changed();
    let mut mode = st.mode.subscribe();
    let from = param("resourceVersion");
    // What to send first, and where the stream of events starts.
    let start: Result<(u64, Vec<Arc<Value>>), Value> = {
        let store = st.store.lock().unwrap();
        match from.parse::<u64>() {
            Ok(v) if v > 0 && !initial_events && v < store.oldest => Err(json!({
                "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": format!("too old resource version: {v} ({})", store.oldest),
                "reason": "Expired", "code": 410,
            })),
            Ok(v) if v > 0 && !initial_events => Ok((v, Vec::new())),
            // "0", "" or sendInitialEvents: the current state first.
            _ => Ok((
                store.rv,
                snapshot(&store, &filter, store.rv, None, usize::MAX)
                    .0
                    .into_iter()
                    .map(|(_, v)| v)
                    .collect(),
            )),
        }
    };
    let (mut pos, initial) = match start {
        Ok(s) => s,
        Err(gone) => {
            st.gone.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            send(&st, &tx, "ERROR", &gone).await;
            return;
        }
    };
    for obj in &initial {
        if !send(&st, &tx, "ADDED", obj).await {
            return;
        }
    }
    if initial_events && !send(&st, &tx, "BOOKMARK", &bookmark(q.res, pos, true)).await {
        return;
    }
    let mut tick = tokio::time::interval(st.bookmark_every);
    tick.tick().await;
    loop {
        tokio::select! {
            _ = epoch.changed() => {
                // Cut: the client sees the connection fail mid-stream.
                let _ = tx
                    .send(Err(std::io::Error::other("connection cut by the test")))
                    .await;
                return;
            }
            _ = end.changed() => return,
            _ = tokio::time::sleep_until(deadline) => return,
            _ = mode.changed() => {}
            changed = rv_rx.changed() => {
                if changed.is_err() {
                    return;
                }
            }
            _ = tick.tick(), if bookmarks => {
                if *mode.borrow() != Mode::Hung
                    && !send(&st, &tx, "BOOKMARK", &bookmark(q.res, pos, false)).await
                {
                    return;
                }
                continue;
            }
        }
        if *mode.borrow() == Mode::Hung {
            continue;
        }
        let events: Vec<Ev> = {
            let store = st.store.lock().unwrap();
            let events = store
                .history
                .iter()
                .filter(|e| e.rv > pos)
                .cloned()
                .collect();
            pos = pos.max(store.rv);
            events
        };
        for ev in events {
            if !filter.in_scope(&ev.key) {
                continue;
            }
            let now = ev.kind != "DELETED" && filter.matches(&ev.obj);
            let before = ev.prev.as_ref().is_some_and(|p| filter.matches(p));
            let kind = match (before, now) {
                (false, true) => "ADDED",
                (true, true) => "MODIFIED",
                (true, false) => "DELETED",
                (false, false) => continue,
            };
            if !send(&st, &tx, kind, &ev.obj).await {
                return;
            }
        }
    }
}
