//! Parsing request bodies with errors that name the field at fault. Axum's own `Form` and
//! `Json` extractors answer with plain-text messages; these give the API's `{code, message,
//! field}` shape and a localised page instead, and never panic on any input (property-tested).

use axum::{
    body::Bytes,
    extract::{FromRequest, Request},
    http::header,
    response::{IntoResponse, Response},
};
use serde::de::DeserializeOwned;
use tongban_platform::DomainError;

use crate::error::{ApiError, PageError};

/// Deserialises a JSON body; the error names the field (dotted path) that failed.
pub fn json_body<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, DomainError> {
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(|e| field_error(e.path().to_string(), &e.inner().to_string()))
}

/// Deserialises an `application/x-www-form-urlencoded` body; the error names the field.
pub fn form_body<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, DomainError> {
    let de = serde_urlencoded::Deserializer::new(form_urlencoded_parse(bytes));
    serde_path_to_error::deserialize(de).map_err(|e| field_error(e.path().to_string(), &e.inner().to_string()))
}

fn form_urlencoded_parse(bytes: &[u8]) -> form_urlencoded::Parse<'_> {
    form_urlencoded::parse(bytes)
}

fn field_error(path: String, message: &str) -> DomainError {
    // A missing field is reported by serde at the parent level, with the name in the message.
    let field =
        if path == "." || path.is_empty() { message.split('`').nth(1).map(String::from).unwrap_or_else(|| "body".into()) } else { path };
    let key = if message.starts_with("missing field") {
        "error.required"
    } else if message.starts_with("unknown field") {
        "error.unknown_field"
    } else if message.contains("EOF") || message.contains("expected value") || message.contains("key must be") {
        "error.malformed"
    } else {
        "error.invalid_value"
    };
    DomainError::invalid(&field, key)
}

/// A JSON body for the API, refused as `{code, message, field}`.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = Response;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let json = req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|v| v.starts_with("application/json"));
        if !json {
            return Err(ApiError(DomainError::invalid("content-type", "error.expected_json")).into_response());
        }
        let bytes = Bytes::from_request(req, state).await.map_err(IntoResponse::into_response)?;
        json_body(&bytes).map(ApiJson).map_err(|e| ApiError(e).into_response())
    }
}

/// A form body for pages, refused with a localised page naming the field.
pub struct PageForm<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for PageForm<T> {
    type Rejection = Response;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(req, state).await.map_err(IntoResponse::into_response)?;
        form_body(&bytes).map(PageForm).map_err(|e| PageError(e).into_response())
    }
}

/// A query string, refused (as JSON or a page, by path) with the field named.
pub struct QueryOf<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> axum::extract::FromRequestParts<S> for QueryOf<T> {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, _: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or("");
        form_body(query.as_bytes()).map(QueryOf).map_err(|e| reject(parts.uri.path(), e))
    }
}

/// Path parameters by name; `id(name)` parses a numeric one, naming it on failure.
pub struct PathParams(pub std::collections::HashMap<String, String>);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for PathParams {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, state: &S) -> Result<Self, Self::Rejection> {
        let path = original_path(parts);
        axum::extract::Path::<std::collections::HashMap<String, String>>::from_request_parts(parts, state)
            .await
            .map(|p| PathParams(p.0))
            .map_err(|_| reject(&path, DomainError::invalid("path", "error.invalid_value")))
    }
}

impl PathParams {
    /// A numeric parameter.
    pub fn id(&self, name: &str) -> Result<i64, DomainError> {
        self.0.get(name).and_then(|v| v.parse().ok()).ok_or_else(|| DomainError::invalid(name, "error.invalid_value"))
    }

    /// A text parameter.
    pub fn text(&self, name: &str) -> &str {
        self.0.get(name).map(String::as_str).unwrap_or("")
    }
}

/// The request path as the client sent it (`nest` strips prefixes from `uri`); the context
/// layer records whether it was an API request.
fn original_path(parts: &axum::http::request::Parts) -> String {
    match parts.extensions.get::<crate::ctx::Ctx>() {
        Some(ctx) if ctx.api => "/api/".to_string(),
        _ => parts.uri.path().to_string(),
    }
}

fn reject(path: &str, e: DomainError) -> Response {
    if path.starts_with("/api/") { ApiError(e).into_response() } else { PageError(e).into_response() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Sample {
        name: String,
        unit_id: i64,
        #[serde(default)]
        tags: Vec<String>,
    }

    fn field_of(e: DomainError) -> String {
        match e {
            DomainError::Invalid(f) => f.field,
            other => panic!("expected a field error, got {other:?}"),
        }
    }

    #[test]
    fn json_errors_name_the_field() {
        assert_eq!(field_of(json_body::<Sample>(br#"{"unit_id": 1}"#).unwrap_err()), "name");
        assert_eq!(field_of(json_body::<Sample>(br#"{"name": "a", "unit_id": "x"}"#).unwrap_err()), "unit_id");
        assert_eq!(field_of(json_body::<Sample>(br#"{"name": "a", "unit_id": 1, "tags": [1]}"#).unwrap_err()), "tags[0]");
        assert_eq!(field_of(json_body::<Sample>(br#"{"name": "a", "unit_id": 1, "evil": 1}"#).unwrap_err()), "evil");
        assert!(json_body::<Sample>(br#"{"name": "a", "unit_id": 1}"#).is_ok());
    }

    #[test]
    fn form_errors_name_the_field() {
        assert_eq!(field_of(form_body::<Sample>(b"unit_id=1").unwrap_err()), "name");
        assert_eq!(field_of(form_body::<Sample>(b"name=a&unit_id=abc").unwrap_err()), "unit_id");
        assert!(form_body::<Sample>(b"name=%E5%98%89%E7%A6%BE&unit_id=3").is_ok());
    }

    proptest! {
        #[test]
        fn json_parser_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let r = json_body::<Sample>(&bytes);
            if let Err(e) = r { prop_assert!(matches!(e, DomainError::Invalid(_))); }
        }

        #[test]
        fn form_parser_never_panics(s in ".{0,200}") {
            let r = form_body::<Sample>(s.as_bytes());
            if let Err(e) = r { prop_assert!(matches!(e, DomainError::Invalid(_))); }
        }

        #[test]
        fn json_round_trips(name in "\\PC{0,40}", unit_id in any::<i64>()) {
            let body = serde_json::json!({"name": name, "unit_id": unit_id}).to_string();
            let s: Sample = json_body(body.as_bytes()).unwrap();
            prop_assert_eq!(s.name, name);
            prop_assert_eq!(s.unit_id, unit_id);
        }
    }
}
