//! Logging and tracing: `RUST_LOG` filters; `GUILD_LOG_FORMAT=text|pretty|json` picks the
//! format; logs go to stderr so stdout stays for results. With
//! `OTEL_EXPORTER_OTLP_ENDPOINT` set, spans (requests, tasks with their `project_id`,
//! `task_id`, `agent` and `attempt`) are also exported over OTLP/HTTP.

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// Flushes exported spans when dropped: hold it until the process ends.
pub struct Telemetry {
    exporter: Option<SdkTracerProvider>,
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        if let Some(provider) = self.exporter.take()
            && let Err(error) = provider.shutdown()
        {
            eprintln!("warning: flushing the exported spans failed: {error}");
        }
    }
}

pub fn init(default_level: &str) -> Telemetry {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_level));
    let format = std::env::var("GUILD_LOG_FORMAT").unwrap_or_default();
    let logs = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let logs = match format.as_str() {
        "json" => logs.json().boxed(),
        "pretty" => logs.pretty().boxed(),
        _ => logs.boxed(),
    };
    let (exporter, export_error) = match otlp_provider() {
        Ok(provider) => (provider, None),
        Err(error) => (None, Some(error)),
    };
    let spans = exporter
        .as_ref()
        .map(|provider| tracing_opentelemetry::layer().with_tracer(provider.tracer("guild")));
    tracing_subscriber::registry()
        .with(filter)
        .with(logs)
        .with(spans)
        .init();
    if let Some(error) = export_error {
        tracing::warn!(%error, "OTEL_EXPORTER_OTLP_ENDPOINT is set but spans cannot be exported");
    }
    Telemetry { exporter }
}

/// The OTLP exporter, when `OTEL_EXPORTER_OTLP_ENDPOINT` is set. It reads the standard
/// `OTEL_EXPORTER_OTLP_*` variables itself and sends batches from a thread of its own.
fn otlp_provider() -> anyhow::Result<Option<SdkTracerProvider>> {
    if std::env::var_os("OTEL_EXPORTER_OTLP_ENDPOINT").is_none_or(|v| v.is_empty()) {
        return Ok(None);
    }
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .build()?;
    let service = std::env::var("OTEL_SERVICE_NAME").unwrap_or_else(|_| "guild".to_owned());
    Ok(Some(
        SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(Resource::builder().with_service_name(service).build())
            .build(),
    ))
}
