//! The objects file changes under a running server: new data is served, broken data is not.

use std::path::Path;
use std::time::{Duration, Instant};

use hickory_proto::op::Message;
use hickory_proto::rr::{RData, RecordType};

use clusterdns::cluster::source::Filters;
use clusterdns::cluster::source::file::decode;
use clusterdns::plugin::Transport;

use crate::support;

fn objects(services: &[(&str, &str)]) -> String {
    let mut s = String::from(
        "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Namespace\n  metadata: {name: app}\n",
    );
    for (name, ip) in services {
        s.push_str(&format!(
            "- apiVersion: v1\n  kind: Service\n  metadata: {{name: {name}, namespace: app}}\n  spec: {{clusterIP: \"{ip}\", ports: [{{name: http, port: 80}}]}}\n"
        ));
    }
    s
}

async fn a_record(running: &clusterdns::app::App, name: &str) -> Option<String> {
    let q = support::query(name, RecordType::A, None).to_vec().unwrap();
    let port = running.listeners()[0].port;
    let bytes = support::ask(running, port, &q, Transport::Udp).await?;
    let msg = Message::from_vec(&bytes).ok()?;
    msg.answers.iter().find_map(|r| match &r.data {
        RData::A(a) => Some(a.0.to_string()),
        _ => None,
    })
}

/// Waits up to 10 s for `name` to answer `want` (`None`: no address).
async fn eventually(running: &clusterdns::app::App, name: &str, want: Option<&str>) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let got = a_record(running, name).await;
        if got.as_deref() == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{name}: still {got:?}, waiting for {want:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Holds for 2.5 s (more than two polls) that `name` keeps answering `want`.
async fn steadily(running: &clusterdns::app::App, name: &str, want: &str) {
    let until = Instant::now() + Duration::from_millis(2500);
    while Instant::now() < until {
        assert_eq!(
            a_record(running, name).await.as_deref(),
            Some(want),
            "{name}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn write(path: &Path, text: &str) {
    // Write beside and rename, as kubelet swaps ConfigMap files: never a half-written file.
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_are_served_and_broken_files_keep_the_last_good_data() {
    let dir = tempfile::tempdir().unwrap();
    let objs = dir.path().join("objects.yaml");
    write(&objs, &objects(&[("web", "10.96.0.5")]));
    let corefile = format!(
        ".:0 {{\n kubernetes cluster.local {{\n  objects {}\n }}\n}}\n",
        objs.display()
    );
    let running = support::start(&dir.path().join("Corefile"), &corefile).await;
    eventually(&running, "web.app.svc.cluster.local.", Some("10.96.0.5")).await;

    // A change and an addition.
    write(
        &objs,
        &objects(&[("web", "10.96.0.6"), ("api", "10.96.0.7")]),
    );
    eventually(&running, "web.app.svc.cluster.local.", Some("10.96.0.6")).await;
    eventually(&running, "api.app.svc.cluster.local.", Some("10.96.0.7")).await;

    // Broken YAML: the last good data keeps serving.
    write(
        &objs,
        "apiVersion: v1\nkind: List\nitems:\n- kind: Service\n  metadata: {name: web\n",
    );
    steadily(&running, "web.app.svc.cluster.local.", "10.96.0.6").await;

    // Well-formed YAML with a bad value: the same.
    write(&objs, &objects(&[("web", "not-an-ip")]));
    steadily(&running, "web.app.svc.cluster.local.", "10.96.0.6").await;

    // Fixed again, with a deletion.
    write(&objs, &objects(&[("web", "10.96.0.8")]));
    eventually(&running, "web.app.svc.cluster.local.", Some("10.96.0.8")).await;
    eventually(&running, "api.app.svc.cluster.local.", None).await;
    running.shutdown().await;
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kubelet_style_symlink_swap_is_noticed() {
    use std::os::unix::fs::symlink;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir(d.join("..v1")).unwrap();
    std::fs::write(
        d.join("..v1/objects.yaml"),
        objects(&[("web", "10.96.1.1")]),
    )
    .unwrap();
    symlink("..v1", d.join("..data")).unwrap();
    symlink("..data/objects.yaml", d.join("objects.yaml")).unwrap();
    let corefile = format!(
        ".:0 {{\n kubernetes cluster.local {{\n  objects {}\n }}\n}}\n",
        d.join("objects.yaml").display()
    );
    let running = support::start(&d.join("Corefile"), &corefile).await;
    eventually(&running, "web.app.svc.cluster.local.", Some("10.96.1.1")).await;
    std::fs::create_dir(d.join("..v2")).unwrap();
    std::fs::write(
        d.join("..v2/objects.yaml"),
        objects(&[("web", "10.96.2.2")]),
    )
    .unwrap();
    symlink("..v2", d.join("..data_tmp")).unwrap();
    std::fs::rename(d.join("..data_tmp"), d.join("..data")).unwrap();
    eventually(&running, "web.app.svc.cluster.local.", Some("10.96.2.2")).await;
    running.shutdown().await;
}

#[test]
fn decode_errors_say_where() {
    let f = Filters::default();
    let p = Path::new("objs.yaml");
    // YAML syntax: line and column.
    let e = decode(
        p,
        "kind: List\nitems:\n  - kind: Service\n    metadata: {name: x\n",
        &f,
    )
    .unwrap_err();
    assert!(
        e.to_string().starts_with("objs.yaml:") && e.line.is_some(),
        "{e}"
    );
    // A field of the wrong type: the field's path, and the value's place as far as the
    // layout tells (a flow-style value is not looked into: the line of its key).
    let text = "---\napiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n---\napiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: a}\nspec:\n  ports: [{port: eighty}]\n";
    let e = decode(p, text, &f).unwrap_err();
    assert_eq!((e.line, e.col), (Some(10), Some(10)), "{e}");
    assert!(
        e.to_string()
            .contains("Service 'web': spec.ports[0].port: invalid type"),
        "{e}"
    );
    // Inside a List: the item's path.
    let text = "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Namespace\n  metadata: {name: a}\n- apiVersion: v1\n  kind: Service\n  metadata: {name: web}\n  spec: {clusterIP: 10.0.0.1, ports: [{port: -1}]}\n";
    let e = decode(p, text, &f).unwrap_err();
    assert!(
        e.to_string()
            .contains("Service default/web: spec.ports: -1 is not a port number"),
        "{e}"
    );
    let text = "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Service\n  metadata: {name: web}\n  spec: {ports: bad}\n";
    let e = decode(p, text, &f).unwrap_err();
    assert!(
        e.to_string()
            .contains("items[0]: Service 'web': spec.ports: invalid type"),
        "{e}"
    );
    assert_eq!(e.line, Some(7), "the line of the item's 'spec': {e}");
    // After a leading comment, the document starts on its first line of content.
    let e = decode(p, &format!("# dump\n{text}"), &f).unwrap_err();
    assert_eq!(e.line, Some(8), "{e}");
    // In block style, as kubectl writes it: the value itself, in the item that has it.
    let text = "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Service\n  metadata:\n    name: ok\n  spec:\n    ports:\n    - port: 80\n- apiVersion: v1\n  kind: Service\n  metadata:\n    name: web\n  spec:\n    ports:\n    - name: http\n      port: 80\n    - name: dns\n      port: eighty\n";
    let e = decode(p, text, &f).unwrap_err();
    assert_eq!((e.line, e.col), (Some(20), Some(13)), "{e}");
    assert!(
        e.to_string().starts_with(
            "objs.yaml:20:13: items[1]: Service 'web': spec.ports[1].port: invalid type"
        ),
        "{e}"
    );
    // JSON: line and column.
    let e = decode(
        Path::new("objs.json"),
        "{\"kind\": \"List\",\n \"items\": [}",
        &f,
    )
    .unwrap_err();
    assert_eq!((e.line, e.col), (Some(2), Some(12)), "{e}");
    // No kind at all.
    let e = decode(p, "metadata: {name: x}\n", &f).unwrap_err();
    assert!(e.to_string().contains("an object without 'kind'"), "{e}");
    // Other kinds in a kubectl dump are skipped.
    let snap = decode(
        p,
        "apiVersion: v1\nkind: Endpoints\nmetadata: {name: x}\n",
        &f,
    )
    .unwrap();
    assert!(snap.services.is_empty());
}

#[test]
fn the_demo_and_a_json_dump_decode_alike() {
    let demo = support::root().join("deploy/local/cluster.yaml");
    let text = std::fs::read_to_string(&demo).unwrap();
    let yaml = decode(&demo, &text, &Filters::default()).unwrap();
    assert_eq!(yaml.services.len(), 9);
    assert_eq!(yaml.namespaces.len(), 4);
    let value: serde_json::Value = yaml_serde::from_str(&text).unwrap();
    let json = decode(
        Path::new("demo.json"),
        &serde_json::to_string_pretty(&value).unwrap(),
        &Filters::default(),
    )
    .unwrap();
    assert_eq!(yaml, json);
}

/// A block-style YAML List is cut into its items, each parsed on its own (yaml_serde holds a
/// whole document's parse, many times the file for a large List): every layout kubectl and
/// people write reads as the whole document would. (A `...` line makes the reader take the
/// file whole, as it does wherever the documents cannot be told apart by their lines.)
#[test]
fn yaml_lists_read_item_by_item_as_whole() {
    let f = Filters::default();
    let svc = |indent: &str, name: &str, ip: &str| {
        format!(
            "{indent}- apiVersion: v1\n{indent}  kind: Service\n{indent}  metadata:\n{indent}    name: {name}\n{indent}    namespace: app\n{indent}  spec:\n{indent}    clusterIP: {ip}\n{indent}    ports:\n{indent}    - name: http\n{indent}      port: 80\n"
        )
    };
    let texts = [
        // kubectl's layout, entries at the key's indentation.
        format!(
            "apiVersion: v1\nitems:\n{}{}kind: List\nmetadata:\n  resourceVersion: \"\"\n",
            svc("", "a", "10.0.0.1"),
            svc("", "b", "10.0.0.2")
        ),
        // Indented entries, comments and blank lines between them, kind first.
        format!(
            "# dump\nkind: List\napiVersion: v1\nitems:\n{}\n  # the next one\n{}",
            svc("  ", "a", "10.0.0.1"),
            svc("  ", "b", "10.0.0.2")
        ),
        // A typed list: its items carry no kind.
        "kind: ServiceList\napiVersion: v1\nitems:\n- metadata: {name: a, namespace: app}\n  spec:\n    clusterIP: 10.0.0.1\n    ports: [{port: 80}]\n  # a comment at the entry's depth\n- metadata: {name: b, namespace: app}\n  spec: {clusterIP: 10.0.0.2, ports: [{port: 80}]}\n".to_string(),
        // Lists among plain documents, a List nested in a List, a kind DNS does not read.
        format!(
            "kind: Namespace\napiVersion: v1\nmetadata: {{name: app}}\n---\napiVersion: v1\nkind: List\nitems:\n{}- kind: List\n  items:\n  - kind: Namespace\n    metadata: {{name: other}}\n--- # a comment\nkind: ConfigMapList\nitems:\n- kind: Service\n  metadata: {{name: x, namespace: app}}\n---\nkind: Service\napiVersion: v1\nmetadata: {{name: c, namespace: app}}\nspec: {{clusterIP: 10.0.0.3, ports: [{{port: 80}}]}}\n",
            svc("", "a", "10.0.0.1")
        ),
        // An entry written `-` alone: the reader takes the document whole.
        "kind: List\nitems:\n-\n  kind: Namespace\n  metadata: {name: app}\n".to_string(),
    ];
    for text in &texts {
        let by_item =
            decode(Path::new("objs.yaml"), text, &f).unwrap_or_else(|e| panic!("{e}\n{text}"));
        let whole = decode(Path::new("objs.yaml"), &format!("{text}...\n"), &f)
            .unwrap_or_else(|e| panic!("{e}\n{text}"));
        assert_eq!(by_item, whole, "{text}");
        assert!(!by_item.namespaces.is_empty(), "{text}");
    }
    assert_eq!(
        decode(Path::new("objs.yaml"), &texts[3], &f)
            .unwrap()
            .services
            .len(),
        2
    );
    // An error in an item is reported at the same place either way.
    let text = format!(
        "kind: List\nitems:\n{}- kind: Service\n  metadata: {{name: bad}}\n  spec:\n    ports:\n    - port: eighty\n",
        svc("", "a", "10.0.0.1")
    );
    let by_item = decode(Path::new("objs.yaml"), &text, &f).unwrap_err();
    let whole = decode(Path::new("objs.yaml"), &format!("{text}...\n"), &f).unwrap_err();
    assert_eq!(by_item, whole);
    assert_eq!(
        (by_item.line, by_item.col),
        (Some(17), Some(13)),
        "{by_item}"
    );
    // And so is YAML that does not parse, inside an item.
    let text = format!(
        "kind: List\nitems:\n{}- kind: Service\n  metadata: {{name: [\n",
        svc("", "a", "10.0.0.1")
    );
    let e = decode(Path::new("objs.yaml"), &text, &f).unwrap_err();
    assert!(e.to_string().contains("invalid YAML"), "{e}");
    assert!(e.line.is_some_and(|l| l >= 13), "{e}");
}

/// Lists are read item by item, as kubectl and the API write them: `items` before `kind`, typed
/// lists whose items carry no kind, Lists inside Lists, and top-level objects of other kinds
/// with an `items` field of their own.
#[test]
fn lists_are_read_item_by_item_in_any_field_order() {
    let f = Filters::default();
    let svc = |name: &str, ip: &str| {
        format!(
            r#"{{"metadata": {{"name": "{name}", "namespace": "app"}}, "spec": {{"clusterIP": "{ip}", "ports": [{{"port": 80}}]}}}}"#
        )
    };
    // A typed list: its items have no kind; `kind` comes last.
    let text = format!(
        r#"{{"apiVersion": "v1", "items": [{}, {}], "kind": "ServiceList", "metadata": {{}}}}"#,
        svc("a", "10.0.0.1"),
        svc("b", "10.0.0.2")
    );
    let snap = decode(Path::new("svc.json"), &text, &f).unwrap();
    assert_eq!(snap.services.len(), 2);
    assert!(snap.namespaces.iter().any(|n| &**n == "app"));
    // A mixed List with a List inside; items with and without a kind of their own.
    let text = r#"{"items": [{"kind": "Namespace", "apiVersion": "v1", "metadata": {"name": "app"}},
            {"kind": "List", "items": [{"kind": "Service", "apiVersion": "v1", "metadata": {"name": "c", "namespace": "app"}, "spec": {"clusterIP": "10.0.0.3"}}]}],
          "kind": "List"}"#;
    let snap = decode(Path::new("mixed.json"), text, &f).unwrap();
    assert_eq!(snap.services.len(), 1);
    assert_eq!(snap.namespaces.len(), 1);
    // Another kind whose top level has `items`: skipped, as any kind DNS does not read.
    let text = format!(
        r#"{{"items": [{}], "kind": "ConfigMapList"}}"#,
        svc("d", "10.0.0.4")
    );
    assert!(
        decode(Path::new("cm.json"), &text, &f)
            .unwrap()
            .services
            .is_empty()
    );
    // A bad item of a typed list is named by its place, though its kind came from the list.
    let text = format!(
        r#"{{"items": [{}, {{"metadata": {{"name": "bad"}}, "spec": {{"ports": "no"}}}}], "kind": "ServiceList"}}"#,
        svc("a", "10.0.0.1")
    );
    let e = decode(Path::new("bad.json"), &text, &f).unwrap_err();
    assert!(
        e.to_string()
            .contains("items[1]: Service 'bad': spec.ports: invalid type"),
        "{e}"
    );
    // `items` that is not a list.
    let e = decode(Path::new("x.json"), r#"{"kind": "List", "items": 3}"#, &f).unwrap_err();
    assert!(e.to_string().contains("invalid JSON"), "{e}");
    // A JSON document that is not an object.
    let e = decode(Path::new("x.json"), "[1, 2]", &f).unwrap_err();
    assert!(
        e.to_string()
            .contains("expected a Kubernetes object or List"),
        "{e}"
    );
}
