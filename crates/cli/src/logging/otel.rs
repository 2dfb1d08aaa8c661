//! OpenTelemetry: the agent's, router's and gateway's spans (GenAI attributes on agent
//! spans, the router's attempts beneath them) exported over OTLP/HTTP, so one trace shows
//! the model's decision, the tool call, the instance that served it and any failover.

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::{Resource, trace::SdkTracerProvider};
use tracing_subscriber::{EnvFilter, Layer};

/// What the exporter sees: toolmesh's spans down to the router's attempts.
const SPANS: &str =
    "off,toolmesh=info,toolmesh_agent=info,toolmesh_server=info,toolmesh_registry=debug";

/// The exporter; shutting it down flushes the spans not yet sent.
pub(crate) struct Exporting(SdkTracerProvider);

impl Drop for Exporting {
    fn drop(&mut self) {
        if let Err(e) = self.0.shutdown() {
            eprintln!("toolmesh: could not flush traces to the OTLP collector: {e}");
        }
    }
}

/// The export layer when `OTEL_EXPORTER_OTLP_ENDPOINT` is set (the exporter reads it and
/// the other `OTEL_EXPORTER_OTLP_*` variables itself).
pub(crate) fn layer<S>() -> (Option<impl Layer<S>>, Option<Exporting>)
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    let endpoint = std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT")
        .or_else(|_| std::env::var("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"));
    if endpoint.is_err() {
        return (None, None);
    }
    let exporter = match opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .build()
    {
        Ok(exporter) => exporter,
        Err(e) => {
            eprintln!("toolmesh: traces are not exported: {e}");
            return (None, None);
        }
    };
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(Resource::builder().with_service_name("toolmesh").build())
        .build();
    let tracer = provider.tracer("toolmesh");
    let layer = tracing_opentelemetry::layer()
        .with_tracer(tracer)
        .with_filter(EnvFilter::new(SPANS));
    (Some(layer), Some(Exporting(provider)))
}
