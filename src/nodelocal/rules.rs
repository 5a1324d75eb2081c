//! The node's packet rules for the local addresses: conntrack skipped (NOTRACK) for DNS to
//! and from them, the filter table's ACCEPTs that untracked packets then need, and the health
//! port's probes. Written with `nft` into a table of our own, replaced in one transaction, or
//! with `iptables-restore` into chains of our own, each jumped to from one rule.
//!
//! One difference from node-cache, on purpose: the NOTRACK of packets arriving for a local
//! address applies only while a socket is bound there (`socket transparent 0` in nft,
//! `-m socket --nowildcard` in iptables). When no cache process runs (killed, OOM, between a
//! rollout's pods), the packets for the kube-dns ClusterIP are tracked again and kube-proxy's
//! DNAT sends them to the Deployment, as before node-local was installed.

use std::io::Write;
use std::net::IpAddr;
use std::process::{Command, Stdio};

/// The nft table; `inet`, so one table holds both families.
pub const NFT_TABLE: &str = "clusterdns-nodelocal";
/// The comment on the iptables jump rules.
const JUMP_COMMENT: &str = "clusterdns node-local";
const CHAIN_PRE: &str = "CLUSTERDNS-NODELOCAL-PRE";
const CHAIN_OUT: &str = "CLUSTERDNS-NODELOCAL-OUT";
const CHAIN_IN: &str = "CLUSTERDNS-NODELOCAL-IN";

/// What the rules are for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Spec {
    pub ips: Vec<IpAddr>,
    pub port: u16,
    pub health_port: u16,
}

/// How the rules are written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Backend {
    Nft,
    /// The `iptables` binary to use (`iptables`, `iptables-nft` or `iptables-legacy`); the
    /// IPv6 one is named alike.
    Iptables(String),
}

/// What a check found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Everything was in place.
    Unchanged,
    /// Something was missing or changed, and was put back.
    Written,
}

/// Why the rules could not be written; the `errortype` of node-cache's setup error metric.
#[derive(Debug, thiserror::Error)]
pub enum RuleError {
    #[error("{tool}: {message}")]
    Failed { tool: String, message: String },
    #[error("{tool}: the xtables lock is held by another process: {message}")]
    Locked { tool: String, message: String },
}

impl RuleError {
    /// node-cache's `errortype` label.
    pub fn errortype(&self) -> &'static str {
        match self {
            RuleError::Failed { tool, .. } if tool.starts_with("nft") => "nftables",
            RuleError::Failed { .. } => "iptables",
            RuleError::Locked { .. } => "iptables_lock",
        }
    }
}

impl Backend {
    /// `nft` where the node's kube-proxy writes nftables (a `kube-proxy` table exists) or no
    /// iptables is installed; else the iptables whose backend holds the node's rules.
    pub fn detect() -> Option<Backend> {
        let nft = has("nft");
        if nft
            && let Ok(out) = run("nft", &["list", "tables"], None)
            && out.lines().any(|l| l.trim_end().ends_with(" kube-proxy"))
        {
            return Some(Backend::Nft);
        }
        let legacy = has("iptables-legacy-save");
        let newer = has("iptables-nft-save");
        let count = |tool: &str| {
            run(tool, &[], None)
                .map(|o| o.lines().filter(|l| l.starts_with("-A ")).count())
                .unwrap_or(0)
        };
        if legacy && newer {
            // As kube's iptables-wrapper decides: the backend with the node's rules.
            let name = if count("iptables-legacy-save") > count("iptables-nft-save") {
                "iptables-legacy"
            } else {
                "iptables-nft"
            };
            return Some(Backend::Iptables(name.into()));
        }
        if has("iptables") {
            return Some(Backend::Iptables("iptables".into()));
        }
        nft.then_some(Backend::Nft)
    }

    pub fn name(&self) -> String {
        match self {
            Backend::Nft => "nftables".into(),
            Backend::Iptables(t) => t.clone(),
        }
    }

    /// Puts the rules in place if anything differs from `spec`'s.
    pub fn ensure(&self, spec: &Spec) -> Result<Outcome, RuleError> {
        match self {
            Backend::Nft => {
                let want = nft_table(spec);
                let have = run("nft", &["list", "table", "inet", NFT_TABLE], None).ok();
                if have.as_deref().map(normalize) == Some(normalize(&want)) {
                    return Ok(Outcome::Unchanged);
                }
                // One transaction: create (so that delete cannot fail), delete, define.
                let script =
                    format!("table inet {NFT_TABLE}\ndelete table inet {NFT_TABLE}\n{want}");
                run("nft", &["-f", "-"], Some(&script))?;
                Ok(Outcome::Written)
            }
            Backend::Iptables(tool) => {
                let mut written = false;
                for (v6, ips) in families(spec) {
                    let tool = family_tool(tool, v6);
                    let have = run(&format!("{tool}-save"), &[], None)?;
                    let chains = ipt_chains(spec, &ips, v6);
                    let script = ipt_repair(&have, &chains);
                    if let Some(script) = script {
                        run(
                            &format!("{tool}-restore"),
                            &["-w", "5", "--noflush"],
                            Some(&script),
                        )?;
                        written = true;
                    }
                }
                Ok(if written {
                    Outcome::Written
                } else {
                    Outcome::Unchanged
                })
            }
        }
    }

    /// Removes every rule, chain and table written here, and nothing else.
    pub fn remove(&self) -> Result<(), RuleError> {
        match self {
            Backend::Nft => {
                let have = run("nft", &["list", "tables"], None)?;
                if have
                    .lines()
                    .any(|l| l.trim() == format!("table inet {NFT_TABLE}"))
                {
                    run("nft", &["delete", "table", "inet", NFT_TABLE], None)?;
                }
                Ok(())
            }
            Backend::Iptables(tool) => {
                for v6 in [false, true] {
                    let tool = family_tool(tool, v6);
                    if !has(&format!("{tool}-save")) {
                        continue;
                    }
                    let have = run(&format!("{tool}-save"), &[], None)?;
                    if let Some(script) = ipt_removal(&have) {
                        run(
                            &format!("{tool}-restore"),
                            &["-w", "5", "--noflush"],
                            Some(&script),
                        )?;
                    }
                    // iptables-nft makes its `raw` and `filter` tables at their first use, ours
                    // perhaps. Left empty (no rule, no chain of anyone's), they filter nothing
                    // and iptables-nft makes them again when anything uses them: they go. An
                    // instance after a SIGKILL cannot know who made them, so this does not ask.
                    let family = if v6 { "ip6" } else { "ip" };
                    for table in ["raw", "filter"] {
                        if !nft_tables().contains(&format!("table {family} {table}")) {
                            continue;
                        }
                        let save = run(&format!("{tool}-save"), &["-t", table], None)?;
                        let empty = !save.lines().any(|l| {
                            l.starts_with("-A ") || (l.starts_with(':') && !l.contains(" ACCEPT ["))
                        });
                        if empty && save.contains("nf_tables") {
                            run("nft", &["delete", "table", family, table], None)?;
                        }
                    }
                }
                Ok(())
            }
        }
    }
}

/// The nftables tables there are (`table ip raw`, …); empty without `nft`.
fn nft_tables() -> Vec<String> {
    if !has("nft") {
        return Vec::new();
    }
    run("nft", &["list", "tables"], None)
        .map(|t| t.lines().map(|l| l.trim().to_string()).collect())
        .unwrap_or_default()
}

fn family_tool(tool: &str, v6: bool) -> String {
    if v6 {
        tool.replacen("iptables", "ip6tables", 1)
    } else {
        tool.to_string()
    }
}

/// The addresses by family: (is IPv6, addresses), families without any left out.
fn families(spec: &Spec) -> Vec<(bool, Vec<IpAddr>)> {
    // Sorted, as `nft list` prints a set's elements.
    let mut v4: Vec<IpAddr> = spec.ips.iter().copied().filter(IpAddr::is_ipv4).collect();
    let mut v6: Vec<IpAddr> = spec.ips.iter().copied().filter(IpAddr::is_ipv6).collect();
    v4.sort();
    v4.dedup();
    v6.sort();
    v6.dedup();
    let mut out = Vec::new();
    if !v4.is_empty() {
        out.push((false, v4));
    }
    if !v6.is_empty() {
        out.push((true, v6));
    }
    out
}

/// The nft table, as `nft list table` prints it back (so that a check is a comparison).
pub fn nft_table(spec: &Spec) -> String {
    let mut pre = Vec::new();
    let mut out = Vec::new();
    let mut input = Vec::new();
    let mut output = Vec::new();
    let p = spec.port;
    let h = spec.health_port;
    for (v6, ips) in families(spec) {
        let fam = if v6 { "ip6" } else { "ip" };
        let set = if ips.len() == 1 {
            ips[0].to_string()
        } else {
            format!(
                "{{ {} }}",
                ips.iter()
                    .map(|i| i.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        for proto in ["tcp", "udp"] {
            pre.push(format!(
                "{fam} daddr {set} {proto} dport {p} socket transparent 0 notrack"
            ));
        }
        for proto in ["tcp", "udp"] {
            out.push(format!("{fam} saddr {set} {proto} sport {p} notrack"));
            out.push(format!("{fam} daddr {set} {proto} dport {p} notrack"));
        }
        out.push(format!("{fam} daddr {set} tcp dport {h} notrack"));
        out.push(format!("{fam} saddr {set} tcp sport {h} notrack"));
        for proto in ["tcp", "udp"] {
            input.push(format!("{fam} daddr {set} {proto} dport {p} accept"));
            output.push(format!("{fam} saddr {set} {proto} sport {p} accept"));
        }
    }
    let chain = |name: &str, hook: &str, prio: &str, rules: &[String]| {
        let mut s = format!(
            "\tchain {name} {{\n\t\ttype filter hook {hook} priority {prio}; policy accept;\n"
        );
        for r in rules {
            s.push_str(&format!("\t\t{r}\n"));
        }
        s.push_str("\t}\n");
        s
    };
    format!(
        "table inet {NFT_TABLE} {{\n{}\n{}\n{}\n{}}}\n",
        chain("prerouting", "prerouting", "raw", &pre),
        chain("output-raw", "output", "raw", &out),
        chain("input", "input", "filter - 1", &input),
        chain("output", "output", "filter - 1", &output),
    )
}

/// Blank lines and indentation do not count in a comparison.
fn normalize(s: &str) -> String {
    s.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("\n")
}

/// One of our chains: its table, the built-in chain that jumps to it, and its rules as
/// `iptables-save` prints them.
struct IptChain {
    table: &'static str,
    name: &'static str,
    from: &'static str,
    rules: Vec<String>,
}

fn ipt_chains(spec: &Spec, ips: &[IpAddr], v6: bool) -> Vec<IptChain> {
    let len = if v6 { 128 } else { 32 };
    let p = spec.port;
    let h = spec.health_port;
    let mut pre = Vec::new();
    let mut out = Vec::new();
    let mut input = Vec::new();
    let mut output = Vec::new();
    for ip in ips {
        for proto in ["tcp", "udp"] {
            pre.push(format!(
                "-d {ip}/{len} -p {proto} -m {proto} --dport {p} -m socket --nowildcard -j NOTRACK"
            ));
            out.push(format!(
                "-s {ip}/{len} -p {proto} -m {proto} --sport {p} -j NOTRACK"
            ));
            out.push(format!(
                "-d {ip}/{len} -p {proto} -m {proto} --dport {p} -j NOTRACK"
            ));
            input.push(format!(
                "-d {ip}/{len} -p {proto} -m {proto} --dport {p} -j ACCEPT"
            ));
            output.push(format!(
                "-s {ip}/{len} -p {proto} -m {proto} --sport {p} -j ACCEPT"
            ));
        }
        out.push(format!(
            "-d {ip}/{len} -p tcp -m tcp --dport {h} -j NOTRACK"
        ));
        out.push(format!(
            "-s {ip}/{len} -p tcp -m tcp --sport {h} -j NOTRACK"
        ));
    }
    vec![
        IptChain {
            table: "raw",
            name: CHAIN_PRE,
            from: "PREROUTING",
            rules: pre,
        },
        IptChain {
            table: "raw",
            name: CHAIN_OUT,
            from: "OUTPUT",
            rules: out,
        },
        IptChain {
            table: "filter",
            name: CHAIN_IN,
            from: "INPUT",
            rules: input,
        },
        IptChain {
            table: "filter",
            name: CHAIN_OUT,
            from: "OUTPUT",
            rules: output,
        },
    ]
}

/// The lines of `table` in an `iptables-save` dump.
fn table_lines<'a>(save: &'a str, table: &str) -> Vec<&'a str> {
    let mut inside = false;
    let mut out = Vec::new();
    for l in save.lines() {
        if let Some(t) = l.strip_prefix('*') {
            inside = t.trim() == table;
        } else if inside {
            out.push(l.trim_end());
        }
    }
    out
}

fn jump(from: &str, name: &str) -> String {
    format!("-A {from} -m comment --comment \"{JUMP_COMMENT}\" -j {name}")
}

/// An `iptables-restore --noflush` script that makes the dump `save` hold exactly `chains`
/// and one jump to each; `None` when it already does.
fn ipt_repair(save: &str, chains: &[IptChain]) -> Option<String> {
    let mut script = String::new();
    for table in ["raw", "filter"] {
        let lines = table_lines(save, table);
        let mut body = String::new();
        for c in chains.iter().filter(|c| c.table == table) {
            let prefix = format!("-A {} ", c.name);
            let have: Vec<&str> = lines
                .iter()
                .filter_map(|l| l.strip_prefix(&prefix))
                .collect();
            let declared = lines
                .iter()
                .any(|l| l.starts_with(&format!(":{} ", c.name)));
            let jumps = lines.iter().filter(|l| **l == jump(c.from, c.name)).count();
            if declared && have == c.rules && jumps == 1 {
                continue;
            }
            // Declaring a chain in a --noflush restore empties it.
            body.push_str(&format!(":{} - [0:0]\n", c.name));
            for r in &c.rules {
                body.push_str(&format!("-A {} {r}\n", c.name));
            }
            let j = jump(c.from, c.name);
            let j = j.strip_prefix("-A ").unwrap_or(&j);
            for _ in 1..jumps.max(1) {
                body.push_str(&format!("-D {j}\n"));
            }
            if jumps == 0 {
                body.push_str(&format!("-I {} 1 {}\n", c.from, &j[c.from.len() + 1..]));
            }
        }
        if !body.is_empty() {
            script.push_str(&format!("*{table}\n{body}COMMIT\n"));
        }
    }
    (!script.is_empty()).then_some(script)
}

/// An `iptables-restore --noflush` script that removes our jumps and chains from the dump
/// `save`; `None` when there are none.
fn ipt_removal(save: &str) -> Option<String> {
    let mut script = String::new();
    for (table, names) in [
        ("raw", [(CHAIN_PRE, "PREROUTING"), (CHAIN_OUT, "OUTPUT")]),
        ("filter", [(CHAIN_IN, "INPUT"), (CHAIN_OUT, "OUTPUT")]),
    ] {
        let lines = table_lines(save, table);
        let mut body = String::new();
        for (name, from) in names {
            let j = jump(from, name);
            for _ in lines.iter().filter(|l| **l == j) {
                body.push_str(&format!("-D {}\n", &j[3..]));
            }
            if lines.iter().any(|l| l.starts_with(&format!(":{name} "))) {
                body.push_str(&format!("-F {name}\n-X {name}\n"));
            }
        }
        if !body.is_empty() {
            script.push_str(&format!("*{table}\n{body}COMMIT\n"));
        }
    }
    (!script.is_empty()).then_some(script)
}

/// Whether `tool` is on the PATH.
fn has(tool: &str) -> bool {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
        .unwrap_or(false)
}

/// Runs `tool args`, with `input` on its standard input; its standard output, or what it said
/// went wrong.
fn run(tool: &str, args: &[&str], input: Option<&str>) -> Result<String, RuleError> {
    let fail = |message: String| {
        if message.contains("xtables lock") {
            RuleError::Locked {
                tool: tool.to_string(),
                message,
            }
        } else {
            RuleError::Failed {
                tool: tool.to_string(),
                message,
            }
        }
    };
    let mut child = Command::new(tool)
        .args(args)
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| fail(format!("cannot run it: {e}")))?;
    if let (Some(text), Some(mut stdin)) = (input, child.stdin.take()) {
        stdin
            .write_all(text.as_bytes())
            .map_err(|e| fail(format!("cannot write its input: {e}")))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| fail(format!("cannot wait for it: {e}")))?;
    if !out.status.success() {
        let said = String::from_utf8_lossy(&out.stderr).trim().to_string();
        return Err(fail(format!("{} ({})", said, out.status)));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> Spec {
        Spec {
            ips: vec![
                "169.254.20.10".parse().unwrap(),
                "10.96.0.10".parse().unwrap(),
            ],
            port: 53,
            health_port: 8080,
        }
    }

    #[test]
    fn an_iptables_dump_with_everything_in_place_needs_no_repair() {
        let chains = ipt_chains(&spec(), &spec().ips, false);
        let mut save = String::from("*raw\n:PREROUTING ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n");
        for c in chains.iter().filter(|c| c.table == "raw") {
            save.push_str(&format!(":{} - [0:0]\n", c.name));
        }
        for c in chains.iter().filter(|c| c.table == "raw") {
            save.push_str(&format!("{}\n", jump(c.from, c.name)));
            for r in &c.rules {
                save.push_str(&format!("-A {} {r}\n", c.name));
            }
        }
        save.push_str("COMMIT\n");
        let script = ipt_repair(&save, &chains).unwrap();
        // Only the filter table is missing.
        assert!(!script.contains("*raw"), "{script}");
        assert!(script.contains("*filter\n:CLUSTERDNS-NODELOCAL-IN - [0:0]\n"));
        assert!(script.contains(
            "-I INPUT 1 -m comment --comment \"clusterdns node-local\" -j CLUSTERDNS-NODELOCAL-IN\n"
        ));

        // A duplicated jump is taken out, and a changed rule rewritten.
        let doubled = save.replace(
            &jump("PREROUTING", CHAIN_PRE),
            &format!("{0}\n{0}", jump("PREROUTING", CHAIN_PRE)),
        );
        let script = ipt_repair(&doubled, &chains).unwrap();
        assert!(script.contains("-D PREROUTING -m comment --comment \"clusterdns node-local\" -j CLUSTERDNS-NODELOCAL-PRE\n"));
        assert!(!script.contains("-I PREROUTING"));
    }

    #[test]
    fn removal_takes_out_only_our_jumps_and_chains() {
        let save = "*raw\n:PREROUTING ACCEPT [0:0]\n:CLUSTERDNS-NODELOCAL-PRE - [0:0]\n\
-A PREROUTING -j KUBE-SOMETHING\n\
-A PREROUTING -m comment --comment \"clusterdns node-local\" -j CLUSTERDNS-NODELOCAL-PRE\n\
-A CLUSTERDNS-NODELOCAL-PRE -d 10.96.0.10/32 -p udp -m udp --dport 53 -j NOTRACK\nCOMMIT\n";
        let script = ipt_removal(save).unwrap();
        assert_eq!(
            script,
            "*raw\n-D PREROUTING -m comment --comment \"clusterdns node-local\" -j CLUSTERDNS-NODELOCAL-PRE\n\
-F CLUSTERDNS-NODELOCAL-PRE\n-X CLUSTERDNS-NODELOCAL-PRE\nCOMMIT\n"
        );
        assert_eq!(
            ipt_removal("*raw\n:PREROUTING ACCEPT [0:0]\nCOMMIT\n"),
            None
        );
    }

    #[test]
    fn the_nft_table_has_both_families_in_one_table() {
        let mut s = spec();
        s.ips.push("fd00::a".parse().unwrap());
        let t = nft_table(&s);
        assert!(
            t.contains(
                "ip daddr { 10.96.0.10, 169.254.20.10 } udp dport 53 socket transparent 0 notrack"
            ),
            "{t}"
        );
        assert!(t.contains("ip6 daddr fd00::a tcp dport 53 socket transparent 0 notrack"));
        assert!(t.contains("ip saddr { 10.96.0.10, 169.254.20.10 } tcp sport 8080 notrack"));
    }
}
