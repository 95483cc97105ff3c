//! Errors: [`CoordinatorError`] for starting and running the service, and
//! [`ApiErr`], the JSON error every non-2xx response carries.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use sealroom_protocol::api::ApiError;

/// Why the coordinator could not start or keep running.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CoordinatorError {
    /// The database could not be opened, migrated or written.
    #[error("database {path}: {detail}")]
    Database {
        /// The database file.
        path: String,
        /// The cause.
        detail: String,
    },
    /// A file or directory under the data directory failed.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The chain could not be opened or reached.
    #[error("chain: {0}")]
    Chain(String),
    /// A configuration value is unusable (the message names it).
    #[error("{0}")]
    Config(String),
    /// The listener failed.
    #[error("listening on {addr}: {source}")]
    Listen {
        /// The address.
        addr: String,
        /// The cause.
        source: std::io::Error,
    },
}

/// A request failure: HTTP status, stable code and a message naming the
/// field or check. Serialised as [`ApiError`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiErr {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable code.
    pub code: &'static str,
    /// Message for people.
    pub message: String,
}

impl ApiErr {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }

    /// 400 `bad-request`.
    pub fn bad_request(m: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad-request", m)
    }

    /// 401 `unauthorized`: no, bad, stale or replayed signature.
    pub fn unauthorized(m: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", m)
    }

    /// 403 `forbidden`: a valid signature by someone not allowed here.
    pub fn forbidden(m: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", m)
    }

    /// 404 `not-found`.
    pub fn not_found(m: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not-found", m)
    }

    /// 409 `conflict`: the session's state or a check refuses the request.
    pub fn conflict(m: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "conflict", m)
    }

    /// 413 `too-large`.
    pub fn too_large(m: impl Into<String>) -> Self {
        Self::new(StatusCode::PAYLOAD_TOO_LARGE, "too-large", m)
    }

    /// 408 `timeout`: the client stopped sending the request body.
    pub fn timeout(m: impl Into<String>) -> Self {
        Self::new(StatusCode::REQUEST_TIMEOUT, "timeout", m)
    }

    /// 500 `internal`: the message is generic; details go to the log.
    pub fn internal(m: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", m)
    }
}

impl From<rusqlite::Error> for ApiErr {
    fn from(e: rusqlite::Error) -> Self {
        tracing::error!(error = %e, "database error");
        Self::internal("database error (see the coordinator's log)")
    }
}

impl From<std::io::Error> for ApiErr {
    fn from(e: std::io::Error) -> Self {
        tracing::error!(error = %e, "i/o error");
        Self::internal("storage error (see the coordinator's log)")
    }
}

impl IntoResponse for ApiErr {
    fn into_response(self) -> Response {
        let body = ApiError {
            code: self.code.to_string(),
            message: self.message,
        };
        (self.status, axum::Json(body)).into_response()
    }
}
