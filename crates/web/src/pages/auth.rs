//! Log-in pages: password, TOTP, enrolment, forced password change, log-out.

use askama::Template;
use axum::{
    extract::State,
    http::{StatusCode, header},
    response::{IntoResponse, Redirect},
};
use serde::Deserialize;
use tongban_identity::Stage;
use tongban_platform::DomainError;

use super::{Layout, PageResult, form_error, render, render_status, see_other};
use crate::{
    ctx::Ctx,
    error::PageError,
    parse::{PageForm, QueryOf},
    state::AppState,
};

/// Where a session at `stage` goes next.
pub fn stage_path(stage: Stage) -> &'static str {
    match stage {
        Stage::Totp => "/login/totp",
        Stage::PasswordChange => "/login/password",
        Stage::TotpEnroll => "/login/enrol",
        Stage::Complete => "/workbench",
    }
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    l: Layout,
    username: String,
    error: String,
    /// Re-authentication of the current session: why (`fresh`, `mfa`, `hwk`), else empty.
    reauth: String,
    /// The origin passkeys work on (empty: none configured).
    passkey_origin: String,
    /// Whether a proxy passes client certificates (the certificate log-in link).
    cert_login: bool,
}

impl LoginPage {
    fn new(state: &AppState, ctx: &Ctx, username: String, error: String, reauth: String) -> Self {
        let passkey_origin = state.identity.passkey_origin().unwrap_or_default().to_string();
        let cert_login = !state.config.security.client_cert_header.is_empty();
        LoginPage { l: Layout::new(ctx, "login.title", ""), username, error, reauth, passkey_origin, cert_login }
    }
}

/// The log-in page showing why a log-in was refused (certificate log-in through the proxy).
pub fn refused_login(state: &AppState, ctx: &Ctx, e: &DomainError) -> PageResult {
    let status = match e {
        DomainError::Locked(_) => StatusCode::TOO_MANY_REQUESTS,
        DomainError::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
        DomainError::NotFound(_) => StatusCode::NOT_FOUND,
        _ => StatusCode::UNAUTHORIZED,
    };
    render_status(status, &LoginPage::new(state, ctx, String::new(), crate::error::message(&ctx.tr, e), String::new()))
}

#[derive(Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    /// Set when re-authenticating the current session.
    #[serde(default)]
    reauth: String,
}

/// Why a relying party sent the browser back to log in again (`?reauth=`).
#[derive(Deserialize, Default)]
pub struct ReauthQuery {
    #[serde(default)]
    pub reauth: String,
}

/// The known reasons for re-authentication (anything else is shown as `fresh`).
pub fn reauth_reason(q: &str) -> String {
    match q {
        "" => String::new(),
        "mfa" | "hwk" => q.to_string(),
        _ => "fresh".to_string(),
    }
}

pub async fn login_page(State(state): State<AppState>, ctx: Ctx, QueryOf(q): QueryOf<ReauthQuery>) -> PageResult {
    let reauth = reauth_reason(&q.reauth);
    match &ctx.session {
        // A complete session asked to log in again keeps its user name.
        Some(s) if s.stage == Stage::Complete && !reauth.is_empty() => {
            render(&LoginPage::new(&state, &ctx, s.username.clone(), String::new(), reauth))
        }
        Some(s) => see_other(stage_path(s.stage)),
        None => render(&LoginPage::new(&state, &ctx, String::new(), String::new(), String::new())),
    }
}

pub async fn login_submit(State(state): State<AppState>, ctx: Ctx, PageForm(form): PageForm<LoginForm>) -> PageResult {
    let reauth = reauth_reason(&form.reauth);
    let result = match &ctx.session {
        Some(s) if s.stage == Stage::Complete && !reauth.is_empty() => {
            state.identity.reauthenticate(s, &form.password, &ctx.actor()).await.map(|stage| (None, stage))
        }
        _ => state
            .identity
            .login_password(&form.username, &form.password, &ctx.ip, &ctx.user_agent)
            .await
            .map(|r| (Some(r.session_secret), r.stage)),
    };
    match result {
        Ok((Some(secret), stage)) => {
            let cookie = crate::ctx::session_cookie(&state, &secret);
            Ok(([(header::SET_COOKIE, cookie)], Redirect::to(stage_path(stage))).into_response())
        }
        Ok((None, stage)) => see_other(stage_path(stage)),
        Err(e @ (DomainError::Unauthenticated(_) | DomainError::Locked(_) | DomainError::Invalid(_))) => {
            let status = match e {
                DomainError::Locked(_) => StatusCode::TOO_MANY_REQUESTS,
                DomainError::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
                _ => StatusCode::UNAUTHORIZED,
            };
            let error = crate::error::message(&ctx.tr, &e);
            render_status(status, &LoginPage::new(&state, &ctx, form.username, error, reauth))
        }
        Err(e) => Err(PageError(e)),
    }
}

#[derive(Template)]
#[template(path = "login_totp.html")]
struct TotpPage {
    l: Layout,
    error: String,
}

#[derive(Deserialize)]
pub struct CodeForm {
    #[serde(default)]
    totp_code: String,
}

/// Where to send a request that is not at `stage` of the log-in, if anywhere.
fn wrong_stage(ctx: &Ctx, stage: Stage) -> Option<&'static str> {
    match &ctx.session {
        None => Some("/login"),
        Some(s) if s.stage != stage => Some(stage_path(s.stage)),
        Some(_) => None,
    }
}

pub async fn totp_page(ctx: Ctx) -> PageResult {
    if let Some(to) = wrong_stage(&ctx, Stage::Totp) {
        return see_other(to);
    }
    render(&TotpPage { l: Layout::new(&ctx, "totp.title", ""), error: String::new() })
}

pub async fn totp_submit(State(state): State<AppState>, ctx: Ctx, PageForm(form): PageForm<CodeForm>) -> PageResult {
    if let Some(to) = wrong_stage(&ctx, Stage::Totp) {
        return see_other(to);
    }
    let session = ctx.session()?;
    match state.identity.login_totp(session, &ctx.actor(), &form.totp_code).await {
        Ok(stage) => see_other(stage_path(stage)),
        Err(DomainError::Locked(k)) => Err(PageError(DomainError::Locked(k))),
        Err(e) => {
            let (_, error) = form_error(&ctx.tr, e)?;
            render_status(StatusCode::UNPROCESSABLE_ENTITY, &TotpPage { l: Layout::new(&ctx, "totp.title", ""), error })
        }
    }
}

#[derive(Template)]
#[template(path = "totp_enroll.html")]
pub struct EnrolPage {
    pub l: Layout,
    pub secret: String,
    pub qr_svg: String,
    pub action: &'static str,
    pub error: String,
}

#[derive(Template)]
#[template(path = "recovery_codes.html")]
pub struct RecoveryPage {
    pub l: Layout,
    pub codes: Vec<String>,
    pub next: &'static str,
}

/// Renders enrolment (shared by first log-in and "my account").
pub async fn enrol(state: &AppState, ctx: &Ctx, action: &'static str, error: String) -> PageResult {
    let e = state.identity.begin_totp_enrolment(ctx.session()?).await?;
    let status = if error.is_empty() { StatusCode::OK } else { StatusCode::UNPROCESSABLE_ENTITY };
    render_status(status, &EnrolPage { l: Layout::new(ctx, "enrol.title", "me"), secret: e.secret, qr_svg: e.qr_svg, action, error })
}

/// Confirms enrolment and shows the recovery codes.
pub async fn confirm_enrol(state: &AppState, ctx: &Ctx, code: &str, action: &'static str) -> PageResult {
    match state.identity.confirm_totp_enrolment(ctx.session()?, &ctx.actor(), code).await {
        Ok((stage, codes)) => {
            let mut l = Layout::new(ctx, "recovery.title", "me");
            if stage != Stage::Complete {
                l.user = None;
            }
            render(&RecoveryPage { l, codes, next: stage_path(stage) })
        }
        Err(e) => {
            let (_, error) = form_error(&ctx.tr, e)?;
            enrol(state, ctx, action, error).await
        }
    }
}

pub async fn enrol_page(State(state): State<AppState>, ctx: Ctx) -> PageResult {
    if let Some(to) = wrong_stage(&ctx, Stage::TotpEnroll) {
        return see_other(to);
    }
    enrol(&state, &ctx, "/login/enrol", String::new()).await
}

pub async fn enrol_submit(State(state): State<AppState>, ctx: Ctx, PageForm(form): PageForm<CodeForm>) -> PageResult {
    if let Some(to) = wrong_stage(&ctx, Stage::TotpEnroll) {
        return see_other(to);
    }
    confirm_enrol(&state, &ctx, &form.totp_code, "/login/enrol").await
}

#[derive(Template)]
#[template(path = "password_change.html")]
pub struct PasswordPage {
    pub l: Layout,
    pub forced: bool,
    pub action: &'static str,
    pub error: String,
    pub error_field: String,
}

#[derive(Deserialize)]
pub struct PasswordForm {
    #[serde(default)]
    pub current_password: String,
    #[serde(default)]
    pub new_password: String,
    #[serde(default)]
    pub confirm_password: String,
}

/// Handles a password change form (shared by the forced change and "my account").
pub async fn change_password(state: &AppState, ctx: &Ctx, form: PasswordForm, forced: bool, action: &'static str) -> PageResult {
    let session = ctx.session()?;
    match state.identity.change_password(session, &ctx.actor(), &form.current_password, &form.new_password, &form.confirm_password).await {
        Ok(stage) if forced => see_other(stage_path(stage)),
        Ok(_) => see_other("/me/sessions?done=password_changed"),
        Err(DomainError::Locked(k)) => Err(PageError(DomainError::Locked(k))),
        Err(e) => {
            let (error_field, error) = form_error(&ctx.tr, e)?;
            let l = Layout::new(ctx, "password.title", "me");
            render_status(StatusCode::UNPROCESSABLE_ENTITY, &PasswordPage { l, forced, action, error, error_field })
        }
    }
}

pub async fn password_page(ctx: Ctx) -> PageResult {
    if let Some(to) = wrong_stage(&ctx, Stage::PasswordChange) {
        return see_other(to);
    }
    let l = Layout::new(&ctx, "password.title", "");
    render(&PasswordPage { l, forced: true, action: "/login/password", error: String::new(), error_field: String::new() })
}

pub async fn password_submit(State(state): State<AppState>, ctx: Ctx, PageForm(form): PageForm<PasswordForm>) -> PageResult {
    if let Some(to) = wrong_stage(&ctx, Stage::PasswordChange) {
        return see_other(to);
    }
    change_password(&state, &ctx, form, true, "/login/password").await
}

pub async fn logout(State(state): State<AppState>, ctx: Ctx) -> PageResult {
    if let Some(s) = &ctx.session
        && s.session_id != 0
    {
        state.identity.revoke_session(s, &ctx.actor(), s.session_id).await?;
        // Single sign-on: the systems this session reached end theirs too.
        state.oidc.session_ended(tongban_oidc::Realm::Staff, s.session_id, s.user_id, &ctx.actor()).await?;
    }
    Ok(([(header::SET_COOKIE, crate::ctx::clear_session_cookie())], Redirect::to("/login")).into_response())
}
