//! Middleware stack: security headers on every response (`Cache-Control: no-store` unless the
//! handler set a policy), HSTS under TLS, body size limit (413), panic catching (500 without
//! details), request metrics, and the request context.

use std::time::Instant;

use axum::{
    Router,
    extract::{MatchedPath, Request},
    http::{HeaderName, HeaderValue, header},
    middleware::{self, Next},
    response::Response,
};
use tower_http::{catch_panic::CatchPanicLayer, set_header::SetResponseHeaderLayer};

use crate::state::AppState;

const CSP: &str = "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; \
                   object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// Wraps the router in the middleware stack.
pub fn apply(app: Router<AppState>, state: AppState) -> Router {
    let hsts = state.config.tls_enabled();
    let mut app = app
        .layer(middleware::from_fn_with_state(state.clone(), crate::ctx::context_layer))
        .layer(middleware::from_fn(record_metrics))
        .layer(middleware::from_fn_with_state(state.clone(), body_limit))
        // The per-path limit above is the one that counts, not axum's 2 MB extractor default.
        .layer(axum::extract::DefaultBodyLimit::disable())
        .layer(CatchPanicLayer::new())
        // Nothing is cached unless its handler says so: JSON with ID numbers and phones, case
        // materials and result documents carry personal data. Static assets and the public
        // resources meant to be cached (OIDC discovery and keys, the CRL) set their own policy.
        .layer(SetResponseHeaderLayer::if_not_present(header::CACHE_CONTROL, HeaderValue::from_static("no-store")))
        // A handler may set a stricter policy of its own (a stored document's inline styles).
        .layer(SetResponseHeaderLayer::if_not_present(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP)))
        .layer(header_layer(header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        // File previews answer SAMEORIGIN themselves, to be shown in tongban's own pages.
        .layer(SetResponseHeaderLayer::if_not_present(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")))
        .layer(header_layer(header::REFERRER_POLICY, "same-origin"))
        .layer(header_layer(HeaderName::from_static("permissions-policy"), "camera=(), microphone=(), geolocation=()"))
        .layer(header_layer(HeaderName::from_static("cross-origin-opener-policy"), "same-origin"));
    if hsts {
        app = app.layer(header_layer(header::STRICT_TRANSPORT_SECURITY, "max-age=31536000; includeSubDomains"));
    }
    app.with_state(state)
}

/// Refuses bodies over the path's limit (`server.max_upload_bytes` for uploads — paths ending in
/// `/materials` or `/attachments` — else `server.max_body_bytes`) with 413: by `Content-Length`
/// up front, and while reading for chunked bodies. The body is wrapped in a limit that fails
/// the read and raises a flag; whatever the reader then answered (a form error, a multipart
/// error) is replaced by the one 413 answer: `{code, message}` JSON under `/api/`, a localised
/// page elsewhere. axum's own 2 MB default is switched off ([`apply`]), so this is the limit.
async fn body_limit(axum::extract::State(state): axum::extract::State<AppState>, req: Request, next: Next) -> Response {
    use std::sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    };

    use http_body_util::BodyExt;
    let limit = state.config.server.body_limit(req.uri().path());
    let api = req.uri().path().starts_with("/api/");
    // Uploads name what was too large: the material or the attachment.
    let field = match req.uri().path() {
        p if p.ends_with("/materials") => Some("material"),
        p if p.ends_with("/attachments") => Some("attachment"),
        _ => None,
    };
    let tr = crate::i18n::Tr { lang: crate::ctx::request_lang(req.headers()) };
    let declared = req.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return too_large(&tr, api, field);
    }
    let exceeded = Arc::new(AtomicBool::new(false));
    let flag = exceeded.clone();
    let (parts, body) = req.into_parts();
    let body = http_body_util::Limited::new(body, limit).map_err(move |e| {
        if e.is::<http_body_util::LengthLimitError>() {
            flag.store(true, Ordering::Relaxed);
        }
        e
    });
    let resp = next.run(Request::from_parts(parts, axum::body::Body::new(body))).await;
    if exceeded.load(Ordering::Relaxed) { too_large(&tr, api, field) } else { resp }
}

/// The 413 answer: JSON for the API, a localised page elsewhere; for an upload the message
/// names the file (材料, 附件).
fn too_large(tr: &crate::i18n::Tr, api: bool, field: Option<&str>) -> Response {
    use axum::{http::StatusCode, response::IntoResponse};
    let message = match field {
        Some(f) => crate::error::message(tr, &tongban_platform::DomainError::invalid(f, "approval.error.upload_too_large")),
        None => tr.t("error.too_large").to_string(),
    };
    if api {
        let body = crate::error::ErrorBody { code: "too_large", message, field: field.map(str::to_string) };
        (StatusCode::PAYLOAD_TOO_LARGE, axum::Json(body)).into_response()
    } else {
        crate::error::error_page(tr, StatusCode::PAYLOAD_TOO_LARGE, &message)
    }
}

fn header_layer(name: HeaderName, value: &'static str) -> SetResponseHeaderLayer<HeaderValue> {
    SetResponseHeaderLayer::overriding(name, HeaderValue::from_static(value))
}

async fn record_metrics(req: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = req.method().to_string();
    let route = req.extensions().get::<MatchedPath>().map(|p| p.as_str().to_string()).unwrap_or_else(|| "unmatched".into());
    let resp = next.run(req).await;
    let status = resp.status().as_u16().to_string();
    metrics::counter!("http_requests_total", "method" => method, "route" => route.clone(), "status" => status).increment(1);
    metrics::histogram!("http_request_duration_seconds", "route" => route).record(start.elapsed().as_secs_f64());
    resp
}
