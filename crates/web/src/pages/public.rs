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

use super::{Layout, PageResult, form_error, render, render_status};
use crate::{
    ctx::{Ctx, PUBLIC_COOKIE},
    parse::PageForm,
    state::AppState,
};

fn public_cookie(state: &AppState, secret: &str) -> String {
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
}

/// The log-in form.
#[derive(Deserialize, Default)]
pub struct LoginForm {
    #[serde(default)]
    login: String,
    #[serde(default)]
    password: String,
}

/// `GET /public/login`.
pub async fn login_page(ctx: Ctx) -> PageResult {
    render(&LoginPage { l: Layout::new(&ctx, "public.login", "public"), login: String::new(), error: String::new() })
}

/// `POST /public/login`.
pub async fn login(State(state): State<AppState>, ctx: Ctx, PageForm(f): PageForm<LoginForm>) -> PageResult {
    match state.identity.login_public(&f.login, &f.password, &ctx.ip, &ctx.user_agent).await {
        Ok(secret) => Ok(([(header::SET_COOKIE, public_cookie(&state, &secret))], Redirect::to("/public")).into_response()),
        Err(e) => {
            let message = crate::error::message(&ctx.tr, &e);
            let status = if matches!(e, tongban_platform::DomainError::Locked(_)) {
                StatusCode::TOO_MANY_REQUESTS
            } else {
                StatusCode::UNAUTHORIZED
            };
            render_status(status, &LoginPage { l: Layout::new(&ctx, "public.login", "public"), login: f.login, error: message })
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
