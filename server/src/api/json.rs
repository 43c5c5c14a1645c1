//! The JSON body extractor of the API: it names the field of every problem.
//!
//! Malformed JSON is a 400 with line and column; a wrong type, a missing field or an unknown
//! field is a 422 naming the field's path (`model.vcpus`), and so is a body that is not an
//! object; a body that is not `application/json` is a 415; the size limit is enforced by
//! the request guard (413). [`ApiPath`] answers an unreadable path segment with a 400
//! problem, as every other refusal.

use axum::extract::{FromRequest, Request};
use axum::http::{StatusCode, header};
use bytes::Bytes;
use flotilla_domain::ValidationErrors;
use serde::de::DeserializeOwned;

use super::error::ApiError;

pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|v| {
                let v = v.trim();
                v == "application/json" || (v.starts_with("application/") && v.ends_with("+json"))
            });
        if !is_json {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "the body must be JSON with Content-Type: application/json",
            ));
        }
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|rejection| ApiError::new(rejection.status(), rejection.body_text()))?;
        let value = parse(&bytes)?;
        // serde reads a struct from an array of its fields too: every body is an object.
        if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
            return Err(ApiError::field(
                StatusCode::UNPROCESSABLE_ENTITY,
                "body",
                "must be a JSON object",
            ));
        }
        Ok(ApiJson(value))
    }
}

/// Path parameters; a segment that is not what the route takes (`/rollouts/abc`, a number
/// out of range, invalid UTF-8) is a 400 problem naming the parameter's value.
pub struct ApiPath<T>(pub T);

impl<S, T> axum::extract::FromRequestParts<S> for ApiPath<T>
where
    S: Send + Sync,
    T: DeserializeOwned + Send,
{
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, ApiError> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(value)| ApiPath(value))
            .map_err(|rejection| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    format!(
                        "the address is not one of this API's: {}",
                        rejection.body_text()
                    ),
                )
            })
    }
}

/// Parses `bytes` as `T`, rejecting unknown fields, naming the path of every problem.
pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut unknown = Vec::new();
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let mut on_unknown = |path: serde_ignored::Path<'_>| unknown.push(path.to_string());
    let value = serde_path_to_error::deserialize(serde_ignored::Deserializer::new(
        &mut de,
        &mut on_unknown,
    ));
    let value = match value {
        Ok(v) => v,
        Err(e) => {
            let path = e.path().to_string();
            let inner = e.into_inner();
            return Err(match inner.classify() {
                serde_json::error::Category::Syntax | serde_json::error::Category::Eof => {
                    ApiError::new(StatusCode::BAD_REQUEST, format!("malformed JSON: {inner}"))
                }
                _ => {
                    let message = strip_position(&inner.to_string());
                    ApiError::field(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        &field_of(&path, &message),
                        message,
                    )
                }
            });
        }
    };
    if let Err(e) = de.end() {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("malformed JSON: {e}"),
        ));
    }
    if !unknown.is_empty() {
        let mut errors = ValidationErrors::default();
        for path in unknown {
            errors.push(path, "unknown field");
        }
        return Err(ApiError::invalid(errors));
    }
    Ok(value)
}

/// The field a data error is about: its path, completed by the name a "missing field"
/// message gives (serde reports those at the enclosing object).
fn field_of(path: &str, message: &str) -> String {
    let missing = message
        .strip_prefix("missing field `")
        .and_then(|rest| rest.split('`').next());
    match (path, missing) {
        (".", Some(name)) => name.to_string(),
        (".", None) => "body".to_string(),
        (path, Some(name)) => format!("{path}.{name}"),
        (path, None) => path.to_string(),
    }
}

/// serde_json appends " at line 1 column 17" to data errors; the field path says more.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_string(),
        None => message.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flotilla_domain::ScaleSetSpec;

    fn err(body: &str) -> (u16, String) {
        let e = parse::<ScaleSetSpec>(body.as_bytes()).unwrap_err();
        let resp = axum::response::IntoResponse::into_response(e);
        (resp.status().as_u16(), format!("{resp:?}"))
    }

    #[test]
    fn names_fields() {
        let ok = r#"{"name":"web","model":{"image":"debian-12","vcpus":2,"memory_mib":2048,"disk_gib":10},"capacity":3}"#;
        assert!(parse::<ScaleSetSpec>(ok.as_bytes()).is_ok());
        assert_eq!(err("{").0, 400);
        assert_eq!(err(&format!("{ok} x")).0, 400, "trailing characters");
        let wrong_type = r#"{"name":"web","model":{"image":"debian-12","vcpus":"two","memory_mib":2048,"disk_gib":10},"capacity":3}"#;
        let e = parse::<ScaleSetSpec>(wrong_type.as_bytes()).unwrap_err();
        assert_eq!(e_fields(&e), ["model.vcpus"]);
        let unknown = r#"{"name":"web","model":{"image":"debian-12","vcpus":2,"memory_mib":2048,"disk_gib":10,"gpu":1},"capacity":3,"colour":"red"}"#;
        let e = parse::<ScaleSetSpec>(unknown.as_bytes()).unwrap_err();
        assert_eq!(e_fields(&e), ["model.gpu", "colour"]);
        let negative = r#"{"name":"web","model":{"image":"debian-12","vcpus":2,"memory_mib":2048,"disk_gib":10},"capacity":-1}"#;
        let e = parse::<ScaleSetSpec>(negative.as_bytes()).unwrap_err();
        assert_eq!(e_fields(&e), ["capacity"]);
        let missing = r#"{"name":"web","capacity":3}"#;
        let e = parse::<ScaleSetSpec>(missing.as_bytes()).unwrap_err();
        assert_eq!(e_fields(&e), ["model"]);
        let nested = r#"{"name":"web","model":{"image":"debian-12","memory_mib":2048,"disk_gib":10},"capacity":3}"#;
        let e = parse::<ScaleSetSpec>(nested.as_bytes()).unwrap_err();
        assert_eq!(e_fields(&e), ["model.vcpus"]);
    }

    fn e_fields(e: &ApiError) -> Vec<&str> {
        e.errors.iter().map(|f| f.field.as_str()).collect()
    }
}
