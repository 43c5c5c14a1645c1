//! Errors as `application/problem+json` (RFC 9457) with a message per field.
//!
//! Semantic errors map to 400/404/409/422; failures of the store or the backend are logged
//! once with their whole chain and answered with a short message and the request id — the
//! `x-request-id` the server gives every request and sends back with the response (see
//! [`scope_request_id`]), so an operator can find the log line a user quotes.

use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use flotilla_control::Error;
use flotilla_control::error::chain;
use flotilla_domain::{FieldError, ValidationErrors};
use serde::Serialize;

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Problem {
    /// Always `about:blank`: the status and title say what went wrong.
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// One entry per bad field, for 400 and 422.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
    /// For server-side failures: quote it when reporting the problem.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    detail: String,
    pub(crate) errors: Vec<FieldError>,
    request_id: Option<String>,
    /// `Retry-After` of a 429.
    retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, detail: impl Into<String>) -> Self {
        Self {
            status,
            detail: detail.into(),
            errors: vec![],
            request_id: None,
            retry_after: None,
        }
    }

    /// 422 with one message per field.
    pub fn invalid(errors: ValidationErrors) -> Self {
        Self::fields(StatusCode::UNPROCESSABLE_ENTITY, errors)
    }

    pub fn fields(status: StatusCode, errors: ValidationErrors) -> Self {
        Self {
            status,
            detail: errors.to_string(),
            errors: errors.0,
            request_id: None,
            retry_after: None,
        }
    }

    pub fn field(status: StatusCode, field: &str, message: impl Into<String>) -> Self {
        Self::fields(status, ValidationErrors::single(field, message))
    }

    /// Quotes request `id` in the problem (for failures inside the server).
    pub fn set_request_id(&mut self, id: String) {
        self.request_id = Some(id);
    }

    fn internal(status: StatusCode, error: &dyn std::error::Error) -> Self {
        // Outside a request (a handler called directly) an id of its own still ties the
        // answer to the log line.
        let request_id = REQUEST_ID
            .try_with(Clone::clone)
            .unwrap_or_else(|_| uuid::Uuid::new_v4().simple().to_string());
        tracing::error!(request_id = %request_id, error = %chain(error), "request failed");
        Self {
            status,
            detail: format!("{error} (request id {request_id})"),
            errors: vec![],
            request_id: Some(request_id),
            retry_after: None,
        }
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        match e {
            Error::Invalid(errors) => Self::fields(status, errors),
            // Failures inside the server: logged with their chain, quoted by request id.
            Error::Backend { .. } | Error::Store { .. } => Self::internal(status, &e),
            Error::TooManyAttempts {
                retry_after_seconds,
                ..
            } => Self {
                retry_after: Some(retry_after_seconds),
                ..Self::new(status, e.to_string())
            },
            _ => Self::new(status, e.to_string()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let problem = Problem {
            kind: "about:blank",
            title: self
                .status
                .canonical_reason()
                .unwrap_or("Error")
                .to_string(),
            status: self.status.as_u16(),
            detail: self.detail,
            errors: self.errors,
            request_id: self.request_id,
        };
        let body = serde_json::to_vec(&problem).unwrap_or_default();
        let mut response = (self.status, body).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"flotilla\""),
            );
        }
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

tokio::task_local! {
    /// The id of the request whose handler is running.
    static REQUEST_ID: String;
}

/// Middleware: runs the handler with the request's `x-request-id` at hand, for the
/// problems of failures inside the server. The id is set by the server's request-id layer,
/// which must wrap this middleware.
pub async fn scope_request_id(request: Request, next: Next) -> Response {
    let id = request
        .headers()
        .get("x-request-id")
        .and_then(|id| id.to_str().ok())
        .map(str::to_string);
    match id {
        Some(id) => REQUEST_ID.scope(id, next.run(request)).await,
        None => next.run(request).await,
    }
}
