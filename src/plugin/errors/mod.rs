//! `errors`: logs every query the rest of the chain failed on, as CoreDNS does:
//! `[ERROR] plugin/errors: 2 name. A: what went wrong` (2 is SERVFAIL's code). Errors that match
//! a `consolidate` pattern are counted instead, and reported once per period:
//! `[ERROR] plugin/errors: 12 errors like '^read udp .* i/o timeout$' occurred in last 5m0s`.
//! With `show_first`, the first error of a period is logged at once and the report is left out
//! where it was the only one.

pub mod config;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use regex::Regex;

use crate::corefile::args::format_duration;
use crate::plugin::PluginError;
use crate::plugin::errors::config::{Consolidate, ErrorsConfig, Level};
use crate::plugin::setup::Setup;
use crate::plugin::{Handler, HandlerFuture, Next, Request};

pub struct Errors {
    patterns: Vec<Arc<Pattern>>,
}

struct Pattern {
    cfg: Consolidate,
    re: Regex,
    count: AtomicU64,
    /// A report is scheduled for the current period.
    armed: AtomicBool,
}

impl Errors {
    pub fn new(cfg: &ErrorsConfig) -> Self {
        let patterns = cfg
            .consolidate
            .iter()
            .filter_map(|c| {
                // Checked when the Corefile was parsed.
                let re = Regex::new(&c.pattern).ok()?;
                Some(Arc::new(Pattern {
                    cfg: c.clone(),
                    re,
                    count: AtomicU64::new(0),
                    armed: AtomicBool::new(false),
                }))
            })
            .collect();
        Self { patterns }
    }

    /// Logs `msg` now, or counts it towards its pattern's next report.
    pub fn report(&self, msg: String) {
        let Some(p) = self.patterns.iter().find(|p| p.re.is_match(&msg)) else {
            tracing::error!("plugin/errors: {msg}");
            return;
        };
        p.count.fetch_add(1, Ordering::Relaxed);
        if p.armed.swap(true, Ordering::AcqRel) {
            return;
        }
        // The first of a period: said at once with `show_first`.
        if p.cfg.show_first {
            log(p.cfg.level, &format!("plugin/errors: {msg}"));
        }
        let p = p.clone();
        tokio::spawn(async move {
            tokio::time::sleep(p.cfg.every).await;
            p.armed.store(false, Ordering::Release);
            let n = p.count.swap(0, Ordering::AcqRel);
            // With `show_first`, a period of one error has said everything already.
            if p.cfg.show_first && n <= 1 {
                return;
            }
            let line = format!(
                "plugin/errors: {n} errors like '{}' occurred in last {}",
                p.cfg.pattern,
                format_duration(p.cfg.every)
            );
            log(p.cfg.level, &line);
        });
    }
}

/// A line at a consolidation's level.
fn log(level: Level, line: &str) {
    match level {
        Level::Error => tracing::error!("{line}"),
        Level::Warning => tracing::warn!("{line}"),
        Level::Info => tracing::info!("{line}"),
        Level::Debug => tracing::debug!("{line}"),
    }
}

impl Handler for Errors {
    fn name(&self) -> &'static str {
        "errors"
    }

    /// It only reports errors, and the fast path answers none.
    fn transparent(&self) -> bool {
        true
    }

    fn serve<'a>(&'a self, req: &'a Request<'a>, next: Next<'a>) -> HandlerFuture<'a> {
        Box::pin(async move {
            let result = next.serve(req).await;
            if let Err(e) = &result {
                self.report(format!(
                    "2 {} {}: {e}",
                    req.query.original().name(),
                    req.query.query_type()
                ));
            }
            result
        })
    }
}

/// Puts `errors` into the block being set up.
pub fn setup(cfg: &config::ErrorsConfig, s: &mut Setup<'_>) -> Result<(), PluginError> {
    s.handler(Errors::new(cfg));
    Ok(())
}
