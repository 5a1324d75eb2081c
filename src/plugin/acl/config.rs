//! `acl [ZONES…] { ACTION [type QTYPE…] [net SOURCE…] … }`, any number of times per block: the
//! rules of every `acl` line are checked in Corefile order.

use std::str::FromStr;

use hickory_proto::rr::{Name, RecordType};
use ipnet::IpNet;

use crate::corefile::args::{self, Args};
use crate::corefile::error::ConfigError;
use crate::corefile::keys::{BlockContext, zones_or_block};
use crate::corefile::{Directive, Token};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Passed on to the rest of the chain; no later rule is looked at.
    Allow,
    /// REFUSED.
    Block,
    /// NOERROR with nothing in it.
    Filter,
    /// No answer at all.
    Drop,
}

/// One line of a block: what to do with the queries it matches.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    pub action: Action,
    /// The query types it matches; `None`: all (`type *`, or no `type`).
    pub qtypes: Option<Vec<RecordType>>,
    /// The source networks it matches; `None`: all (`net *`, or no `net`).
    pub nets: Option<Vec<IpNet>>,
}

/// One `acl` directive: its zones and its lines.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    pub zones: Vec<Name>,
    pub policies: Vec<Policy>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AclConfig {
    pub rules: Vec<Rule>,
}

impl AclConfig {
    /// The block's next `acl` line.
    pub fn absorb(&mut self, next: AclConfig) {
        self.rules.extend(next.rules);
    }
}

pub fn parse(d: &Directive, ctx: &BlockContext) -> Result<AclConfig, Vec<ConfigError>> {
    let zones = zones_or_block(&d.args, ctx)?;
    let mut policies = Vec::new();
    let mut errors = Vec::new();
    for p in d.block.iter().flatten() {
        match policy(p) {
            Ok(pol) => policies.push(pol),
            Err(e) => errors.push(e),
        }
    }
    if errors.is_empty() && policies.is_empty() {
        errors.push(Args::new("acl", d).err_here(
            "expected a block of rules: { allow|block|filter|drop [type QTYPE…] [net SOURCE…] }",
        ));
    }
    args::finish(
        AclConfig {
            rules: vec![Rule { zones, policies }],
        },
        errors,
    )
}

fn policy(p: &Directive) -> Result<Policy, ConfigError> {
    let a = Args::new("acl", p);
    let action = match p.name.text.as_str() {
        "allow" => Action::Allow,
        "block" => Action::Block,
        "filter" => Action::Filter,
        "drop" => Action::Drop,
        other => {
            return Err(a.err_here(format!(
                "unknown action '{other}'; expected allow, block, filter or drop"
            )));
        }
    };
    let mut pol = Policy {
        action,
        qtypes: None,
        nets: None,
    };
    // Words after `type` are types and after `net` networks, until the other keyword.
    let mut section: Option<&Token> = None;
    let (mut qtypes, mut nets): (Vec<RecordType>, Vec<IpNet>) = (Vec::new(), Vec::new());
    let (mut any_type, mut any_net) = (false, false);
    let (mut saw_type, mut saw_net) = (false, false);
    for t in &p.args {
        match t.text.as_str() {
            "type" => {
                saw_type = true;
                section = Some(t);
                continue;
            }
            "net" => {
                saw_net = true;
                section = Some(t);
                continue;
            }
            "file" => {
                return Err(a.err(
                    t,
                    "'file' lists are not supported; write the networks after 'net'",
                ));
            }
            _ => {}
        }
        let Some(kind) = section else {
            return Err(a.err(t, format!("unexpected '{}'; expected type or net", t.text)));
        };
        if t.text == "*" {
            if kind.text == "type" {
                any_type = true;
            } else {
                any_net = true;
            }
        } else if kind.text == "type" {
            let qtype = RecordType::from_str(&t.text.to_ascii_uppercase())
                .ok()
                .filter(|q| !matches!(q, RecordType::Unknown(_)))
                .ok_or_else(|| a.err(t, format!("'{}' is not a record type", t.text)))?;
            qtypes.push(qtype);
        } else {
            nets.push(network(&a, t)?);
        }
    }
    for (saw, empty, any, what) in [
        (saw_type, qtypes.is_empty(), any_type, "type"),
        (saw_net, nets.is_empty(), any_net, "net"),
    ] {
        if saw && empty && !any {
            let at = p
                .args
                .iter()
                .rev()
                .find(|t| t.text == what)
                .unwrap_or(&p.name);
            return Err(a.err(at, format!("'{what}' needs at least one value")));
        }
    }
    if !any_type && !qtypes.is_empty() {
        pol.qtypes = Some(qtypes);
    }
    if !any_net && !nets.is_empty() {
        pol.nets = Some(nets);
    }
    Ok(pol)
}

/// A CIDR, or a single address (all its bits).
fn network(a: &Args, t: &Token) -> Result<IpNet, ConfigError> {
    if let Ok(net) = t.text.parse::<IpNet>() {
        return Ok(net.trunc());
    }
    t.text
        .parse::<std::net::IpAddr>()
        .map(IpNet::from)
        .map_err(|_| a.err(t, format!("'{}' is not an address or a CIDR", t.text)))
}

#[cfg(test)]
mod tests {
    use super::{Action, Policy};
    use crate::config::testing::{assert_errors, plugin, zones};
    use crate::plugin::registry::PluginConfig;
    use hickory_proto::rr::RecordType;

    fn acl(text: &str) -> super::AclConfig {
        plugin(text, |p| match p {
            PluginConfig::Acl(c) => Some((**c).clone()),
            _ => None,
        })
    }

    #[test]
    fn rules_keep_their_order_across_lines() {
        let cfg = acl(concat!(
            "example.org:53 {\n",
            " acl {\n  allow net 192.168.1.0/24 10.0.0.1\n  block type A AAAA net 192.168.0.0/16\n }\n",
            " acl a.example.org {\n  filter type *\n  drop\n }\n",
            "}"
        ));
        assert_eq!(cfg.rules.len(), 2);
        assert_eq!(zones(&cfg.rules[0].zones), ["example.org."]);
        assert_eq!(zones(&cfg.rules[1].zones), ["a.example.org."]);
        let p = &cfg.rules[0].policies;
        assert_eq!(p[0].action, Action::Allow);
        assert_eq!(p[0].qtypes, None);
        let nets: Vec<String> = p[0].nets.iter().flatten().map(|n| n.to_string()).collect();
        assert_eq!(nets, ["192.168.1.0/24", "10.0.0.1/32"]);
        assert_eq!(p[1].qtypes, Some(vec![RecordType::A, RecordType::AAAA]));
        let all = |action| Policy {
            action,
            qtypes: None,
            nets: None,
        };
        assert_eq!(
            cfg.rules[1].policies,
            [all(Action::Filter), all(Action::Drop)]
        );
    }

    #[test]
    fn errors_name_the_place() {
        assert_errors(&[
            (".:53 {\n acl\n}", "2:2: acl: expected a block of rules"),
            (
                ".:53 {\n acl {\n  deny net 10.0.0.0/8\n }\n}",
                "3:3: acl: unknown action 'deny'; expected allow, block, filter or drop",
            ),
            (
                ".:53 {\n acl {\n  block net 10.0.0.0/33\n }\n}",
                "3:13: acl: '10.0.0.0/33' is not an address or a CIDR",
            ),
            (
                ".:53 {\n acl {\n  block type QQ\n }\n}",
                "3:14: acl: 'QQ' is not a record type",
            ),
            (
                ".:53 {\n acl {\n  block 10.0.0.1\n }\n}",
                "3:9: acl: unexpected '10.0.0.1'; expected type or net",
            ),
            (
                ".:53 {\n acl {\n  block net\n }\n}",
                "3:9: acl: 'net' needs at least one value",
            ),
            (
                ".:53 {\n acl {\n  block file /etc/blocklist\n }\n}",
                "3:9: acl: 'file' lists are not supported",
            ),
        ]);
    }
}
