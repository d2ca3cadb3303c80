//! One-time codes on the public side (短信/邮件验证码): the code page after a password when the
//! citizen asked for a second factor, the same page for step-up when a system demands more than a
//! password (`acr_values` mfa), and the citizen's choice of channel.

use askama::Template;
use axum::{
    extract::State,
    http::{HeaderMap, StatusCode},
};
use serde::Deserialize;
use tongban_identity::CodeLogin;
use tongban_platform::DomainError;

use super::{Layout, PageResult, form_error, render_status, see_other};
use crate::{
    ctx::{Ctx, PUBLIC_COOKIE},
    error::PageError,
    parse::{PageForm, QueryOf},
    state::AppState,
};

#[derive(Template)]
#[template(path = "public_code.html")]
struct CodePage {
    l: Layout,
    masked_to: String,
    channel_key: &'static str,
    sent: bool,
    error: String,
}

/// `?sent=1` after a code went out.
#[derive(Deserialize, Default)]
pub struct Sent {
    #[serde(default)]
    sent: String,
}

/// The code form.
#[derive(Deserialize)]
pub struct CodeForm {
    #[serde(default)]
    code: String,
}

/// The channel choice on the home page.
#[derive(Deserialize)]
pub struct OtpChoice {
    #[serde(default)]
    login_otp: String,
}

/// The session behind the public cookie that may enter a code, or the log-in page.
async fn code_login(state: &AppState, headers: &HeaderMap) -> Result<Option<CodeLogin>, PageError> {
    let secret = crate::ctx::cookie(headers, PUBLIC_COOKIE).unwrap_or("");
    Ok(state.identity.code_login(secret).await?)
}

fn page(ctx: &Ctx, login: &CodeLogin, sent: bool, status: StatusCode, error: String) -> PageResult {
    let channel_key = match login.channel {
        tongban_identity::LoginOtp::Email => "otp.by_email",
        _ => "otp.by_sms",
    };
    let view = CodePage { l: Layout::new(ctx, "otp.title", "public"), masked_to: login.masked_to.clone(), channel_key, sent, error };
    render_status(status, &view)
}

/// `GET /public/login/otp`.
pub async fn show(State(state): State<AppState>, ctx: Ctx, headers: HeaderMap, QueryOf(q): QueryOf<Sent>) -> PageResult {
    let Some(login) = code_login(&state, &headers).await? else { return see_other("/public/login") };
    page(&ctx, &login, !q.sent.is_empty() || login.pending, StatusCode::OK, String::new())
}

/// `POST /public/login/otp/send`: a new code (rate-limited).
pub async fn send(State(state): State<AppState>, ctx: Ctx, headers: HeaderMap) -> PageResult {
    let Some(login) = code_login(&state, &headers).await? else { return see_other("/public/login") };
    match state.identity.send_login_code(&login, &ctx.actor()).await {
        Ok(()) => see_other("/public/login/otp?sent=1"),
        Err(e @ DomainError::Locked(_)) => page(&ctx, &login, false, StatusCode::TOO_MANY_REQUESTS, crate::error::message(&ctx.tr, &e)),
        Err(e) => Err(PageError(e)),
    }
}

/// `POST /public/login/otp`: checks the code; the log-in (or step-up) completes.
pub async fn verify(State(state): State<AppState>, ctx: Ctx, headers: HeaderMap, PageForm(f): PageForm<CodeForm>) -> PageResult {
    let Some(login) = code_login(&state, &headers).await? else { return see_other("/public/login") };
    match state.identity.verify_login_code(&login, &f.code, &ctx.actor()).await {
        Ok(()) => see_other("/public"),
        Err(e @ DomainError::Locked(_)) => Err(PageError(e)),
        Err(e) => {
            let (_, msg) = form_error(&ctx.tr, e)?;
            page(&ctx, &login, false, StatusCode::UNPROCESSABLE_ENTITY, msg)
        }
    }
}

/// `POST /public/account/login-otp`: the citizen's choice of second factor.
pub async fn choose(State(state): State<AppState>, ctx: Ctx, PageForm(f): PageForm<OtpChoice>) -> PageResult {
    let me = ctx.citizen()?;
    match state.identity.set_login_otp(me, &ctx.actor(), &f.login_otp).await {
        Ok(()) => see_other("/public?done=otp_saved"),
        Err(e) => Err(PageError(e)),
    }
}
