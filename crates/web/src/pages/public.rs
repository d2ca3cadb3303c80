//! The public side for citizens and enterprises (公众服务): real-name registration, log-in and
//! log-out, and their home page. Responsive; no JavaScript needed.

use askama::Template;
use axum::{
    extract::State,
    http::{StatusCode, header},
    response::{IntoResponse, Redirect},
};
use serde::Deserialize;
use tongban_identity::PublicRegistration;

use super::{
    Layout, PageResult,
    auth::{ReauthQuery, reauth_reason},
    form_error, render, render_status,
};
use crate::{
    ctx::{Ctx, PUBLIC_COOKIE},
    error::PageError,
    parse::{PageForm, QueryOf},
    state::AppState,
};

pub(crate) fn public_cookie(state: &AppState, secret: &str) -> String {
    let secure = if state.secure_cookies() { "; Secure" } else { "" };
    format!("{PUBLIC_COOKIE}={secret}; Path=/; HttpOnly; SameSite=Lax{secure}")
}

#[derive(Template)]
#[template(path = "public_register.html")]
struct RegisterPage {
    l: Layout,
    f: RegisterForm,
    error: String,
    error_field: String,
}

/// The registration form.
#[derive(Deserialize, Default, Clone)]
pub struct RegisterForm {
    #[serde(default)]
    kind: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    cert_no: String,
    #[serde(default)]
    phone: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    password_again: String,
}

/// `GET /public/register`.
pub async fn register_page(ctx: Ctx) -> PageResult {
    let f = RegisterForm { kind: "person".into(), ..RegisterForm::default() };
    render(&RegisterPage { l: Layout::new(&ctx, "public.register", "public"), f, error: String::new(), error_field: String::new() })
}

/// `POST /public/register`: creates the account and logs it in.
pub async fn register(State(state): State<AppState>, ctx: Ctx, PageForm(f): PageForm<RegisterForm>) -> PageResult {
    let refuse = |f: RegisterForm, (field, message): (String, String)| {
        let mut f = f;
        f.password.clear();
        f.password_again.clear();
        render_status(
            StatusCode::UNPROCESSABLE_ENTITY,
            &RegisterPage { l: Layout::new(&ctx, "public.register", "public"), f, error: message, error_field: field },
        )
    };
    if f.password != f.password_again {
        let e = tongban_platform::DomainError::invalid("password_again", "error.password_mismatch");
        return refuse(f, form_error(&ctx.tr, e)?);
    }
    let reg = PublicRegistration {
        kind: f.kind.clone(),
        name: f.name.clone(),
        cert_no: f.cert_no.clone(),
        phone: f.phone.clone(),
        email: f.email.clone(),
        password: f.password.clone(),
    };
    if let Err(e) = state.identity.register_public(&reg, &ctx.ip, &ctx.user_agent).await {
        return refuse(f, form_error(&ctx.tr, e)?);
    }
    let secret = state.identity.login_public(&reg.phone, &reg.password, &ctx.ip, &ctx.user_agent).await?;
    Ok(([(header::SET_COOKIE, public_cookie(&state, &secret))], Redirect::to("/public?done=registered")).into_response())
}

#[derive(Template)]
#[template(path = "public_login.html")]
struct LoginPage {
    l: Layout,
    login: String,
    error: String,
    reauth: String,
    passkey_origin: String,
}

impl LoginPage {
    fn new(state: &AppState, ctx: &Ctx, login: String, error: String, reauth: String) -> Self {
        let passkey_origin = state.identity.passkey_origin().unwrap_or_default().to_string();
        LoginPage { l: Layout::new(ctx, "public.login", "public"), login, error, reauth, passkey_origin }
    }
}

/// The log-in form.
#[derive(Deserialize, Default)]
pub struct LoginForm {
    #[serde(default)]
    login: String,
    #[serde(default)]
    password: String,
    /// Set when re-authenticating the current session.
    #[serde(default)]
    reauth: String,
}

/// `GET /public/login`.
pub async fn login_page(State(state): State<AppState>, ctx: Ctx, QueryOf(q): QueryOf<ReauthQuery>) -> PageResult {
    let reauth = reauth_reason(&q.reauth);
    // A citizen asked to log in again keeps the account; the form only asks for the password.
    let login = match &ctx.public {
        Some(p) if !reauth.is_empty() => p.phone.clone(),
        _ => String::new(),
    };
    let reauth = if login.is_empty() { String::new() } else { reauth };
    render(&LoginPage::new(&state, &ctx, login, String::new(), reauth))
}

/// `POST /public/login` (also re-authentication of the current session).
pub async fn login(State(state): State<AppState>, ctx: Ctx, PageForm(f): PageForm<LoginForm>) -> PageResult {
    let reauth = reauth_reason(&f.reauth);
    let result = match &ctx.public {
        Some(p) if !reauth.is_empty() => state.identity.reauthenticate_public(p, &f.password, &ctx.actor()).await.map(|_| None),
        _ => state.identity.login_public(&f.login, &f.password, &ctx.ip, &ctx.user_agent).await.map(Some),
    };
    match result {
        Ok(Some(secret)) => {
            // A citizen who asked for a code at log-in goes to the code page first.
            let pending = state.identity.code_login(&secret).await?.is_some_and(|c| c.pending);
            let next = if pending { "/public/login/otp" } else { "/public" };
            Ok(([(header::SET_COOKIE, public_cookie(&state, &secret))], Redirect::to(next)).into_response())
        }
        Ok(None) => Ok(Redirect::to("/public").into_response()),
        Err(e @ (tongban_platform::DomainError::Database(_) | tongban_platform::DomainError::Internal(_))) => Err(PageError(e)),
        Err(e) => {
            let message = crate::error::message(&ctx.tr, &e);
            let status = match e {
                tongban_platform::DomainError::Locked(_) => StatusCode::TOO_MANY_REQUESTS,
                tongban_platform::DomainError::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
                _ => StatusCode::UNAUTHORIZED,
            };
            render_status(status, &LoginPage::new(&state, &ctx, f.login, message, reauth))
        }
    }
}

/// `POST /public/logout`.
pub async fn logout(State(state): State<AppState>, ctx: Ctx) -> PageResult {
    if let Some(p) = &ctx.public {
        state.identity.logout_public(p, &ctx.actor()).await?;
        state.oidc.session_ended(tongban_oidc::Realm::Public, p.session_id, p.account_id, &ctx.actor()).await?;
    }
    let clear = format!("{PUBLIC_COOKIE}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0");
    Ok(([(header::SET_COOKIE, clear)], Redirect::to("/public/login")).into_response())
}
