//! Logging as CoreDNS writes it (`[LEVEL] message` on standard output, or JSON lines), the
//! metrics, and the HTTP endpoints that serve health, readiness and metrics.

pub mod http;
pub mod metrics;

use std::fmt;

use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::FmtContext;
use tracing_subscriber::fmt::format::{FormatEvent, FormatFields, Writer};
use tracing_subscriber::registry::LookupSpan;

/// CoreDNS's line format: `[INFO] plugin/reload: …`.
pub struct CorednsFormat;

impl<S, N> FormatEvent<S, N> for CorednsFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let level = match *event.metadata().level() {
            Level::ERROR => "ERROR",
            Level::WARN => "WARNING",
            Level::INFO => "INFO",
            Level::DEBUG => "DEBUG",
            Level::TRACE => "TRACE",
        };
        write!(writer, "[{level}] ")?;
        ctx.field_format().format_fields(writer.by_ref(), event)?;
        writeln!(writer)
    }
}

/// How log lines are written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LogFormat {
    /// `[INFO] message`, as CoreDNS writes.
    #[default]
    Text,
    /// One JSON object per line (timestamp, level, message), for log pipelines.
    Json,
}

/// The log filter when `RUST_LOG` does not say, and when `debug` is in the Corefile.
const QUIET: &str = "info,hickory_server=warn,hickory_proto=warn";
const DEBUG: &str = "info,clusterdns=debug,hickory_server=warn,hickory_proto=warn";

/// Changes the filter of the installed logger (`debug`), unless `RUST_LOG` set it.
static FILTER: std::sync::OnceLock<
    tracing_subscriber::reload::Handle<tracing_subscriber::EnvFilter, tracing_subscriber::Registry>,
> = std::sync::OnceLock::new();
static DEBUGGING: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Installs the logger; `RUST_LOG` (e.g. `clusterdns=debug`) overrides the default of `info`.
pub fn init_logging(format: LogFormat) {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let from_env = tracing_subscriber::EnvFilter::try_from_default_env().ok();
    let fixed = from_env.is_some();
    let filter = from_env.unwrap_or_else(|| tracing_subscriber::EnvFilter::new(QUIET));
    let (filter, handle) = tracing_subscriber::reload::Layer::new(filter);
    let registry = tracing_subscriber::registry().with(filter);
    let layer = tracing_subscriber::fmt::layer().with_writer(std::io::stdout);
    let installed = match format {
        LogFormat::Text => registry.with(layer.event_format(CorednsFormat)).try_init(),
        LogFormat::Json => registry.with(layer.json().flatten_event(true)).try_init(),
    };
    if installed.is_ok() && !fixed {
        let _ = FILTER.set(handle);
    }
}

/// Turns the plugins' debug log lines on or off (`debug`, applied at every load of the
/// Corefile); nothing when `RUST_LOG` chose the filter or no logger was installed here.
pub fn set_debug(on: bool) {
    let Some(handle) = FILTER.get() else {
        return;
    };
    if DEBUGGING.swap(on, std::sync::atomic::Ordering::Relaxed) == on {
        return;
    }
    let _ = handle.reload(tracing_subscriber::EnvFilter::new(if on {
        DEBUG
    } else {
        QUIET
    }));
    tracing::info!("debug log lines {}", if on { "on" } else { "off" });
}
