//! Turning domain errors into responses: a localised HTML page (or a redirect to log-in) for
//! pages, and `{code, message, field?}` JSON for the API.

use axum::{
    Json,
    http::{StatusCode, header},
    response::{Html, IntoResponse, Redirect, Response},
};
use serde::Serialize;
use tongban_platform::DomainError;

use crate::{ctx::current_tr, i18n::Tr};

/// The JSON error body of the API.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// Stable machine-readable code, e.g. `invalid`, `forbidden`.
    pub code: &'static str,
    /// Localised message.
    pub message: String,
    /// The input field at fault, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

fn status_and_code(e: &DomainError) -> (StatusCode, &'static str) {
    match e {
        DomainError::Invalid(_) => (StatusCode::UNPROCESSABLE_ENTITY, "invalid"),
        DomainError::Unauthenticated(_) => (StatusCode::UNAUTHORIZED, "unauthenticated"),
        DomainError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
        DomainError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
        DomainError::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
        DomainError::Locked(_) => (StatusCode::TOO_MANY_REQUESTS, "locked"),
        DomainError::Database(_) | DomainError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
    }
}

/// The label of a field in a message: the slice's own label when the message key belongs to a
/// slice (`calendar.field.days` for `calendar.error.*`), else the shared `field.*` label, else the
/// field name itself (e.g. a path such as `period[2].from`).
fn field_label(tr: &Tr, field: &str, message_key: &str) -> String {
    if let Some((slice, _)) = message_key.split_once('.')
        && slice != "error"
    {
        let key = format!("{slice}.field.{field}");
        if tr.t(&key) != key {
            return tr.t(&key).to_string();
        }
    }
    let key = format!("field.{field}");
    if tr.t(&key) != key { tr.t(&key).to_string() } else { field.to_string() }
}

/// The localised message of an error.
pub fn message(tr: &Tr, e: &DomainError) -> String {
    match e {
        DomainError::Invalid(f) => match &f.detail {
            Some(d) => format!("{}: {} ({d})", field_label(tr, &f.field, &f.message_key), tr.t(&f.message_key)),
            None => format!("{}: {}", field_label(tr, &f.field, &f.message_key), tr.t(&f.message_key)),
        },
        DomainError::Unauthenticated(k)
        | DomainError::Forbidden(k)
        | DomainError::NotFound(k)
        | DomainError::Conflict(k)
        | DomainError::Locked(k) => tr.t(k).to_string(),
        DomainError::Database(err) => {
            tracing::error!("database error: {err}");
            tr.t("error.internal").to_string()
        }
        DomainError::Internal(err) => {
            tracing::error!("internal error: {err}");
            tr.t("error.internal").to_string()
        }
    }
}

/// An error answered as JSON.
#[derive(Debug)]
pub struct ApiError(pub DomainError);

impl From<DomainError> for ApiError {
    fn from(e: DomainError) -> Self {
        ApiError(e)
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        ApiError(DomainError::Database(e))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let tr = current_tr();
        let (status, code) = status_and_code(&self.0);
        let field = match &self.0 {
            DomainError::Invalid(f) => Some(f.field.clone()),
            _ => None,
        };
        (status, Json(ErrorBody { code, message: message(&tr, &self.0), field })).into_response()
    }
}

/// An error answered as an HTML page (or a redirect to the log-in page).
#[derive(Debug)]
pub struct PageError(pub DomainError);

impl From<DomainError> for PageError {
    fn from(e: DomainError) -> Self {
        PageError(e)
    }
}

impl From<sqlx::Error> for PageError {
    fn from(e: sqlx::Error) -> Self {
        PageError(DomainError::Database(e))
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        match self.0 {
            DomainError::Unauthenticated("public.error.login_required") => return Redirect::to("/public/login").into_response(),
            DomainError::Unauthenticated(_) => return Redirect::to("/login").into_response(),
            _ => {}
        }
        let tr = current_tr();
        let (status, _) = status_and_code(&self.0);
        error_page(&tr, status, &message(&tr, &self.0))
    }
}

/// A minimal localised error page.
pub fn error_page(tr: &Tr, status: StatusCode, msg: &str) -> Response {
    let page = crate::pages::ErrorPage { tr: *tr, status: status.as_u16(), message: msg.to_string() };
    let html = askama::Template::render(&page).unwrap_or_else(|_| msg.to_string());
    (status, [(header::CACHE_CONTROL, "no-store")], Html(html)).into_response()
}

/// The answer for unknown routes: JSON under /api, a page elsewhere.
pub async fn not_found(uri: axum::http::Uri) -> Response {
    let e = DomainError::NotFound("error.no_such_page");
    if uri.path().starts_with("/api/") { ApiError(e).into_response() } else { PageError(e).into_response() }
}
