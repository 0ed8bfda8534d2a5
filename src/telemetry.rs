//! Logging: `tracing` with a human format or one JSON object per line, and, with the cargo
//! feature `otlp`, spans exported over OTLP/HTTP to `OTEL_EXPORTER_OTLP_ENDPOINT`. Log lines
//! carry public ids and masked texts only; secrets live in `secrecy` types and are never logged.

use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use crate::config::LogFormat;

/// Crates whose trace output would carry secrets.
const TRANSPORT_CRATES: [&str; 6] = [
    "tungstenite",
    "tokio_tungstenite",
    "hyper",
    "hyper_util",
    "h2",
    "reqwest",
];

/// The filter: `RUST_LOG`, else `info`. At trace level the transport crates log whole
/// frames and headers, tokens included, so whatever RUST_LOG asks they stop at debug; the
/// cap is added only when something asks for trace, so it never raises a crate's level.
pub fn filter() -> EnvFilter {
    let mut filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    if filter.max_level_hint() == Some(tracing_subscriber::filter::LevelFilter::TRACE) {
        for capped in TRANSPORT_CRATES {
            if let Ok(directive) = format!("{capped}=debug").parse() {
                filter = filter.add_directive(directive);
            }
        }
    }
    filter
}

/// Writes log lines to stderr with every account number masked ([`crate::mask::diagnostic`]):
/// whatever a log line quotes (a serde error, an error reply of tastytrade, a close reason,
/// a dependency's debug line), no full account number leaves through the log.
#[derive(Clone, Copy, Default)]
pub struct MaskedStderr;

impl std::io::Write for MaskedStderr {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        let line = String::from_utf8_lossy(bytes);
        std::io::stderr().write_all(crate::mask::diagnostic(&line).as_bytes())?;
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for MaskedStderr {
    type Writer = MaskedStderr;

    fn make_writer(&'a self) -> Self::Writer {
        MaskedStderr
    }
}

/// Installs the global subscriber; `RUST_LOG` overrides the default level (`info`).
pub fn init(format: LogFormat) {
    let filter = filter();
    let (pretty, json) = match format {
        LogFormat::Pretty => (
            Some(tracing_subscriber::fmt::layer().with_writer(MaskedStderr)),
            None,
        ),
        LogFormat::Json => (
            None,
            Some(
                tracing_subscriber::fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_writer(MaskedStderr),
            ),
        ),
    };
    let registry = tracing_subscriber::registry()
        .with(filter)
        .with(pretty)
        .with(json);
    #[cfg(feature = "otlp")]
    let registry = registry.with(otlp::layer());
    let _ = registry.try_init();
}

/// Sends the spans still waiting for export (with the `otlp` feature; else nothing to do).
pub fn flush() {
    #[cfg(feature = "otlp")]
    otlp::flush();
}

#[cfg(feature = "otlp")]
mod otlp {
    //! The OTLP/HTTP span exporter, by the OpenTelemetry environment conventions:
    //! `OTEL_EXPORTER_OTLP_ENDPOINT` is a base (`/v1/traces` is appended),
    //! `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` is used as it is, `OTEL_EXPORTER_OTLP_HEADERS`
    //! carries auth (Grafana Cloud's `Authorization=Basic ...`), `OTEL_SERVICE_NAME` names
    //! the service (default `tastytrade-gateway`). The exporter reads them itself: giving it
    //! an endpoint in code would make it skip the `/v1/traces` suffix.

    use opentelemetry::trace::TracerProvider;
    use opentelemetry_otlp::SpanExporter;
    use opentelemetry_sdk::Resource;
    use opentelemetry_sdk::trace::SdkTracerProvider;
    use tracing_subscriber::Layer;
    use tracing_subscriber::registry::LookupSpan;

    /// Whether the environment asks for trace export at all.
    fn configured() -> bool {
        [
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        ]
        .iter()
        .any(|name| std::env::var_os(name).is_some_and(|v| !v.is_empty()))
    }

    pub fn layer<S>() -> Option<Box<dyn Layer<S> + Send + Sync>>
    where
        S: tracing::Subscriber + for<'span> LookupSpan<'span> + Send + Sync,
    {
        if !configured() {
            return None;
        }
        let exporter = match SpanExporter::builder().with_http().build() {
            Ok(exporter) => exporter,
            Err(error) => {
                eprintln!("tastytrade-gateway: OTLP exporter not started: {error}");
                return None;
            }
        };
        let mut resource = Resource::builder();
        if std::env::var_os("OTEL_SERVICE_NAME").is_none() {
            resource = resource.with_service_name("tastytrade-gateway");
        }
        let provider = SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(resource.build())
            .build();
        let tracer = provider.tracer("tastytrade-gateway");
        let _ = PROVIDER.set(provider);
        Some(tracing_opentelemetry::layer().with_tracer(tracer).boxed())
    }

    /// Kept for the life of the process, so [`flush`] can send what is still batched.
    static PROVIDER: std::sync::OnceLock<SdkTracerProvider> = std::sync::OnceLock::new();

    /// Sends the spans still batched (at shutdown).
    pub fn flush() {
        if let Some(provider) = PROVIDER.get() {
            let _ = provider.force_flush();
        }
    }
}
