//! The web layer (网页与接口): server-rendered staff pages in zh-CN and English, the JSON API
//! under `/api/v1` with its OpenAPI document, and the operational endpoints. Handlers are thin:
//! they parse input, call a domain service, and render the result.

mod api;
mod ctx;
mod error;
pub mod i18n;
mod layers;
pub(crate) mod oidc;
mod ops;
pub(crate) mod pages;
pub mod parse;
mod state;

pub use api::OpenApiDoc;
pub use ctx::{CSRF_COOKIE, SESSION_COOKIE};
pub use error::message as localized_message;
pub use ops::metrics_router;
pub use state::AppState;

use axum::Router;

/// Builds the whole application router with its middleware.
pub fn router(state: AppState) -> Router {
    let app =
        Router::new().merge(pages::routes()).merge(api::routes()).merge(oidc::routes()).merge(ops::routes()).fallback(error::not_found);
    layers::apply(app, state)
}
