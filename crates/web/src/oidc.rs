//! The OpenID Connect endpoints under `/realms/{staff|public}/…` (统一身份认证): discovery,
//! JWKS, authorize (with log-in and consent pages), token, userinfo, introspection, revocation
//! and logout. Machine endpoints answer in the OAuth error format; the browser endpoints use the
//! realm's own log-in page and session, so a citizen's session never yields a staff token.

use askama::Template;
use axum::{
    Json, Router,
    body::Bytes,
    extract::State,
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Redirect, Response},
    routing::get,
};
use base64::{Engine, engine::general_purpose::STANDARD};
use serde::Deserialize;
use serde_json::{Value, json};
use tongban_oidc::{
    Acr, OAuthError, Realm,
    provider::{AuthorizeError, AuthorizeRequest, LogoutRequest, Reauth, Subject, TokenRequest, ValidRequest},
};

use crate::{
    ctx::Ctx,
    pages::{Layout, PageResult, render_status},
    parse::PathParams,
    state::AppState,
};

/// Cookie holding where to continue after logging in (an authorization request).
pub const RETURN_COOKIE: &str = "tb_return";

/// The routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/realms/{realm}/.well-known/openid-configuration", get(discovery))
        .route("/realms/{realm}/jwks", get(jwks))
        .route("/realms/{realm}/authorize", get(authorize).post(consent))
        .route("/realms/{realm}/token", axum::routing::post(token))
        .route("/realms/{realm}/userinfo", get(userinfo).post(userinfo))
        .route("/realms/{realm}/introspect", axum::routing::post(introspect))
        .route("/realms/{realm}/revoke", axum::routing::post(revoke))
        .route("/realms/{realm}/logout", get(logout).post(logout_confirmed))
        .route("/realms/{realm}/token", axum::routing::options(preflight))
        .route("/realms/{realm}/userinfo", axum::routing::options(preflight))
        .route("/realms/{realm}/revoke", axum::routing::options(preflight))
        .route("/realms/{realm}/jwks", axum::routing::options(preflight))
        .route("/realms/{realm}/.well-known/openid-configuration", axum::routing::options(preflight))
        .layer(axum::middleware::from_fn(cors))
}

/// Cross-origin calls from browser clients (CORS): a handler that found the request's origin
/// allowed marks its response; the headers are written here.
async fn cors(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let mut resp = next.run(req).await;
    if let Some(AllowedOrigin(o)) = resp.extensions().get::<AllowedOrigin>().cloned()
        && let Ok(v) = HeaderValue::from_str(&o)
    {
        resp.headers_mut().insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, v);
        resp.headers_mut().insert(header::VARY, HeaderValue::from_static("Origin"));
    }
    resp
}

/// Set on a response when the request's origin may read it.
#[derive(Clone)]
struct AllowedOrigin(String);

/// Marks `resp` readable by the request's origin when a public client of the realm lives there.
async fn allow_origin(state: &AppState, realm: Realm, headers: &HeaderMap, mut resp: Response) -> Response {
    if let Some(o) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok())
        && state.oidc.clients.origin_allowed(realm, o).await.unwrap_or(false)
    {
        resp.extensions_mut().insert(AllowedOrigin(o.to_string()));
    }
    resp
}

/// `OPTIONS` on a machine endpoint: the CORS preflight.
async fn preflight(State(state): State<AppState>, params: PathParams, headers: HeaderMap) -> Response {
    let Some(realm) = Realm::parse(params.text("realm")) else { return unknown_realm() };
    let mut resp = StatusCode::NO_CONTENT.into_response();
    let h = resp.headers_mut();
    h.insert(header::ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static("GET, POST"));
    h.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, HeaderValue::from_static("authorization, content-type"));
    h.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("600"));
    allow_origin(&state, realm, &headers, resp).await
}

/// Whether `path` is a machine endpoint (called by clients, not browsers with our cookies): no
/// session, no CSRF token, `Authorization` carries client or token credentials.
pub fn is_protocol_endpoint(path: &str) -> bool {
    path.starts_with("/realms/")
        && ["/token", "/userinfo", "/introspect", "/revoke", "/jwks", "/.well-known/openid-configuration"].iter().any(|e| path.ends_with(e))
}

/// A continuation saved before the log-in page, if it is one of ours.
pub fn saved_return(headers: &HeaderMap) -> Option<String> {
    let raw = crate::ctx::cookie(headers, RETURN_COOKIE)?;
    let url = percent_decode(raw);
    (url.starts_with("/realms/staff/authorize?") || url.starts_with("/realms/public/authorize?")).then_some(url)
}

/// Clears the continuation cookie.
pub fn clear_return() -> String {
    format!("{RETURN_COOKIE}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0")
}

/// Decodes one `application/x-www-form-urlencoded` value (cookies we wrote, Basic credentials).
fn percent_decode(s: &str) -> String {
    serde_urlencoded::from_str::<Vec<(String, String)>>(&format!("v={s}"))
        .ok()
        .and_then(|mut v| v.pop())
        .map(|(_, v)| v)
        .unwrap_or_default()
}

fn unknown_realm() -> Response {
    oauth_json(&OAuthError::invalid_request("unknown realm"))
}

/// An OAuth error as JSON with the right status (and `WWW-Authenticate` where the spec asks).
fn oauth_json(e: &OAuthError) -> Response {
    let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::BAD_REQUEST);
    let mut resp = (status, no_store(), Json(json!({"error": e.error, "error_description": e.description}))).into_response();
    let challenge = match e.error {
        "invalid_client" => Some("Basic realm=\"tongban\"".to_string()),
        "invalid_token" | "insufficient_scope" => {
            Some(format!("Bearer error=\"{}\", error_description=\"{}\"", e.error, e.description.replace('"', "'")))
        }
        _ => None,
    };
    if let Some(c) = challenge.and_then(|c| HeaderValue::from_str(&c).ok()) {
        resp.headers_mut().insert(header::WWW_AUTHENTICATE, c);
    }
    if status == StatusCode::TOO_MANY_REQUESTS {
        resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("900"));
    }
    resp
}

fn no_store() -> [(header::HeaderName, &'static str); 2] {
    [(header::CACHE_CONTROL, "no-store"), (header::PRAGMA, "no-cache")]
}

fn form<T: serde::de::DeserializeOwned + Default>(body: &Bytes) -> Result<T, OAuthError> {
    if body.is_empty() {
        return Ok(T::default());
    }
    serde_urlencoded::from_bytes(body).map_err(|_| OAuthError::invalid_request("the body must be application/x-www-form-urlencoded"))
}

/// `Authorization: Basic` client credentials (each part form-urlencoded, RFC 6749 §2.3.1).
fn basic_credentials(headers: &HeaderMap) -> Result<Option<(String, String)>, OAuthError> {
    let Some(b64) = crate::ctx::authorization(headers, "Basic") else { return Ok(None) };
    let bad = || OAuthError::invalid_client("malformed Basic credentials");
    let text = String::from_utf8(STANDARD.decode(b64.trim()).map_err(|_| bad())?).map_err(|_| bad())?;
    let (id, secret) = text.split_once(':').ok_or_else(bad)?;
    Ok(Some((percent_decode(id), percent_decode(secret))))
}

async fn discovery(State(state): State<AppState>, params: PathParams) -> Response {
    match Realm::parse(params.text("realm")) {
        Some(realm) => ([(header::CONTENT_TYPE, "application/json")], state.oidc.discovery_text(realm).to_string()).into_response(),
        None => unknown_realm(),
    }
}

async fn jwks(State(state): State<AppState>, params: PathParams) -> Response {
    let Some(realm) = Realm::parse(params.text("realm")) else { return unknown_realm() };
    match state.oidc.keys.jwks_text(realm).await {
        Ok(text) => {
            ([(header::CACHE_CONTROL, "public, max-age=300"), (header::CONTENT_TYPE, "application/json")], text.to_string()).into_response()
        }
        Err(e) => oauth_json(&e.into()),
    }
}

/// The logged-in subject of `realm`, if any: a completed staff log-in (not an API token) for the
/// staff realm, a public log-in for the public realm.
fn subject(ctx: &Ctx, realm: Realm) -> Option<Subject> {
    match realm {
        Realm::Staff => {
            let s = ctx.session.as_ref().filter(|s| s.api_write.is_none() && s.session_id != 0)?;
            let p = s.principal().ok()?;
            Some(Subject { realm, id: p.user_id, session_id: s.session_id })
        }
        Realm::Public => ctx.public.as_ref().map(|p| Subject { realm, id: p.account_id, session_id: p.session_id }),
    }
}

#[derive(Template)]
#[template(path = "oidc_message.html")]
struct MessagePage {
    l: Layout,
    heading: String,
    message: String,
    link: Option<String>,
}

fn message_page(ctx: &Ctx, status: StatusCode, heading: &str, message: String, link: Option<String>) -> PageResult {
    render_status(status, &MessagePage { l: Layout::new(ctx, "oidc.title", ""), heading: heading.to_string(), message, link })
}

#[derive(Template)]
#[template(path = "oidc_continue.html")]
struct ContinuePage {
    l: Layout,
    url: String,
}

/// Continues to `url` with a page that refreshes to it, not a redirect: after a form (log-in,
/// consent, log-out confirmation) browsers hold every redirect of the chain to the page's
/// `form-action 'self'`, which would block the step to the relying party's site.
pub fn continue_page(ctx: &Ctx, url: &str) -> PageResult {
    let mut resp = render_status(StatusCode::OK, &ContinuePage { l: Layout::new(ctx, "oidc.title", ""), url: url.to_string() })?;
    resp.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp.headers_mut().insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    Ok(resp)
}

#[derive(Template)]
#[template(path = "oidc_consent.html")]
struct ConsentPage {
    l: Layout,
    realm: &'static str,
    client_name: String,
    logo_url: String,
    scopes: Vec<String>,
    fields: Vec<(&'static str, String)>,
}

fn request_fields(req: &AuthorizeRequest) -> Vec<(&'static str, String)> {
    let pairs = [
        ("response_type", &req.response_type),
        ("client_id", &req.client_id),
        ("redirect_uri", &req.redirect_uri),
        ("scope", &req.scope),
        ("state", &req.state),
        ("nonce", &req.nonce),
        ("code_challenge", &req.code_challenge),
        ("code_challenge_method", &req.code_challenge_method),
        ("max_age", &req.max_age),
        ("acr_values", &req.acr_values),
    ];
    pairs.into_iter().filter_map(|(k, v)| v.clone().map(|v| (k, v))).collect()
}

/// Continues an authorization request for a logged-in subject: consent page or code.
async fn proceed(state: &AppState, ctx: &Ctx, realm: Realm, req: &AuthorizeRequest, valid: ValidRequest, subject: Subject) -> PageResult {
    let issuer = state.oidc.issuer(realm);
    let needs = match state.oidc.needs_consent(&subject, &valid).await {
        Ok(n) => n,
        Err(e) => return Ok(Redirect::to(&valid.error_redirect(&issuer, &e)).into_response()),
    };
    if needs {
        if valid.prompt.iter().any(|p| p == "none") {
            return Ok(
                Redirect::to(&valid.error_redirect(&issuer, &OAuthError::consent_required("the user has not consented"))).into_response()
            );
        }
        let view = ConsentPage {
            l: Layout::new(ctx, "oidc.consent_title", ""),
            realm: realm.as_str(),
            client_name: valid.client.name.clone(),
            logo_url: valid.client.logo_url.clone(),
            scopes: valid.scopes.iter().map(|s| format!("oidc.scope_{s}")).collect(),
            fields: request_fields(req),
        };
        return render_status(StatusCode::OK, &view);
    }
    issue(state, ctx, realm, &valid, subject, false).await
}

async fn issue(state: &AppState, ctx: &Ctx, realm: Realm, valid: &ValidRequest, subject: Subject, consented: bool) -> PageResult {
    match state.oidc.issue_code(&subject, valid, consented, &ctx.actor()).await {
        Ok(url) => Ok((no_store(), Redirect::to(&url)).into_response()),
        Err(e) => Ok(Redirect::to(&valid.error_redirect(&state.oidc.issuer(realm), &e)).into_response()),
    }
}

fn authorize_failure(ctx: &Ctx, state: &AppState, realm: Realm, e: AuthorizeError) -> PageResult {
    match e {
        AuthorizeError::Page(e) => message_page(ctx, StatusCode::BAD_REQUEST, e.error, e.description, None),
        AuthorizeError::Redirect(valid, e) => Ok(Redirect::to(&valid.error_redirect(&state.oidc.issuer(realm), &e)).into_response()),
    }
}

/// `GET /realms/{realm}/authorize`.
async fn authorize(State(state): State<AppState>, ctx: Ctx, params: PathParams, uri: axum::http::Uri) -> PageResult {
    let Some(realm) = Realm::parse(params.text("realm")) else {
        return message_page(&ctx, StatusCode::NOT_FOUND, "invalid_request", "unknown realm".into(), None);
    };
    let req: AuthorizeRequest = serde_urlencoded::from_str(uri.query().unwrap_or("")).unwrap_or_default();
    let valid = match state.oidc.check_authorize(realm, &req).await {
        Ok(v) => v,
        Err(e) => return authorize_failure(&ctx, &state, realm, e),
    };
    let none = valid.prompt.iter().any(|p| p == "none");
    match subject(&ctx, realm) {
        Some(s) => match state.oidc.reauthentication_needed(&s, &valid).await {
            Ok(None) => proceed(&state, &ctx, realm, &req, valid, s).await,
            Ok(Some(_)) if none => {
                let e = OAuthError::login_required("the client asks for a fresh or stronger log-in");
                Ok(Redirect::to(&valid.error_redirect(&state.oidc.issuer(realm), &e)).into_response())
            }
            Ok(Some(why)) => Ok(to_login(realm, uri.query().unwrap_or(""), Some(why))),
            Err(e) => Ok(Redirect::to(&valid.error_redirect(&state.oidc.issuer(realm), &e)).into_response()),
        },
        None if none => {
            Ok(Redirect::to(&valid.error_redirect(&state.oidc.issuer(realm), &OAuthError::login_required("nobody is logged in")))
                .into_response())
        }
        None => Ok(to_login(realm, uri.query().unwrap_or(""), None)),
    }
}

/// Sends the browser to the realm's log-in page (re-authentication when `why` is given),
/// remembering the authorization request to continue afterwards.
fn to_login(realm: Realm, query: &str, why: Option<Reauth>) -> Response {
    let back = format!("/realms/{}/authorize?{}", realm.as_str(), strip_prompt_login(query));
    let encoded: String = serde_urlencoded::to_string([("", back)]).unwrap_or_default().trim_start_matches('=').to_string();
    let cookie = format!("{RETURN_COOKIE}={encoded}; Path=/; HttpOnly; SameSite=Lax; Max-Age=600");
    let login = match realm {
        Realm::Staff => "/login",
        Realm::Public => "/public/login",
    };
    let target = match why {
        None => login.to_string(),
        Some(Reauth::Forced | Reauth::TooOld) => format!("{login}?reauth=fresh"),
        Some(Reauth::Stronger(Acr::Hwk)) => format!("{login}?reauth=hwk"),
        Some(Reauth::Stronger(_)) => format!("{login}?reauth=mfa"),
    };
    ([(header::SET_COOKIE, cookie)], Redirect::to(&target)).into_response()
}

/// After a forced log-in the request continues without `prompt=login` (or it would loop).
fn strip_prompt_login(query: &str) -> String {
    query.split('&').filter(|p| *p != "prompt=login").collect::<Vec<_>>().join("&")
}

/// The consent form's fields.
#[derive(Debug, Default, Deserialize)]
struct ConsentForm {
    #[serde(flatten)]
    req: AuthorizeRequest,
    #[serde(default)]
    decision: String,
}

/// `POST /realms/{realm}/authorize`: the user's answer on the consent page.
async fn consent(State(state): State<AppState>, ctx: Ctx, params: PathParams, body: Bytes) -> PageResult {
    let Some(realm) = Realm::parse(params.text("realm")) else {
        return message_page(&ctx, StatusCode::NOT_FOUND, "invalid_request", "unknown realm".into(), None);
    };
    let f: ConsentForm = form(&body).unwrap_or_default();
    let valid = match state.oidc.check_authorize(realm, &f.req).await {
        Ok(v) => v,
        Err(e) => return authorize_failure(&ctx, &state, realm, e),
    };
    let Some(subject) = subject(&ctx, realm) else {
        return Ok(Redirect::to(&valid.error_redirect(&state.oidc.issuer(realm), &OAuthError::login_required("the log-in has ended")))
            .into_response());
    };
    // A form: continue by page, not redirect (see `continue_page`).
    if f.decision != "allow" {
        return continue_page(&ctx, &valid.error_redirect(&state.oidc.issuer(realm), &OAuthError::access_denied("the user declined")));
    }
    match state.oidc.issue_code(&subject, &valid, true, &ctx.actor()).await {
        Ok(url) => continue_page(&ctx, &url),
        Err(e) => continue_page(&ctx, &valid.error_redirect(&state.oidc.issuer(realm), &e)),
    }
}

/// `POST /realms/{realm}/token`.
async fn token(State(state): State<AppState>, ctx: Ctx, params: PathParams, headers: HeaderMap, body: Bytes) -> Response {
    let Some(realm) = Realm::parse(params.text("realm")) else { return unknown_realm() };
    let run = async {
        let f: TokenRequest = form(&body)?;
        let basic = basic_credentials(&headers)?;
        state.oidc.token(realm, &f, basic, &ctx.actor()).await
    };
    let resp = match run.await {
        Ok(v) => (no_store(), Json(v)).into_response(),
        Err(e) => oauth_json(&e),
    };
    allow_origin(&state, realm, &headers, resp).await
}

/// The userinfo form: the access token in the body (RFC 6750 §2.2).
#[derive(Debug, Default, Deserialize)]
struct UserinfoForm {
    #[serde(default)]
    access_token: Option<String>,
}

/// The access token of a userinfo request: `Authorization: Bearer` (any case of the scheme,
/// RFC 6750 §2.1) or, on a form POST, the `access_token` field (§2.2); both at once is refused.
fn userinfo_token(headers: &HeaderMap, body: &Bytes) -> Result<String, OAuthError> {
    let header_token = crate::ctx::authorization(headers, "Bearer");
    let is_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().to_ascii_lowercase().starts_with("application/x-www-form-urlencoded"));
    let body_token = if is_form && !body.is_empty() { form::<UserinfoForm>(body)?.access_token.filter(|t| !t.is_empty()) } else { None };
    match (header_token, body_token) {
        (Some(_), Some(_)) => Err(OAuthError::invalid_request("send the access token once: in the header or in the body")),
        (Some(t), None) => Ok(t.to_string()),
        (None, Some(t)) if t.len() <= 4096 => Ok(t),
        (None, Some(_)) => Err(OAuthError::invalid_request("access_token is too long")),
        (None, None) => Err(OAuthError::invalid_token("a Bearer access token is required")),
    }
}

/// `GET|POST /realms/{realm}/userinfo` with `Authorization: Bearer`, or a POST form with
/// `access_token` (OIDC Core §5.3.1).
async fn userinfo(State(state): State<AppState>, params: PathParams, headers: HeaderMap, body: Bytes) -> Response {
    let Some(realm) = Realm::parse(params.text("realm")) else { return unknown_realm() };
    let run = async {
        let token = userinfo_token(&headers, &body)?;
        state.oidc.userinfo(realm, &token).await
    };
    let resp = match run.await {
        Ok(v) => (no_store(), Json(v)).into_response(),
        Err(e) => oauth_json(&e),
    };
    allow_origin(&state, realm, &headers, resp).await
}

/// Introspection and revocation forms.
#[derive(Debug, Default, Deserialize)]
struct TokenForm {
    #[serde(default)]
    token: String,
    #[serde(default)]
    #[allow(dead_code)]
    token_type_hint: Option<String>,
    #[serde(default)]
    client_id: Option<String>,
    #[serde(default)]
    client_secret: Option<String>,
}

async fn token_form_client(
    state: &AppState,
    realm: Realm,
    (headers, actor): (&HeaderMap, &tongban_audit::Actor),
    body: &Bytes,
) -> Result<(TokenForm, tongban_oidc::clients::Client), OAuthError> {
    let f: TokenForm = form(body)?;
    if f.token.is_empty() || f.token.len() > 4096 {
        return Err(OAuthError::invalid_request("token is missing or too long"));
    }
    let basic = basic_credentials(headers)?;
    let client = state.oidc.client_of_request(realm, f.client_id.as_deref(), f.client_secret.as_deref(), basic, actor).await?;
    Ok((f, client))
}

/// `POST /realms/{realm}/introspect` (RFC 7662).
async fn introspect(State(state): State<AppState>, ctx: Ctx, params: PathParams, headers: HeaderMap, body: Bytes) -> Response {
    let Some(realm) = Realm::parse(params.text("realm")) else { return unknown_realm() };
    let run = async {
        let (f, client) = token_form_client(&state, realm, (&headers, &ctx.actor()), &body).await?;
        state.oidc.introspect(realm, &client, &f.token).await
    };
    match run.await {
        Ok(v) => (no_store(), Json::<Value>(v)).into_response(),
        Err(e) => oauth_json(&e),
    }
}

/// `POST /realms/{realm}/revoke` (RFC 7009).
async fn revoke(State(state): State<AppState>, ctx: Ctx, params: PathParams, headers: HeaderMap, body: Bytes) -> Response {
    let Some(realm) = Realm::parse(params.text("realm")) else { return unknown_realm() };
    let run = async {
        let (f, client) = token_form_client(&state, realm, (&headers, &ctx.actor()), &body).await?;
        state.oidc.revoke(realm, &client, &f.token, &ctx.actor()).await
    };
    match run.await {
        Ok(()) => (StatusCode::OK, no_store()).into_response(),
        Err(e) => oauth_json(&e),
    }
}

#[derive(Template)]
#[template(path = "oidc_logout.html")]
struct LogoutPage {
    l: Layout,
    realm: &'static str,
    fields: Vec<(&'static str, String)>,
}

fn logout_fields(r: &LogoutRequest) -> Vec<(&'static str, String)> {
    [
        ("id_token_hint", &r.id_token_hint),
        ("post_logout_redirect_uri", &r.post_logout_redirect_uri),
        ("state", &r.state),
        ("client_id", &r.client_id),
    ]
    .into_iter()
    .filter_map(|(k, v)| v.clone().map(|v| (k, v)))
    .collect()
}

/// `GET /realms/{realm}/logout` (RP-initiated logout): with a valid ID token hint for the
/// logged-in user the log-out happens at once; otherwise the user confirms.
async fn logout(State(state): State<AppState>, ctx: Ctx, params: PathParams, uri: axum::http::Uri) -> PageResult {
    let Some(realm) = Realm::parse(params.text("realm")) else {
        return message_page(&ctx, StatusCode::NOT_FOUND, "invalid_request", "unknown realm".into(), None);
    };
    let req: LogoutRequest = serde_urlencoded::from_str(uri.query().unwrap_or("")).unwrap_or_default();
    let (target, hinted) = match state.oidc.check_logout(realm, &req).await {
        Ok(t) => t,
        Err(e) => return message_page(&ctx, StatusCode::BAD_REQUEST, e.error, e.description, None),
    };
    let current = subject(&ctx, realm);
    match (current, hinted) {
        (Some(s), Some(sub)) if sub == s.id.to_string() => end_session(&state, &ctx, realm, s, target).await,
        (None, _) => done_page(&ctx, target),
        _ => render_status(
            StatusCode::OK,
            &LogoutPage { l: Layout::new(&ctx, "oidc.logout_title", ""), realm: realm.as_str(), fields: logout_fields(&req) },
        ),
    }
}

/// `POST /realms/{realm}/logout`: the user confirmed.
async fn logout_confirmed(State(state): State<AppState>, ctx: Ctx, params: PathParams, body: Bytes) -> PageResult {
    let Some(realm) = Realm::parse(params.text("realm")) else {
        return message_page(&ctx, StatusCode::NOT_FOUND, "invalid_request", "unknown realm".into(), None);
    };
    let req: LogoutRequest = form(&body).unwrap_or_default();
    let (target, _) = match state.oidc.check_logout(realm, &req).await {
        Ok(t) => t,
        Err(e) => return message_page(&ctx, StatusCode::BAD_REQUEST, e.error, e.description, None),
    };
    // A confirmed form: continue by page, not redirect (see `continue_page`).
    let resp = match subject(&ctx, realm) {
        Some(s) => end_session(&state, &ctx, realm, s, None).await?,
        None => done_page(&ctx, None)?,
    };
    match target {
        Some(t) => {
            let mut page = continue_page(&ctx, &t)?;
            for v in resp.headers().get_all(header::SET_COOKIE) {
                page.headers_mut().append(header::SET_COOKIE, v.clone());
            }
            Ok(page)
        }
        None => Ok(resp),
    }
}

fn done_page(ctx: &Ctx, target: Option<String>) -> PageResult {
    match target {
        Some(t) => Ok(Redirect::to(&t).into_response()),
        None => message_page(ctx, StatusCode::OK, ctx.tr.t("oidc.logged_out"), ctx.tr.t("oidc.logged_out_text").to_string(), None),
    }
}

/// Ends the realm's log-in session here and for every client it reached.
async fn end_session(state: &AppState, ctx: &Ctx, realm: Realm, s: Subject, target: Option<String>) -> PageResult {
    let actor = ctx.actor();
    let clear = match realm {
        Realm::Staff => {
            if let Some(session) = &ctx.session {
                state.identity.revoke_session(session, &actor, s.session_id).await?;
            }
            crate::ctx::clear_session_cookie()
        }
        Realm::Public => {
            if let Some(p) = &ctx.public {
                state.identity.logout_public(p, &actor).await?;
            }
            format!("{}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0", crate::ctx::PUBLIC_COOKIE)
        }
    };
    state.oidc.session_ended(realm, s.session_id, s.id, &actor).await?;
    let mut resp = done_page(ctx, target)?;
    if let Ok(v) = HeaderValue::from_str(&clear) {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_protocol_paths_skip_the_session_layer() {
        assert!(is_protocol_endpoint("/realms/staff/token"));
        assert!(is_protocol_endpoint("/realms/public/.well-known/openid-configuration"));
        assert!(!is_protocol_endpoint("/realms/staff/authorize"));
        assert!(!is_protocol_endpoint("/api/v1/token"));
    }

    #[test]
    fn continuations_must_be_authorization_requests() {
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, HeaderValue::from_static("tb_return=%2Frealms%2Fstaff%2Fauthorize%3Fclient_id%3Doa"));
        assert_eq!(saved_return(&h).as_deref(), Some("/realms/staff/authorize?client_id=oa"));
        h.insert(header::COOKIE, HeaderValue::from_static("tb_return=https%3A%2F%2Fevil.example%2F"));
        assert_eq!(saved_return(&h), None, "no open redirect");
        assert_eq!(strip_prompt_login("a=1&prompt=login&b=2"), "a=1&b=2");
    }
}
