//! Where logs go: `<data-dir>/logs/rollcall.log.YYYY-MM-DD`, rolled daily
//! and kept to `logs.max_files` files; and, under systemd (`JOURNAL_STREAM`
//! names our stderr), also to stderr in journald's format — one line per
//! event with its syslog priority as a `<N>` prefix, no timestamp (the
//! journal adds its own).

use crate::engine::Settings;
use std::fmt;
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::{FormatEvent, FormatFields, Writer};
use tracing_subscriber::fmt::{FmtContext, FormattedFields};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;

/// Keeps the file writer's thread alive; logs are flushed when dropped.
pub struct Guard {
    _file: Option<tracing_appender::non_blocking::WorkerGuard>,
}

pub fn init(settings: &Settings) -> Guard {
    let filter = || {
        tracing_subscriber::EnvFilter::try_from_env("RUST_LOG")
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(format!("rollcall={}", settings.config.log.level)))
    };
    let logs = settings.paths.logs();
    let appender = crate::engine::paths::create_private_dir(&logs).ok().and_then(|()| {
        tracing_appender::rolling::RollingFileAppender::builder()
            .rotation(tracing_appender::rolling::Rotation::DAILY)
            .filename_prefix("rollcall.log")
            .max_log_files(settings.config.logs.max_files.max(1))
            .build(&logs)
            .ok()
    });
    let (file_layer, guard) = match appender {
        Some(a) => {
            let (writer, guard) = tracing_appender::non_blocking(a);
            let layer = tracing_subscriber::fmt::layer()
                .with_writer(writer)
                .with_ansi(false)
                .with_filter_boxed(filter());
            (Some(layer), Some(guard))
        }
        None => (None, None),
    };
    let journal_layer = under_journald().then(|| {
        tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .event_format(Journald)
            .with_filter_boxed(filter())
    });
    let _ = tracing_subscriber::registry()
        .with(file_layer)
        .with(journal_layer)
        .try_init();
    Guard { _file: guard }
}

/// A layer with its own filter, boxed so both layers share one type shape.
trait WithFilterBoxed<S> {
    fn with_filter_boxed(
        self,
        filter: tracing_subscriber::EnvFilter,
    ) -> tracing_subscriber::filter::Filtered<Self, tracing_subscriber::EnvFilter, S>
    where
        Self: Sized;
}

impl<S, L> WithFilterBoxed<S> for L
where
    L: tracing_subscriber::Layer<S>,
    S: Subscriber,
{
    fn with_filter_boxed(
        self,
        filter: tracing_subscriber::EnvFilter,
    ) -> tracing_subscriber::filter::Filtered<Self, tracing_subscriber::EnvFilter, S> {
        tracing_subscriber::Layer::with_filter(self, filter)
    }
}

/// Whether stderr is the journal's stream: `JOURNAL_STREAM` is
/// `<device>:<inode>` of it (systemd.exec(5)).
pub fn under_journald() -> bool {
    use std::os::unix::fs::MetadataExt;
    let Ok(value) = std::env::var("JOURNAL_STREAM") else {
        return false;
    };
    let Some((dev, ino)) = value.split_once(':') else {
        return false;
    };
    let (Ok(dev), Ok(ino)) = (dev.parse::<u64>(), ino.parse::<u64>()) else {
        return false;
    };
    match std::fs::metadata("/proc/self/fd/2") {
        Ok(m) => m.dev() == dev && m.ino() == ino,
        Err(_) => false,
    }
}

/// The syslog priority journald reads from a `<N>` prefix (sd-daemon(3)).
fn priority(level: &Level) -> u8 {
    match *level {
        Level::ERROR => 3,
        Level::WARN => 4,
        Level::INFO => 6,
        Level::DEBUG | Level::TRACE => 7,
    }
}

/// `<N>target: message key=value …` — one line per event.
struct Journald;

impl<S, N> FormatEvent<S, N> for Journald
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(&self, ctx: &FmtContext<'_, S, N>, mut writer: Writer<'_>, event: &Event<'_>) -> fmt::Result {
        let meta = event.metadata();
        write!(writer, "<{}>{}: ", priority(meta.level()), meta.target())?;
        if let Some(scope) = ctx.event_scope() {
            for span in scope.from_root() {
                write!(writer, "{}", span.name())?;
                if let Some(fields) = span.extensions().get::<FormattedFields<N>>()
                    && !fields.is_empty()
                {
                    write!(writer, "{{{fields}}}")?;
                }
                write!(writer, ": ")?;
            }
        }
        let mut line = String::new();
        ctx.format_fields(Writer::new(&mut line), event)?;
        // One event, one journal entry: no raw line breaks.
        writeln!(writer, "{}", line.replace('\n', "\\n"))
    }
}
