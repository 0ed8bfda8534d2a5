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

#[cfg(feature = "otlp")]
mod otlp {
    //! The OTLP span exporter, when `OTEL_EXPORTER_OTLP_ENDPOINT` is set.

    use opentelemetry::trace::TracerProvider;
    use opentelemetry_otlp::{SpanExporter, WithExportConfig};
    use opentelemetry_sdk::Resource;
    use opentelemetry_sdk::trace::SdkTracerProvider;
    use tracing_subscriber::Layer;
    use tracing_subscriber::registry::LookupSpan;

    pub fn layer<S>() -> Option<Box<dyn Layer<S> + Send + Sync>>
    where
        S: tracing::Subscriber + for<'span> LookupSpan<'span> + Send + Sync,
    {
        let endpoint = std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT").ok()?;
        let exporter = match SpanExporter::builder()
            .with_http()
            .with_endpoint(endpoint)
            .build()
        {
            Ok(exporter) => exporter,
            Err(error) => {
                eprintln!("tastytrade-gateway: OTLP exporter not started: {error}");
                return None;
            }
        };
        let provider = SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(
                Resource::builder()
                    .with_service_name("tastytrade-gateway")
                    .build(),
            )
            .build();
        let tracer = provider.tracer("tastytrade-gateway");
        Some(tracing_opentelemetry::layer().with_tracer(tracer).boxed())
    }
}
