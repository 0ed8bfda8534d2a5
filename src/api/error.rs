//! The API's errors as one type, mapped to HTTP responses in one place, always as
//! `{"error":{"code","message"}}`. Messages never echo what the caller sent (it could be an
//! account number).

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error(
        "a valid API key or token is required: `Authorization: Bearer <key>`, `access_token=<key>` or the token cookie"
    )]
    Unauthorized,
    /// A token was presented and refused; the code says why (`token_expired`, ...).
    #[error("{0}")]
    Token(#[from] super::jwt::TokenError),
    #[error("this browser origin may not open WebSockets here (see --cors-origins)")]
    OriginNotAllowed,
    #[error("no account with that id; GET /v1/accounts lists them")]
    UnknownAccount,
    #[error("{0}")]
    BadRequest(String),
    #[error(
        "this client holds {0} streams already, the most allowed (--max-streams-per-client); close one or retry later"
    )]
    TooManyStreams(usize),
    #[error("this gateway serves only loopback host names while its API is open (no API keys)")]
    HostNotAllowed,
}

impl ApiError {
    fn status(&self) -> StatusCode {
        match self {
            Self::Unauthorized | Self::Token(_) => StatusCode::UNAUTHORIZED,
            Self::OriginNotAllowed => StatusCode::FORBIDDEN,
            Self::UnknownAccount => StatusCode::NOT_FOUND,
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::TooManyStreams(_) => StatusCode::TOO_MANY_REQUESTS,
            Self::HostNotAllowed => StatusCode::MISDIRECTED_REQUEST,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            Self::Unauthorized => "unauthorized",
            Self::Token(refusal) => refusal.code(),
            Self::OriginNotAllowed => "origin_not_allowed",
            Self::UnknownAccount => "unknown_account",
            Self::BadRequest(_) => "bad_request",
            Self::TooManyStreams(_) => "too_many_streams",
            Self::HostNotAllowed => "host_not_allowed",
        }
    }
}

/// The error body.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable, machine-readable (`unknown_account`, `bad_request`, ...).
    pub code: String,
    /// For people.
    pub message: String,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code().into(),
                // Whatever a message repeats of the request passes the masker.
                message: crate::mask::diagnostic(&self.to_string()),
            },
        };
        let mut response = (self.status(), Json(body)).into_response();
        if matches!(self, Self::TooManyStreams(_)) {
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from_static("5"),
            );
        }
        let challenge = match self {
            Self::Unauthorized => Some("Bearer"),
            // RFC 6750: a token was presented and is no good.
            Self::Token(_) => Some("Bearer error=\"invalid_token\""),
            _ => None,
        };
        if let Some(challenge) = challenge {
            response.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static(challenge),
            );
        }
        response
    }
}
