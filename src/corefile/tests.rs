use std::collections::HashMap;
use std::sync::Arc;

use super::*;

fn env(k: &str) -> Option<String> {
    HashMap::from([("ZONE", "cluster.local"), ("PORT", "1053")])
        .get(k)
        .map(|v| v.to_string())
}

fn parse(text: &str) -> Result<Vec<ServerBlock>, SyntaxError> {
    parse_str(&Arc::from("Corefile"), text, &env)
}

/// A compact rendering of the tree: `keys{dir arg arg{prop arg};dir}`.
fn render(blocks: &[ServerBlock]) -> String {
    fn dirs(ds: &[Directive]) -> String {
        ds.iter()
            .map(|d| {
                let mut s = d.name.text.clone();
                for a in &d.args {
                    s.push(' ');
                    s.push_str(&a.text);
                }
                if let Some(b) = &d.block {
                    s.push_str(&format!("{{{}}}", dirs(b)));
                }
                s
            })
            .collect::<Vec<_>>()
            .join(";")
    }
    blocks
        .iter()
        .map(|b| {
            let keys: Vec<&str> = b.keys.iter().map(|k| k.text.as_str()).collect();
            format!("{}{{{}}}", keys.join(","), dirs(&b.directives))
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[test]
fn parses_what_coredns_accepts() {
    let table: &[(&str, &str)] = &[
        (".:53 {\n errors\n}", ".:53{errors}"),
        (".:53 {\n}", ".:53{}"),
        (".:53 {}", ".:53{}"),
        ("a.:53 b.:53 {\n log\n}", "a.:53,b.:53{log}"),
        ("a.:53, b.:53 {\n log\n}", "a.:53,b.:53{log}"),
        ("a.:53,\nb.:53 {\n log\n}", "a.:53,b.:53{log}"),
        (
            ".:53 {\n kubernetes cluster.local in-addr.arpa {\n  pods insecure\n  fallthrough in-addr.arpa\n }\n forward . 1.1.1.1\n}",
            ".:53{kubernetes cluster.local in-addr.arpa{pods insecure;fallthrough in-addr.arpa};forward . 1.1.1.1}",
        ),
        // Comments, quotes and escapes.
        (".:53 { # the root\n log # all queries\n}", ".:53{log}"),
        (
            ".:53 {\n log . \"{remote} \\\"q\\\"\"\n}",
            ".:53{log . {remote} \"q\"}",
        ),
        (
            ".:53 {\n template ANY ANY {\n  answer \"{{ .Name }} 60 IN A 1.2.3.4\"\n }\n}",
            ".:53{template ANY ANY{answer {{ .Name }} 60 IN A 1.2.3.4}}",
        ),
        // `#` inside a word is not a comment.
        (".:53 {\n log a#b\n}", ".:53{log a#b}"),
        // Environment substitution, both syntaxes; unset becomes empty.
        ("{$ZONE}:{$PORT} {\n log\n}", "cluster.local:1053{log}"),
        ("{%ZONE%}:53 {\n log\n}", "cluster.local:53{log}"),
        (".:53 {\n log {$UNSET}x\n}", ".:53{log x}"),
        // A block property closed on the same line as a directive.
        (".:53 {\n errors {}\n log\n}", ".:53{errors{};log}"),
        // Snippets.
        (
            "(common) {\n errors\n log\n}\n.:53 {\n import common\n}",
            ".:53{errors;log}",
        ),
        (
            "(z) {\n pods insecure\n}\n.:53 {\n kubernetes {\n  import z\n }\n}",
            ".:53{kubernetes{pods insecure}}",
        ),
        // Globs matching nothing are fine.
        (
            ".:53 {\n import /nonexistent-dir/*.override\n}\nimport /nonexistent-dir/*.server",
            ".:53{}",
        ),
        // Several blocks.
        (
            "a.:53 {\n log\n}\nb.:54 {\n errors\n}",
            "a.:53{log} b.:54{errors}",
        ),
    ];
    for (text, want) in table {
        match parse(text) {
            Ok(blocks) => assert_eq!(&render(&blocks), want, "{text}"),
            Err(e) => panic!("{text}: {e}"),
        }
    }
}

#[test]
fn errors_name_file_line_col_and_what_was_expected() {
    let table: &[(&str, &str)] = &[
        (
            ".:53",
            "Corefile:1:1: server block '.:53' has no body: expected '{'",
        ),
        (
            ".:53 {\n log\n",
            "Corefile:1:1: the block opened by '.:53' is never closed",
        ),
        (".:53 {\n log\n}\n}", "Corefile:4:1: unexpected '}'"),
        ("{\n log\n}", "Corefile:1:1: expected server block keys"),
        (
            ".:53 {\n log \"abc\n}",
            "Corefile:2:6: unterminated quoted string",
        ),
        (".:53 {\n {\n}\n}", "Corefile:2:2: unexpected '{'"),
        (
            ".:53 {\n import\n}",
            "Corefile:2:2: import: expected a snippet name or a file pattern",
        ),
        (
            ".:53 {\n import a b\n}",
            "Corefile:2:11: import: expected one argument",
        ),
        (
            ".:53 {\n import nosuchsnippet\n}",
            "Corefile:2:9: import nosuchsnippet: no snippet of that name and no such file",
        ),
        (
            "(loop) {\n import loop\n}\n.:53 {\n import loop\n}",
            "imports nest deeper than 16 levels",
        ),
        (
            "(s)\n.:53 {\n}",
            "Corefile:1:1: snippet (s): expected '{' on the same line",
        ),
    ];
    for (text, want) in table {
        match parse(text) {
            Ok(b) => panic!("{text}: parsed as {}", render(&b)),
            Err(e) => assert!(
                e.to_string().contains(want),
                "{text}:\n got: {e}\nwant: {want}"
            ),
        }
    }
}

#[test]
fn imports_files_relative_to_the_corefile_with_their_own_positions() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("custom")).unwrap();
    std::fs::write(dir.path().join("custom/a.override"), "log\n").unwrap();
    std::fs::write(dir.path().join("custom/b.override"), "errors\n").unwrap();
    std::fs::write(
        dir.path().join("custom/x.server"),
        "example.org:53 {\n  bogus {\n}\n",
    )
    .unwrap();
    let core = dir.path().join("Corefile");
    std::fs::write(
        &core,
        ".:53 {\n    import custom/*.override\n}\nimport custom/*.server\n",
    )
    .unwrap();
    let err = parse_file(&core).unwrap_err();
    // The error is in the imported file, at its own line and column.
    assert!(err.to_string().contains("x.server:1:1"), "{err}");
    std::fs::write(
        dir.path().join("custom/x.server"),
        "example.org:53 {\n  bogus\n}\n",
    )
    .unwrap();
    let blocks = parse_file(&core).unwrap();
    assert_eq!(render(&blocks), ".:53{log;errors} example.org:53{bogus}");
    let bogus = &blocks[1].directives[0].name;
    assert!(
        bogus.pos.to_string().ends_with("custom/x.server:2:3"),
        "{}",
        bogus.pos
    );
}
