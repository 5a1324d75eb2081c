//! Every directive clusterdns knows, in one table: its name, where it runs (CoreDNS's
//! `plugin.cfg` order, whatever order the Corefile lists it in), how it is parsed and how it is
//! set up. Adding a directive is a folder under `src/plugin/` and one line in `directives!`'s
//! table below.
//!
//! A handler sees a query before every handler below it in [`ORDER`], and may answer, pass it
//! on, or wrap what the rest of the chain answers.

use crate::corefile::Directive;
use crate::corefile::error::ConfigError;
use crate::corefile::keys::BlockContext;

use super::setup::Setup;
use super::*;

/// How a directive may repeat in one server block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Repeat {
    /// Once per block.
    Once,
    /// Any number of times, each line its own plugin (`log`, `template`).
    Each,
    /// Any number of times, the lines forming one plugin in Corefile order (`rewrite`): the
    /// config type has `fn absorb(&mut self, next: Self)`.
    Merged,
}

/// The table. Each row: the enum variant, the directive's name, its folder, its config type,
/// and how it may repeat. The folder provides `config::parse(&Directive, &BlockContext) ->
/// Result<Config, Vec<ConfigError>>` and `setup(&Config, &mut Setup) -> Result<(), PluginError>`.
macro_rules! directives {
    (@absorb Merged $a:ident $b:ident $v:ident) => {{
        $a.absorb(*$b);
        Ok(())
    }};
    (@absorb $other:ident $a:ident $b:ident $v:ident) => {{
        let _ = $a;
        Err(PluginConfig::$v($b))
    }};
    ($( $variant:ident $name:literal $module:ident :: $config:ident $repeat:ident, )*) => {
        /// The typed configuration of one directive.
        #[derive(Clone, Debug)]
        pub enum PluginConfig {
            $( $variant(Box<$module::config::$config>), )*
        }

        impl PluginConfig {
            pub fn name(&self) -> &'static str {
                match self {
                    $( PluginConfig::$variant(_) => $name, )*
                }
            }

            /// Folds a repeated [`Repeat::Merged`] directive's next line into this one;
            /// gives `next` back when the two are not the same directive or do not merge.
            pub fn absorb(&mut self, next: PluginConfig) -> Result<(), PluginConfig> {
                match (self, next) {
                    $( (PluginConfig::$variant(a), PluginConfig::$variant(b)) => {
                        directives!(@absorb $repeat a b $variant)
                    } )*
                    (_, next) => Err(next),
                }
            }
        }

        /// The directives clusterdns implements, as `-plugins` lists them (sorted).
        pub const SUPPORTED: &[&str] = &{
            let mut names = [$( $name, )*];
            // A const sort: the table is in chain order, `-plugins` lists names alphabetically.
            let mut i = 1;
            while i < names.len() {
                let mut j = i;
                while j > 0 && less(names[j], names[j - 1]) {
                    let t = names[j];
                    names[j] = names[j - 1];
                    names[j - 1] = t;
                    j -= 1;
                }
                i += 1;
            }
            names
        };

        /// How `name` may repeat in a block.
        pub fn repeat(name: &str) -> Repeat {
            match name {
                $( $name => Repeat::$repeat, )*
                _ => Repeat::Once,
            }
        }

        /// Types one directive, or says why it cannot be.
        fn parse_known(d: &Directive, ctx: &BlockContext) -> Option<Result<PluginConfig, Vec<ConfigError>>> {
            Some(match d.name.text.as_str() {
                $( $name => $module::config::parse(d, ctx).map(|c| PluginConfig::$variant(Box::new(c))), )*
                _ => return None,
            })
        }

        /// Builds what one directive's configuration asks for into the block being set up.
        pub fn setup(cfg: &PluginConfig, s: &mut Setup<'_>) -> Result<(), PluginError> {
            match cfg {
                $( PluginConfig::$variant(c) => $module::setup(c, s), )*
            }
        }
    };
}

directives! {
    Metadata "metadata" metadata::MetadataConfig Once,
    Cancel "cancel" cancel::CancelConfig Once,
    Tls "tls" tls::TlsConfig Once,
    Timeouts "timeouts" timeouts::TimeoutsConfig Once,
    Reload "reload" reload::ReloadConfig Once,
    Nsid "nsid" nsid::NsidConfig Once,
    Bufsize "bufsize" bufsize::BufsizeConfig Once,
    Bind "bind" bind::BindConfig Each,
    Ratelimit "ratelimit" ratelimit::RatelimitConfig Once,
    Debug "debug" debug::DebugConfig Once,
    Ready "ready" ready::ReadyConfig Once,
    Health "health" health::HealthConfig Once,
    Shed "shed" shed::ShedConfig Once,
    Prometheus "prometheus" prometheus::PrometheusConfig Once,
    Errors "errors" errors::ErrorsConfig Once,
    Log "log" log::LogConfig Each,
    Dnstap "dnstap" dnstap::DnstapConfig Each,
    Local "local" local::LocalConfig Once,
    Dns64 "dns64" dns64::Dns64Config Once,
    Acl "acl" acl::AclConfig Merged,
    Any "any" any::AnyConfig Once,
    Chaos "chaos" chaos::ChaosConfig Once,
    Loadbalance "loadbalance" loadbalance::LoadbalanceConfig Once,
    Cache "cache" cache::CacheConfig Once,
    Rewrite "rewrite" rewrite::RewriteConfig Merged,
    Header "header" header::HeaderConfig Once,
    Autopath "autopath" autopath::AutopathConfig Once,
    Minimal "minimal" minimal::MinimalConfig Once,
    Template "template" template::TemplateConfig Each,
    Transfer "transfer" transfer::TransferConfig Merged,
    Hosts "hosts" hosts::HostsConfig Once,
    K8sExternal "k8s_external" k8s_external::K8sExternalConfig Once,
    Kubernetes "kubernetes" kubernetes::KubernetesConfig Once,
    File "file" file::FileConfig Each,
    Loop "loop" r#loop::LoopConfig Once,
    Forward "forward" forward::ForwardConfig Each,
    Erratic "erratic" erratic::ErraticConfig Once,
    Whoami "whoami" whoami::WhoamiConfig Once,
    View "view" view::ViewConfig Merged,
}

/// The cluster source a directive reads, where it reads one (`kubernetes`). The application
/// starts it (or keeps the running one with the same key) before the block is set up, and
/// offers it to every plugin of the block as an `Arc<ClusterSource>`: the plugins above
/// `kubernetes` in the chain (`autopath`, `cache`, `k8s_external`) read its index too.
pub fn cluster_source(cfg: &PluginConfig) -> Option<crate::cluster::source::SourceSpec> {
    match cfg {
        PluginConfig::Kubernetes(k) => Some(k.source_spec()),
        _ => None,
    }
}

/// Byte order of two names, usable in a const.
const fn less(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let mut i = 0;
    while i < a.len() && i < b.len() {
        if a[i] != b[i] {
            return a[i] < b[i];
        }
        i += 1;
    }
    a.len() < b.len()
}

/// Types one directive of a server block.
pub fn parse(d: &Directive, ctx: &BlockContext) -> Result<PluginConfig, Vec<ConfigError>> {
    if let Some(parsed) = parse_known(d, ctx) {
        return parsed;
    }
    let name = d.name.text.as_str();
    let msg = match name {
        "proxy" => {
            "proxy: this directive was removed from CoreDNS in 1.7; use 'forward' instead".into()
        }
        _ if rank(name).is_some() => format!(
            "{name}: this CoreDNS directive is not supported by clusterdns yet; supported: {}",
            SUPPORTED.join(", ")
        ),
        _ => format!(
            "unknown directive '{name}'; expected one of: {}",
            SUPPORTED.join(", ")
        ),
    };
    Err(vec![ConfigError::new(&d.name.pos, msg)])
}

/// Directive names in execution order, from CoreDNS's `plugin.cfg`.
pub const ORDER: &[&str] = &[
    "root",
    "metadata",
    "geoip",
    "cancel",
    "tls",
    "quic",
    "timeouts",
    "multisocket",
    "reload",
    "nsid",
    "bufsize",
    "bind",
    // Not in CoreDNS's plugin.cfg: the external `ratelimit` plugin, which clusterdns applies
    // to a port's datagrams before any handler (server/limit.rs).
    "ratelimit",
    "debug",
    "trace",
    "ready",
    "health",
    "pprof",
    // CoreDNS 1.14: above prometheus, so that what it drops is never counted as answered.
    "shed",
    "prometheus",
    "errors",
    "log",
    "dnstap",
    "local",
    "dns64",
    "acl",
    "any",
    "chaos",
    "loadbalance",
    "tsig",
    "cache",
    "rewrite",
    "header",
    "dnssec",
    "autopath",
    "minimal",
    "template",
    "transfer",
    "hosts",
    "route53",
    "azure",
    "clouddns",
    "k8s_external",
    "kubernetes",
    "file",
    "auto",
    "secondary",
    "etcd",
    "loop",
    "forward",
    "grpc",
    "erratic",
    "whoami",
    "on",
    "sign",
    "view",
    "nomad",
];

/// The position of a directive in [`ORDER`], or `None` if CoreDNS has no such directive.
pub fn rank(name: &str) -> Option<usize> {
    ORDER.iter().position(|n| *n == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_matches_coredns_for_the_directives_stock_corefiles_use() {
        let stock = [
            "reload",
            "bind",
            "ready",
            "health",
            "prometheus",
            "errors",
            "log",
            "any",
            "loadbalance",
            "cache",
            "rewrite",
            "autopath",
            "template",
            "hosts",
            "k8s_external",
            "kubernetes",
            "loop",
            "forward",
        ];
        let ranks: Vec<usize> = stock.iter().map(|n| rank(n).unwrap()).collect();
        assert!(ranks.windows(2).all(|w| w[0] < w[1]), "{ranks:?}");
        assert_eq!(rank("nonsense"), None);
    }

    #[test]
    fn every_supported_directive_has_a_place_in_the_order() {
        for name in SUPPORTED {
            assert!(rank(name).is_some(), "{name} is not in ORDER");
        }
        assert!(SUPPORTED.windows(2).all(|w| w[0] < w[1]), "{SUPPORTED:?}");
    }
}
