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

/// Installs the logger; `RUST_LOG` (e.g. `clusterdns=debug`) overrides the default of `info`.
pub fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new("info,hickory_server=warn,hickory_proto=warn")
    });
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stdout);
    let _ = match format {
        LogFormat::Text => builder.event_format(CorednsFormat).try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}
