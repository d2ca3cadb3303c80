//! The JSON API under `/api/v1` (接口), described by the OpenAPI document at
//! `/api/openapi.json` and browsable at `/api/docs`. Authenticate with a personal API token
//! (`Authorization: Bearer tbp_…`) or a browser session plus the `X-CSRF-Token` header.

pub(crate) mod calendar;
mod cases;
mod catalogue;
mod docs;
mod documents;
mod dto;
mod handlers;
pub(crate) mod workflow;

use axum::{
    Router,
    routing::{get, post},
};

use crate::state::AppState;

pub use docs::ApiDoc as OpenApiDoc;

/// The API routes (full paths, so that the request URI is never stripped by nesting).
pub fn routes() -> Router<AppState> {
    use handlers::*;
    Router::new()
        .route("/api/openapi.json", get(docs::openapi_json))
        .route("/api/docs", get(docs::docs_page))
        .route("/api/v1/me", get(me))
        .route("/api/v1/regions", get(list_regions).post(create_region))
        .route("/api/v1/units", get(list_units).post(create_unit))
        .route("/api/v1/units/{id}", get(get_unit).put(update_unit))
        .route("/api/v1/users", get(list_users).post(create_user))
        .route("/api/v1/users/{id}", get(get_user).put(update_user))
        .route("/api/v1/users/{id}/grants", get(list_grants).post(create_grant))
        .route("/api/v1/users/{id}/{action}", post(user_action))
        .route("/api/v1/grants/{id}", axum::routing::delete(delete_grant))
        .route("/api/v1/roles", get(list_roles).post(create_role))
        .route("/api/v1/roles/{id}", axum::routing::put(update_role))
        .route("/api/v1/audit", get(audit_records))
        .route("/api/v1/sessions", get(list_sessions))
        .route("/api/v1/sessions/{id}", axum::routing::delete(delete_session))
        .route("/api/v1/tokens", get(list_tokens).post(create_token))
        .route("/api/v1/tokens/{id}", axum::routing::delete(delete_token))
        .route("/api/v1/calendar/working-days", get(calendar::working_days))
        .route("/api/v1/calendar/deadline", get(calendar::deadline))
        .route("/api/v1/calendar/is-working-day", get(calendar::is_working_day))
        .route("/api/v1/calendar/years/{year}", get(calendar::year))
        .route("/api/v1/calendar/import", post(calendar::import))
        .route("/api/v1/documents", post(documents::create))
        .route("/api/v1/documents/{id}", get(documents::get).put(documents::update))
        .route("/api/v1/documents/{id}/number", post(documents::number))
        .route("/api/v1/documents/{id}/submit", post(documents::submit))
        .route("/api/v1/documents/{id}/recall", post(documents::recall))
        .route("/api/v1/documents/{id}/countersigns", get(documents::countersigns))
        .route("/api/v1/documents/{id}/attachments", get(documents::attachments).post(documents::attach))
        .route("/api/v1/units/{id}/document-groups", get(documents::groups).post(documents::create_group))
        .route("/api/v1/document-groups/{id}", axum::routing::delete(documents::delete_group))
        .route("/api/v1/documents/{id}/issue", post(documents::issue))
        .route("/api/v1/documents/{id}/withdraw", post(documents::withdraw))
        .route("/api/v1/documents/{id}/tracking", get(documents::tracking))
        .route("/api/v1/inbox", get(documents::inbox))
        .route("/api/v1/deliveries/{id}", get(documents::delivery))
        .route("/api/v1/deliveries/{id}/sign", post(documents::sign))
        .route("/api/v1/deliveries/{id}/refuse", post(documents::refuse))
        .route("/api/v1/deliveries/{id}/register", post(documents::register))
        .route("/api/v1/units/{id}/document-prefix", axum::routing::put(documents::prefix))
        .route("/api/v1/cases", get(cases::list).post(cases::register))
        .route("/api/v1/cases/{id}", get(cases::get))
        .route("/api/v1/cases/{id}/result", get(cases::result))
        .route("/api/v1/cases/{id}/{action}", post(cases::act))
        .route("/api/v1/supervision", get(cases::supervision))
        .route("/api/v1/applications/status", get(cases::public_status))
        .route("/api/v1/catalogue", get(catalogue::list).post(catalogue::create))
        .route("/api/v1/catalogue/{id}", get(catalogue::get).put(catalogue::update))
        .route("/api/v1/workflow/definitions", get(workflow::definitions).post(workflow::upload))
        .route("/api/v1/workflow/definitions/{id}", get(workflow::definition))
        .route("/api/v1/workflow/instances", post(workflow::start))
        .route("/api/v1/workflow/instances/{id}", get(workflow::instance))
        .route("/api/v1/workflow/instances/{id}/cancel", post(workflow::cancel))
        .route("/api/v1/workflow/tasks", get(workflow::tasks))
        .route("/api/v1/workflow/tasks/{id}/{action}", post(workflow::act))
}
