//! The request context: language, source address, the authenticated session (cookie or bearer
//! token), and CSRF protection for every state-changing request made with a cookie.

use std::net::SocketAddr;

use axum::{
    body::{Body, to_bytes},
    extract::{ConnectInfo, FromRequestParts, Request, State},
    http::{HeaderMap, HeaderValue, Method, StatusCode, header, request::Parts},
    middleware::Next,
    response::{IntoResponse, Response},
};
use tongban_audit::Actor;
use tongban_authz::Principal;
use tongban_identity::{AuthSession, PublicPrincipal};
use tongban_platform::{DomainError, error::DomainResult};

use crate::{
    error::{ApiError, error_page},
    i18n::{Lang, Tr},
    state::AppState,
};

/// Name of the session cookie.
pub const SESSION_COOKIE: &str = "tb_session";
/// Name of the public-side session cookie (citizens and enterprises).
pub const PUBLIC_COOKIE: &str = "tb_pub";

/// Name of the pre-session CSRF cookie (double-submit for the log-in form).
pub const CSRF_COOKIE: &str = "tb_csrf";
/// Name of the language cookie.
pub const LANG_COOKIE: &str = "tb_lang";

tokio::task_local! {
    static LANG: Lang;
}

/// The credentials of an `Authorization` header of the given scheme (`Bearer`, `Basic`): the
/// scheme is matched without regard to case (RFC 9110 §11.1), the credentials trimmed; `None`
/// when the header is absent, of another scheme, or empty.
pub fn authorization<'h>(headers: &'h HeaderMap, scheme: &str) -> Option<&'h str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim_start();
    let (name, credentials) = value.split_once(' ')?;
    let credentials = credentials.trim();
    (name.eq_ignore_ascii_case(scheme) && !credentials.is_empty()).then_some(credentials)
}

/// The translator of the request being handled (zh-CN outside a request).
pub fn current_tr() -> Tr {
    Tr { lang: LANG.try_with(|l| *l).unwrap_or_default() }
}

/// Everything a handler needs to know about the caller.
#[derive(Clone)]
pub struct Ctx {
    /// Translator for the request's language.
    pub tr: Tr,
    /// Source IP.
    pub ip: String,
    /// User agent.
    pub user_agent: String,
    /// The session, when logged in (at any stage) or authenticated by token.
    pub session: Option<AuthSession>,
    /// The citizen or enterprise logged in on the public side, if any.
    pub public: Option<PublicPrincipal>,
    /// The CSRF token that forms must carry.
    pub csrf: String,
    /// Whether the request is for the JSON API (errors answer as JSON).
    pub api: bool,
    /// The route being served, e.g. `GET /cases/{id}`: the purpose recorded with reads of
    /// personal data.
    pub purpose: String,
}

impl Ctx {
    /// The audit actor for this request.
    pub fn actor(&self) -> Actor {
        if let (None, Some(p)) = (&self.session, &self.public) {
            return Actor { purpose: self.purpose.clone(), ..p.actor(&self.ip, &self.user_agent) };
        }
        let (user_id, name, unit) = match &self.session {
            Some(s) => (Some(s.user_id), s.username.clone(), s.principal.as_ref().map(|p| p.unit_name.clone()).unwrap_or_default()),
            None => (None, String::new(), String::new()),
        };
        Actor { user_id, name, unit, ip: self.ip.clone(), user_agent: self.user_agent.clone(), purpose: self.purpose.clone() }
    }

    /// The fully logged-in caller, or 401.
    pub fn principal(&self) -> DomainResult<&Principal> {
        match &self.session {
            Some(s) => s.principal(),
            None => Err(DomainError::Unauthenticated("error.login_required")),
        }
    }

    /// The logged-in citizen or enterprise, or 401 (answered with the public log-in page).
    pub fn citizen(&self) -> DomainResult<&PublicPrincipal> {
        self.public.as_ref().ok_or(DomainError::Unauthenticated("public.error.login_required"))
    }

    /// The session at any stage, or 401.
    pub fn session(&self) -> DomainResult<&AuthSession> {
        self.session.as_ref().ok_or(DomainError::Unauthenticated("error.login_required"))
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Ctx {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let mut ctx = parts.extensions.get::<Ctx>().cloned().ok_or_else(|| StatusCode::INTERNAL_SERVER_ERROR.into_response())?;
        let route = parts.extensions.get::<axum::extract::MatchedPath>().map(|p| p.as_str().to_string());
        ctx.purpose = format!("{} {}", parts.method, route.as_deref().unwrap_or(parts.uri.path()));
        Ok(ctx)
    }
}

/// Reads one cookie; malformed cookie headers are ignored rather than refused.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
}

fn plausible_token(s: &str) -> bool {
    s.len() == 43 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn source_ip(req: &Request, trust_forwarded: bool) -> String {
    if trust_forwarded
        && let Some(ip) = req
            .headers()
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
            .map(str::trim)
            .filter(|s| s.parse::<std::net::IpAddr>().is_ok())
    {
        return ip.to_string();
    }
    req.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip().to_string()).unwrap_or_else(|| "127.0.0.1".into())
}

fn refuse(tr: &Tr, api: bool, status: StatusCode, key: &'static str) -> Response {
    if api {
        let e = match status {
            StatusCode::UNAUTHORIZED => DomainError::Unauthenticated(key),
            _ => DomainError::Forbidden(key),
        };
        ApiError(e).into_response()
    } else {
        error_page(tr, status, tr.t(key))
    }
}

fn constant_time_eq(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Same-origin check for state-changing requests: `Sec-Fetch-Site` and `Origin`, when sent.
fn cross_site(headers: &HeaderMap) -> bool {
    if headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) == Some("cross-site") {
        return true;
    }
    match (headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()), headers.get(header::HOST).and_then(|v| v.to_str().ok())) {
        (Some("null"), _) => true,
        (Some(origin), Some(host)) => origin.split("://").nth(1).is_none_or(|o| o != host),
        _ => false,
    }
}

/// Middleware: builds the [`Ctx`], authenticates, and enforces CSRF on unsafe methods.
pub async fn context_layer(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let lang = request_lang(req.headers());
    LANG.scope(lang, handle(state, req, next, lang)).await
}

/// The language a request asks for: the language cookie, else `Accept-Language`, else zh-CN.
pub fn request_lang(headers: &HeaderMap) -> Lang {
    cookie(headers, LANG_COOKIE)
        .and_then(Lang::parse)
        .or_else(|| headers.get(header::ACCEPT_LANGUAGE).and_then(|v| v.to_str().ok()).and_then(Lang::from_accept_language))
        .unwrap_or_default()
}

async fn handle(state: AppState, req: Request, next: Next, lang: Lang) -> Response {
    let tr = Tr { lang };
    if crate::oidc::is_protocol_endpoint(req.uri().path()) || req.uri().path() == "/metrics" {
        // Clients, not browsers: their credentials are checked by the endpoint itself (the
        // metrics scraper's bearer token is no API token).
        let ip = source_ip(&req, state.config.server.trust_forwarded_for);
        let user_agent: String =
            req.headers().get(header::USER_AGENT).and_then(|v| v.to_str().ok()).unwrap_or("").chars().take(256).collect();
        let mut req = req;
        req.extensions_mut().insert(Ctx {
            tr,
            ip,
            user_agent,
            session: None,
            public: None,
            csrf: String::new(),
            api: true,
            purpose: String::new(),
        });
        return next.run(req).await;
    }
    let api = req.uri().path().starts_with("/api/");
    let ip = source_ip(&req, state.config.server.trust_forwarded_for);
    let headers = req.headers().clone();
    let user_agent: String = headers.get(header::USER_AGENT).and_then(|v| v.to_str().ok()).unwrap_or("").chars().take(256).collect();
    let bearer = authorization(&headers, "Bearer");
    let session = match (bearer, cookie(&headers, SESSION_COOKIE)) {
        (Some(token), _) => match state.identity.api_token(token).await {
            Ok(Some(s)) => Some(s),
            Ok(None) => return refuse(&tr, true, StatusCode::UNAUTHORIZED, "error.bad_token"),
            Err(e) => return ApiError(e).into_response(),
        },
        (None, Some(secret)) => state.identity.session(secret).await.unwrap_or_else(|e| {
            tracing::error!("session lookup failed: {e}");
            None
        }),
        (None, None) => None,
    };
    let public = match (&session, cookie(&headers, PUBLIC_COOKIE)) {
        (None, Some(secret)) => state.identity.public_session(secret).await.unwrap_or_else(|e| {
            tracing::error!("public session lookup failed: {e}");
            None
        }),
        _ => None,
    };
    let via_token = session.as_ref().is_some_and(|s| s.api_write.is_some());
    let pre_session = cookie(&headers, CSRF_COOKIE).filter(|c| plausible_token(c)).map(String::from);
    let mut new_csrf_cookie = None;
    let csrf = match (&session, &public) {
        (Some(s), _) if !via_token => s.csrf_token.clone(),
        (None, Some(p)) => p.csrf_token.clone(),
        _ => pre_session.clone().unwrap_or_else(|| {
            let t = tongban_crypto::token::random_token();
            new_csrf_cookie = Some(t.clone());
            t
        }),
    };
    let unsafe_method = !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    let mut req = req;
    if unsafe_method {
        if via_token {
            if session.as_ref().and_then(|s| s.api_write) == Some(false) {
                return refuse(&tr, true, StatusCode::FORBIDDEN, "error.token_read_only");
            }
        } else {
            if cross_site(&headers) {
                return refuse(&tr, api, StatusCode::FORBIDDEN, "error.csrf");
            }
            let limit = state.config.server.body_limit(req.uri().path());
            let (submitted, rebuilt) = submitted_csrf(req, limit).await;
            // Too large: the body limit layer answers (JSON or page) once the read has failed.
            let Some(rebuilt) = rebuilt else {
                return (StatusCode::PAYLOAD_TOO_LARGE, tr.t("error.too_large").to_string()).into_response();
            };
            req = rebuilt;
            let expected = match (&session, &public) {
                (Some(s), _) => s.csrf_token.clone(),
                (None, Some(p)) => p.csrf_token.clone(),
                (None, None) => pre_session.clone().unwrap_or_default(),
            };
            if expected.is_empty() || !submitted.is_some_and(|s| constant_time_eq(&s, &expected)) {
                return refuse(&tr, api, StatusCode::FORBIDDEN, "error.csrf");
            }
        }
    }
    req.extensions_mut().insert(Ctx { tr, ip, user_agent, session, public, csrf, api, purpose: String::new() });
    let mut resp = next.run(req).await;
    if let Some(token) = new_csrf_cookie {
        let secure = if state.secure_cookies() { "; Secure" } else { "" };
        if let Ok(v) = HeaderValue::from_str(&format!("{CSRF_COOKIE}={token}; Path=/; HttpOnly; SameSite=Lax{secure}")) {
            resp.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    resp
}

/// Finds the submitted CSRF token in the `X-CSRF-Token` header or the `_csrf` form field,
/// buffering a form body and handing back an equivalent request. `None` request: body too large.
async fn submitted_csrf(req: Request, limit: usize) -> (Option<String>, Option<Request>) {
    if let Some(h) = req.headers().get("x-csrf-token").and_then(|v| v.to_str().ok()) {
        let token = h.to_string();
        return (Some(token), Some(req));
    }
    let content_type = req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    let boundary = multer::parse_boundary(&content_type).ok();
    if !content_type.starts_with("application/x-www-form-urlencoded") && boundary.is_none() {
        return (None, Some(req));
    }
    let (parts, body) = req.into_parts();
    let Ok(bytes) = to_bytes(body, limit).await else {
        return (None, None);
    };
    let token = match boundary {
        Some(b) => multipart_field(bytes.clone(), b, "_csrf").await,
        None => form_field(&bytes, "_csrf"),
    };
    (token, Some(Request::from_parts(parts, Body::from(bytes))))
}

/// The text of a `multipart/form-data` field (file uploads carry the CSRF token as a field).
async fn multipart_field(bytes: axum::body::Bytes, boundary: String, name: &str) -> Option<String> {
    let stream = futures_util::stream::once(async move { Ok::<_, std::convert::Infallible>(bytes) });
    let mut form = multer::Multipart::new(stream, boundary);
    while let Ok(Some(field)) = form.next_field().await {
        if field.name() == Some(name) {
            return field.text().await.ok();
        }
    }
    None
}

fn form_field(body: &[u8], name: &str) -> Option<String> {
    serde_urlencoded::from_bytes::<Vec<(String, String)>>(body).ok()?.into_iter().find(|(k, _)| k == name).map(|(_, v)| v)
}

/// The `Set-Cookie` value that stores a session.
pub fn session_cookie(state: &AppState, secret: &str) -> String {
    let secure = if state.secure_cookies() { "; Secure" } else { "" };
    format!("{SESSION_COOKIE}={secret}; Path=/; HttpOnly; SameSite=Lax{secure}")
}

/// The `Set-Cookie` value that removes the session cookie.
pub fn clear_session_cookie() -> String {
    format!("{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_parse_leniently() {
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, HeaderValue::from_static("a=1; tb_session=xyz ;broken; b="));
        assert_eq!(cookie(&h, "tb_session"), Some("xyz"));
        assert_eq!(cookie(&h, "b"), Some(""));
        assert_eq!(cookie(&h, "missing"), None);
    }

    #[test]
    fn cross_site_detection() {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_static("gov.local:8080"));
        assert!(!cross_site(&h));
        h.insert(header::ORIGIN, HeaderValue::from_static("http://gov.local:8080"));
        assert!(!cross_site(&h));
        h.insert(header::ORIGIN, HeaderValue::from_static("http://evil.example"));
        assert!(cross_site(&h));
    }
}
