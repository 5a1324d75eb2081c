//! `cache [TTL] [ZONES…] { success; denial; prefetch; serve_stale; servfail; disable; keepttl }`
//! with CoreDNS's defaults: up to 9,984 answers of each kind, held at most 3,600 s (success) or
//! 1,800 s (denial), at least 5 s, and SERVFAIL for 5 s.

use std::time::Duration;

use hickory_proto::rr::Name;

use crate::corefile::{Directive, Token};

use crate::corefile::args::Args;
use crate::corefile::error::ConfigError;
use crate::corefile::keys::BlockContext;

pub const DEFAULT_CAPACITY: usize = 9984;
pub const DEFAULT_SUCCESS_TTL: u32 = 3600;
pub const DEFAULT_DENIAL_TTL: u32 = 1800;
pub const DEFAULT_MIN_TTL: u32 = 5;
pub const DEFAULT_SERVFAIL: Duration = Duration::from_secs(5);
pub const MAX_SERVFAIL: Duration = Duration::from_secs(300);

/// Settings for one kind of answer (success or denial).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Kind {
    pub capacity: usize,
    pub max_ttl: u32,
    pub min_ttl: u32,
    /// Zones where this kind is not cached (`disable`).
    pub disabled: Vec<Name>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Prefetch {
    pub amount: u32,
    pub duration: Duration,
    pub percentage: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StaleMode {
    /// Answer stale at once, then refresh.
    Immediate,
    /// Ask upstream first; answer stale only if that fails.
    Verify,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServeStale {
    pub duration: Duration,
    pub mode: StaleMode,
    /// `verify`: how long to wait for the source before answering stale (0: its own timeout).
    pub verify_timeout: Duration,
    /// The TTL of a stale answer (0 by default, as before CoreDNS 1.14; RFC 8767 suggests 30).
    pub response_ttl: u32,
    /// After a failed refresh, how long the stale entry is answered without asking again.
    pub failure_recheck: Duration,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CacheConfig {
    pub zones: Vec<Name>,
    pub success: Kind,
    pub denial: Kind,
    pub prefetch: Option<Prefetch>,
    pub serve_stale: Option<ServeStale>,
    /// `serve_stale_policy prefer_positive`: a positive answer still within `serve_stale` is
    /// kept, and answered, over a later negative or unusable one.
    pub prefer_positive: bool,
    pub servfail: Duration,
    pub keepttl: bool,
}

const PROPERTIES: &str =
    "success, denial, prefetch, serve_stale, serve_stale_policy, servfail, disable, keepttl";

pub fn parse(d: &Directive, ctx: &BlockContext) -> Result<CacheConfig, Vec<ConfigError>> {
    let args = Args::new("cache", d);
    let mut rest = args.rest;
    let mut max = (DEFAULT_SUCCESS_TTL, DEFAULT_DENIAL_TTL);
    if let Some((first, tail)) = rest.split_first()
        && first.text.chars().all(|c| c.is_ascii_digit())
    {
        let ttl = ttl(&args, first).map_err(|e| vec![e])?;
        max = (ttl, ttl);
        rest = tail;
    }
    let zones = crate::corefile::keys::zones_or_block(rest, ctx)?;
    let kind = |max_ttl| Kind {
        capacity: DEFAULT_CAPACITY,
        max_ttl,
        min_ttl: DEFAULT_MIN_TTL,
        disabled: Vec::new(),
    };
    let mut cfg = CacheConfig {
        zones,
        success: kind(max.0),
        denial: kind(max.1),
        prefetch: None,
        serve_stale: None,
        prefer_positive: false,
        servfail: DEFAULT_SERVFAIL,
        keepttl: false,
    };
    let mut errors = Vec::new();
    for p in d.block.iter().flatten() {
        if let Err(e) = property(&mut cfg, p) {
            errors.push(e);
        }
    }
    if errors.is_empty() {
        Ok(cfg)
    } else {
        Err(errors)
    }
}

/// One property line of the block, each read by its own function.
fn property(cfg: &mut CacheConfig, p: &Directive) -> Result<(), ConfigError> {
    let a = Args::new(format!("cache: {}", p.name.text), p);
    match p.name.text.as_str() {
        "success" => limits(&mut cfg.success, &a)?,
        "denial" => limits(&mut cfg.denial, &a)?,
        "prefetch" => cfg.prefetch = Some(prefetch(&a)?),
        "serve_stale" => cfg.serve_stale = Some(serve_stale(&a)?),
        "serve_stale_policy" => {
            let t = a.one("a policy: prefer_positive")?;
            if t.text != "prefer_positive" {
                return Err(a.err(
                    t,
                    format!("unknown policy '{}'; expected prefer_positive", t.text),
                ));
            }
            cfg.prefer_positive = true;
        }
        "servfail" => {
            let t = a.one("a duration such as 5s (0 turns it off)")?;
            let d = a.duration(t)?;
            if d > MAX_SERVFAIL {
                return Err(a.err(t, "may not be more than 5m"));
            }
            cfg.servfail = d;
        }
        "disable" => disable(cfg, &a)?,
        "keepttl" => {
            a.none()?;
            cfg.keepttl = true;
        }
        other => {
            return Err(ConfigError::new(
                &p.name.pos,
                format!("cache: unknown property '{other}'; expected one of: {PROPERTIES}"),
            ));
        }
    }
    if let Some(b) = p.block.as_ref().and_then(|b| b.first()) {
        return Err(ConfigError::new(
            &b.name.pos,
            format!("cache: {}: takes no block", p.name.text),
        ));
    }
    Ok(())
}

/// `success|denial CAPACITY [TTL] [MINTTL]`.
fn limits(k: &mut Kind, a: &Args) -> Result<(), ConfigError> {
    let toks = a.some("CAPACITY [TTL] [MINTTL]")?;
    let cap = &toks[0];
    k.capacity = cap
        .text
        .parse()
        .ok()
        .filter(|c| *c > 0)
        .ok_or_else(|| a.err(cap, format!("'{}' is not a capacity above 0", cap.text)))?;
    if let Some(t) = toks.get(1) {
        k.max_ttl = ttl(a, t)?;
    }
    if let Some(t) = toks.get(2) {
        k.min_ttl = t
            .text
            .parse()
            .map_err(|_| a.err(t, format!("'{}' is not a TTL in seconds", t.text)))?;
    }
    if let Some(extra) = toks.get(3) {
        return Err(a.err(
            extra,
            format!(
                "unexpected argument '{}'; expected CAPACITY [TTL] [MINTTL]",
                extra.text
            ),
        ));
    }
    if k.min_ttl > k.max_ttl {
        return Err(a.err_here(format!("MINTTL {} is above TTL {}", k.min_ttl, k.max_ttl)));
    }
    Ok(())
}

/// `prefetch AMOUNT [DURATION [PERCENTAGE%]]`.
fn prefetch(a: &Args) -> Result<Prefetch, ConfigError> {
    let toks = a.some("AMOUNT [DURATION [PERCENTAGE%]]")?;
    let amount = toks[0]
        .text
        .parse()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| {
            a.err(
                &toks[0],
                format!("'{}' is not an amount above 0", toks[0].text),
            )
        })?;
    let mut prefetch = Prefetch {
        amount,
        duration: Duration::from_secs(60),
        percentage: 10,
    };
    if let Some(t) = toks.get(1) {
        prefetch.duration = a.duration(t)?;
    }
    if let Some(t) = toks.get(2) {
        let pct = t
            .text
            .strip_suffix('%')
            .ok_or_else(|| a.err(t, format!("'{}' needs a percent sign, e.g. 10%", t.text)))?;
        prefetch.percentage = pct
            .parse()
            .ok()
            .filter(|p| (10..=90).contains(p))
            .ok_or_else(|| {
                a.err(
                    t,
                    format!("'{}' is not a percentage from 10% to 90%", t.text),
                )
            })?;
    }
    if let Some(extra) = toks.get(3) {
        return Err(a.err(extra, format!("unexpected argument '{}'", extra.text)));
    }
    Ok(prefetch)
}

/// `serve_stale [DURATION] [immediate [RESPONSE_TTL [FAILURE_RECHECK]] | verify [VERIFY_TIMEOUT
/// [RESPONSE_TTL [FAILURE_RECHECK]]]]` (CoreDNS 1.14's longer form; the first two words as
/// before).
fn serve_stale(a: &Args) -> Result<ServeStale, ConfigError> {
    let mut stale = ServeStale {
        duration: Duration::from_secs(3600),
        mode: StaleMode::Immediate,
        verify_timeout: Duration::ZERO,
        response_ttl: 0,
        failure_recheck: Duration::ZERO,
    };
    let mut rest = a.rest;
    if let Some((t, more)) = rest.split_first() {
        stale.duration = a.duration(t)?;
        rest = more;
    }
    if let Some((t, more)) = rest.split_first() {
        stale.mode = match t.text.as_str() {
            "immediate" => StaleMode::Immediate,
            "verify" | "verified" => StaleMode::Verify,
            other => {
                return Err(a.err(
                    t,
                    format!("unknown refresh mode '{other}'; expected immediate or verify"),
                ));
            }
        };
        rest = more;
    }
    // `verify` takes its timeout first (0: wait for the upstream's own).
    if stale.mode == StaleMode::Verify
        && let Some((t, more)) = rest.split_first()
    {
        stale.verify_timeout = a.duration(t).or_else(|e| {
            if t.text == "0" {
                Ok(Duration::ZERO)
            } else {
                Err(e)
            }
        })?;
        rest = more;
    }
    if let Some((t, more)) = rest.split_first() {
        let d = if t.text == "0" {
            Duration::ZERO
        } else {
            a.duration(t)?
        };
        if d.subsec_nanos() != 0 {
            return Err(a.err(t, "the response TTL must be a whole number of seconds"));
        }
        stale.response_ttl = u32::try_from(d.as_secs()).unwrap_or(u32::MAX);
        rest = more;
    }
    if let Some((t, more)) = rest.split_first() {
        stale.failure_recheck = if t.text == "0" {
            Duration::ZERO
        } else {
            a.duration(t)?
        };
        rest = more;
    }
    if let Some(extra) = rest.first() {
        return Err(a.err(extra, format!("unexpected argument '{}'", extra.text)));
    }
    Ok(stale)
}

/// `disable success|denial [ZONES…]` (the block's zones where none are named).
fn disable(cfg: &mut CacheConfig, a: &Args) -> Result<(), ConfigError> {
    let toks = a.some("success or denial, then optionally zones")?;
    let (what, zones) = toks.split_first().expect("some() is not empty");
    let zones = if zones.is_empty() {
        cfg.zones.clone()
    } else {
        let mut out = Vec::new();
        for z in zones {
            out.extend(crate::corefile::keys::parse_zone(&z.text).map_err(|m| a.err(z, m))?);
        }
        out
    };
    match what.text.as_str() {
        "success" => cfg.success.disabled.extend(zones),
        "denial" => cfg.denial.disabled.extend(zones),
        other => {
            return Err(a.err(
                what,
                format!("unknown kind '{other}'; expected success or denial"),
            ));
        }
    }
    Ok(())
}

fn ttl(a: &Args, t: &Token) -> Result<u32, ConfigError> {
    t.text
        .parse()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| a.err(t, format!("'{}' is not a TTL in seconds above 0", t.text)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::testing::*;
    use crate::plugin::registry::PluginConfig;

    fn cache(text: &str) -> CacheConfig {
        plugin(text, |p| match p {
            PluginConfig::Cache(c) => Some((**c).clone()),
            _ => None,
        })
    }

    #[test]
    fn serve_stale_takes_coredns_1_14s_longer_form() {
        let stale = |line: &str| {
            cache(&format!(".:53 {{\n cache {{\n  {line}\n }}\n}}"))
                .serve_stale
                .unwrap()
        };
        let s = stale("serve_stale 1h immediate 30s 30s");
        assert_eq!(
            (s.mode, s.response_ttl, s.failure_recheck),
            (StaleMode::Immediate, 30, Duration::from_secs(30))
        );
        let s = stale("serve_stale 1h verify 100ms 30s");
        assert_eq!(
            (s.mode, s.verify_timeout, s.response_ttl),
            (StaleMode::Verify, Duration::from_millis(100), 30)
        );
        let s = stale("serve_stale 1h verify 0 30s");
        assert_eq!((s.verify_timeout, s.response_ttl), (Duration::ZERO, 30));
        let c =
            cache(".:53 {\n cache {\n  serve_stale\n  serve_stale_policy prefer_positive\n }\n}");
        assert!(c.prefer_positive);
    }

    #[test]
    fn cache_defaults_and_properties() {
        let c = cache(".:53 {\n cache\n}");
        assert_eq!(zones(&c.zones), ["."]);
        assert_eq!(
            (c.success.capacity, c.success.max_ttl, c.success.min_ttl),
            (9984, 3600, 5)
        );
        assert_eq!(
            (c.denial.capacity, c.denial.max_ttl, c.denial.min_ttl),
            (9984, 1800, 5)
        );
        assert_eq!(c.servfail, Duration::from_secs(5));
        assert!(c.prefetch.is_none() && c.serve_stale.is_none() && !c.keepttl);

        // kubeadm's
        let c = cache(
            ".:53 {\n cache 30 {\n  disable success cluster.local\n  disable denial cluster.local\n }\n}",
        );
        assert_eq!((c.success.max_ttl, c.denial.max_ttl), (30, 30));
        assert_eq!(zones(&c.success.disabled), ["cluster.local."]);
        assert_eq!(zones(&c.denial.disabled), ["cluster.local."]);

        // NodeLocal DNSCache's, and the rest.
        let c = cache(
            ".:53 {\n cache 300 example.org {\n  success 9984 30\n  denial 9984 5 1\n  prefetch 10 1m 20%\n  serve_stale 2h verify\n  servfail 0\n  keepttl\n }\n}",
        );
        assert_eq!(zones(&c.zones), ["example.org."]);
        assert_eq!(
            (c.success.capacity, c.success.max_ttl, c.success.min_ttl),
            (9984, 30, 5)
        );
        assert_eq!((c.denial.max_ttl, c.denial.min_ttl), (5, 1));
        assert_eq!(
            c.prefetch,
            Some(Prefetch {
                amount: 10,
                duration: Duration::from_secs(60),
                percentage: 20
            })
        );
        assert_eq!(
            c.serve_stale,
            Some(ServeStale {
                duration: Duration::from_secs(7200),
                mode: StaleMode::Verify,
                verify_timeout: Duration::ZERO,
                response_ttl: 0,
                failure_recheck: Duration::ZERO,
            })
        );
        assert_eq!(c.servfail, Duration::ZERO);
        assert!(c.keepttl);
    }

    #[test]
    fn errors_name_the_position_and_what_is_accepted() {
        assert_errors(&[
            (
                ".:53 {\n cache 0\n}",
                "2:8: cache: '0' is not a TTL in seconds above 0",
            ),
            (
                ".:53 {\n cache {\n  success lots\n }\n}",
                "3:11: cache: success: 'lots' is not a capacity above 0",
            ),
            (
                ".:53 {\n cache {\n  prefetch 2 1m 5%\n }\n}",
                "3:17: cache: prefetch: '5%' is not a percentage from 10% to 90%",
            ),
            (
                ".:53 {\n cache {\n  prefetch 2 1m 20\n }\n}",
                "3:17: cache: prefetch: '20' needs a percent sign",
            ),
            (
                ".:53 {\n cache {\n  serve_stale 1h later\n }\n}",
                "3:18: cache: serve_stale: unknown refresh mode 'later'; expected immediate or verify",
            ),
            (
                ".:53 {\n cache {\n  serve_stale 1h immediate 1500ms\n }\n}",
                "3:28: cache: serve_stale: the response TTL must be a whole number of seconds",
            ),
            (
                ".:53 {\n cache {\n  serve_stale 1h verify 100ms 30s 30s 1\n }\n}",
                "3:39: cache: serve_stale: unexpected argument '1'",
            ),
            (
                ".:53 {\n cache {\n  serve_stale_policy prefer_negative\n }\n}",
                "3:22: cache: serve_stale_policy: unknown policy 'prefer_negative'; expected prefer_positive",
            ),
            (
                ".:53 {\n cache {\n  servfail 10m\n }\n}",
                "3:12: cache: servfail: may not be more than 5m",
            ),
            (
                ".:53 {\n cache {\n  disable everything\n }\n}",
                "3:11: cache: disable: unknown kind 'everything'; expected success or denial",
            ),
            (
                ".:53 {\n cache {\n  bogus\n }\n}",
                "3:3: cache: unknown property 'bogus'; expected one of: success, denial",
            ),
            (
                ".:53 {\n cache\n cache\n}",
                "3:2: cache: only one 'cache' directive is allowed per server block",
            ),
        ]);
    }
}
