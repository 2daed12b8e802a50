//! The binary's trace exporter: with `--otlp-endpoint URL` (or `OTEL_EXPORTER_OTLP_ENDPOINT`),
//! the spans the engine records (see `weft_engine::telemetry`) are batched on a thread of their
//! own and sent to an OpenTelemetry collector over OTLP/HTTP with protobuf bodies (Jaeger,
//! Grafana Tempo and the OpenTelemetry Collector accept it on port 4318). The queue is bounded:
//! when the collector is slow, unreachable or hangs, spans are dropped, never the work that
//! records them. [`Exporter::shutdown`] sends what is queued before the process exits, waiting
//! at most [`SHUTDOWN_WAIT`].

use anyhow::{anyhow, Result};
use opentelemetry_otlp::{Protocol, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::trace::{BatchConfigBuilder, BatchSpanProcessor, SpanProcessor};
use opentelemetry_sdk::Resource;
use std::sync::Arc;
use std::time::Duration;

/// How long one export request may take (connect, send, answer).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the process waits at exit for the queued spans to be sent.
pub const SHUTDOWN_WAIT: Duration = Duration::from_secs(5);
/// Spans waiting for export, at most (more are dropped).
pub const MAX_QUEUED_SPANS: usize = 8192;

/// The environment variable naming the collector when `--otlp-endpoint` is not given.
pub const ENDPOINT_ENV: &str = "OTEL_EXPORTER_OTLP_ENDPOINT";

/// The installed exporter; [`Exporter::shutdown`] flushes it.
pub struct Exporter {
    processor: Arc<BatchSpanProcessor>,
}

impl Exporter {
    /// Sends the queued spans and stops the export thread (waits at most [`SHUTDOWN_WAIT`]).
    pub fn shutdown(self) {
        if let Err(e) = self.processor.shutdown_with_timeout(SHUTDOWN_WAIT) {
            tracing::warn!("trace export at exit: {e}");
        }
    }
}

/// The OTLP/HTTP traces URL for a collector endpoint: a bare `http://HOST:PORT` (or one ending
/// in `/`) gets the standard `/v1/traces` path; any other path is used as given. Only http and
/// https URLs with a host are accepted.
pub fn traces_url(endpoint: &str) -> Result<String> {
    let bad = |why: &str| {
        anyhow!("--otlp-endpoint `{endpoint}`: {why} (expected e.g. http://127.0.0.1:4318)")
    };
    let uri: http::Uri = endpoint
        .trim()
        .parse()
        .map_err(|e: http::uri::InvalidUri| bad(&format!("not a URL: {e}")))?;
    match uri.scheme_str() {
        Some("http") | Some("https") => {}
        Some(other) => return Err(bad(&format!("scheme `{other}` is not http or https"))),
        None => return Err(bad("the URL has no scheme")),
    }
    let Some(auth) = uri.authority() else {
        return Err(bad("the URL has no host"));
    };
    if auth.host().is_empty() {
        return Err(bad("the URL has no host"));
    }
    if auth.as_str().contains('@') {
        return Err(bad(
            "credentials in the URL are not supported (use OTEL_EXPORTER_OTLP_HEADERS)",
        ));
    }
    let path = uri.path();
    let base = endpoint.trim().trim_end_matches('/');
    Ok(if path.is_empty() || path == "/" {
        format!("{base}/v1/traces")
    } else {
        endpoint.trim().to_string()
    })
}

/// Installs the exporter when an endpoint is configured (the flag wins over the environment).
/// A malformed endpoint is an error here, at start-up; an unreachable one only costs dropped
/// spans later.
pub fn init(flag: Option<&str>) -> Result<Option<Exporter>> {
    let env = std::env::var(ENDPOINT_ENV).ok();
    let Some(endpoint) = flag.or(env.as_deref()).filter(|s| !s.trim().is_empty()) else {
        return Ok(None);
    };
    let url = traces_url(endpoint)?;
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_http_client(UreqClient::new())
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(url.clone())
        .with_timeout(REQUEST_TIMEOUT)
        .build()
        .map_err(|e| anyhow!("--otlp-endpoint `{endpoint}`: {e}"))?;
    let config = BatchConfigBuilder::default()
        .with_max_queue_size(MAX_QUEUED_SPANS)
        .with_scheduled_delay(Duration::from_millis(500))
        .build();
    let mut processor = BatchSpanProcessor::builder(exporter)
        .with_batch_config(config)
        .build();
    processor.set_resource(
        &Resource::builder()
            .with_service_name("weft")
            .with_attribute(opentelemetry::KeyValue::new(
                "service.version",
                env!("CARGO_PKG_VERSION"),
            ))
            .build(),
    );
    let processor = Arc::new(processor);
    weft_engine::telemetry::install(processor.clone());
    tracing::info!(url = %url, "exporting traces over OTLP/HTTP");
    Ok(Some(Exporter { processor }))
}

/// OTLP/HTTP requests sent with ureq (already weft's HTTP client, with rustls for https):
/// blocking, which suits the batch processor's own thread.
#[derive(Debug)]
struct UreqClient {
    agent: ureq::Agent,
}

impl UreqClient {
    fn new() -> Self {
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(REQUEST_TIMEOUT))
            .http_status_as_error(false)
            .max_redirects(0)
            .build()
            .new_agent();
        UreqClient { agent }
    }
}

/// The largest collector answer read (an OTLP answer is a few bytes).
const MAX_ANSWER_BYTES: u64 = 64 * 1024;

#[async_trait::async_trait]
impl opentelemetry_http::HttpClient for UreqClient {
    async fn send_bytes(
        &self,
        request: http::Request<bytes::Bytes>,
    ) -> Result<http::Response<bytes::Bytes>, opentelemetry_http::HttpError> {
        let (parts, body) = request.into_parts();
        let request = http::Request::from_parts(parts, body.to_vec());
        let mut response = self.agent.run(request)?;
        let status = response.status();
        let body = response
            .body_mut()
            .with_config()
            .limit(MAX_ANSWER_BYTES)
            .read_to_vec()
            .unwrap_or_default();
        Ok(http::Response::builder()
            .status(status)
            .body(bytes::Bytes::from(body))?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_get_the_traces_path_and_bad_ones_are_refused() {
        assert_eq!(
            traces_url("http://127.0.0.1:4318").unwrap(),
            "http://127.0.0.1:4318/v1/traces"
        );
        assert_eq!(
            traces_url("http://tempo:4318/").unwrap(),
            "http://tempo:4318/v1/traces"
        );
        assert_eq!(
            traces_url("https://collector.example/otlp/v1/traces").unwrap(),
            "https://collector.example/otlp/v1/traces"
        );
        for bad in [
            "127.0.0.1:4318",
            "ftp://host:21",
            "http://",
            "not a url",
            "http://user:secret@host:4318",
        ] {
            let e = traces_url(bad).unwrap_err().to_string();
            assert!(e.contains(bad), "{e}");
        }
    }
}
