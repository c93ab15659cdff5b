//! Errors of the web face: a status and a message, answered as `{"error": "..."}` on
//! the API (with `position` for a query that does not parse) and as a page elsewhere.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;

use crate::error::Error;
use crate::search::SearchError;

/// An error answered to a request.
#[derive(Clone, Debug, PartialEq)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// What went wrong, for people.
    pub message: String,
    /// Byte offset of a query's syntax error.
    pub position: Option<usize>,
}

impl ApiError {
    /// An error with `status`.
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
            position: None,
        }
    }

    /// 400: the request is wrong.
    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }

    /// 404: nothing is there.
    pub fn not_found(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::NOT_FOUND, message)
    }

    /// 500: the server failed.
    pub fn internal(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, message)
    }

    /// 503: the server cannot answer this now (no model, deadline passed).
    pub fn unavailable(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, message)
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        let status = match &e {
            Error::UnknownNeuron { .. } | Error::Search(SearchError::UnknownNeuron(_)) => {
                StatusCode::NOT_FOUND
            }
            Error::InvalidRequest(_)
            | Error::InvalidOption { .. }
            | Error::Tokenizer(_)
            | Error::Search(SearchError::Query(_))
            | Error::Search(SearchError::InvalidRequest(_)) => StatusCode::BAD_REQUEST,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        let position = match &e {
            Error::Search(SearchError::Query(p)) => Some(p.position),
            _ => None,
        };
        let message = match &e {
            Error::Search(SearchError::Query(p)) => p.message.clone(),
            _ => e.to_string(),
        };
        ApiError {
            status,
            message,
            position,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = serde_json::json!({ "error": self.message });
        if let Some(p) = self.position {
            body["position"] = p.into();
        }
        (self.status, Json(body)).into_response()
    }
}
