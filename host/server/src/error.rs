//! AWS JSON 1.0 errors: HTTP 400 (or 403) with `{"__type": NAME, "message": ..}`.

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

#[derive(Debug, Clone, thiserror::Error)]
#[error("{kind}: {message}")]
pub struct ApiError {
    pub status: StatusCode,
    pub kind: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn new(kind: &'static str, message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            kind,
            message: message.into(),
        }
    }
    pub fn with_status(mut self, status: StatusCode) -> Self {
        self.status = status;
        self
    }
    pub fn validation(message: impl Into<String>) -> Self {
        Self::new("ValidationException", message)
    }
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new("InternalFailure", message).with_status(StatusCode::INTERNAL_SERVER_ERROR)
    }
}

impl From<weft_engine::persistence::PersistenceError> for ApiError {
    fn from(e: weft_engine::persistence::PersistenceError) -> Self {
        ApiError::internal(format!("store: {e}"))
    }
}

/// The runtime's errors keep their name and message; the runtime's own failures are HTTP 500,
/// a DAG run that exists already 409, a DAG, run or task that does not exist 404.
impl From<weft_engine::standard::RuntimeError> for ApiError {
    fn from(e: weft_engine::standard::RuntimeError) -> Self {
        let status = match e.kind {
            weft_engine::standard::INTERNAL => StatusCode::INTERNAL_SERVER_ERROR,
            weft_engine::standard::RUN_EXISTS => StatusCode::CONFLICT,
            weft_engine::standard::NOT_FOUND => StatusCode::NOT_FOUND,
            _ => StatusCode::BAD_REQUEST,
        };
        ApiError::new(e.kind, e.message).with_status(status)
    }
}

impl From<serde_json::Error> for ApiError {
    fn from(e: serde_json::Error) -> Self {
        ApiError::internal(format!("store record: {e}"))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({"__type": self.kind, "message": self.message}).to_string();
        let mut r = (self.status, body).into_response();
        let h = r.headers_mut();
        h.insert("content-type", HeaderValue::from_static(crate::AMZ_JSON));
        h.insert("x-amzn-errortype", HeaderValue::from_static(self.kind));
        r
    }
}
