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

/// Installs the global subscriber; `RUST_LOG` overrides the default level (`info`).
pub fn init(format: LogFormat) {
    let mut filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,tower_http=info"));
    // At trace level these crates log whole frames and headers, tokens and account numbers
    // included; whatever RUST_LOG asks, they stop at debug.
    for capped in TRANSPORT_CRATES {
        if let Ok(directive) = format!("{capped}=debug").parse() {
            filter = filter.add_directive(directive);
        }
    }
    let (pretty, json) = match format {
        LogFormat::Pretty => (
            Some(tracing_subscriber::fmt::layer().with_writer(std::io::stderr)),
            None,
        ),
        LogFormat::Json => (
            None,
            Some(
                tracing_subscriber::fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_writer(std::io::stderr),
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
