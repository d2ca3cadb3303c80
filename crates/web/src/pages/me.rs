//! "My account" (个人中心): sessions, API tokens, password, TOTP enrolment.

use askama::Template;
use axum::extract::State;
use serde::Deserialize;
use tongban_platform::clock::format_local;

use super::{
    Layout, PageResult,
    admin_units::Done,
    auth::{PasswordForm, PasswordPage, change_password, confirm_enrol, enrol},
    form_error, parse_id, render, render_status, see_other,
};
use crate::{
    ctx::Ctx,
    parse::{PageForm, PathParams, QueryOf},
    state::AppState,
};

struct SessionRow {
    id: i64,
    started: String,
    last_seen: String,
    ip: String,
    user_agent: String,
    current: bool,
}

#[derive(Template)]
#[template(path = "sessions.html")]
struct SessionsPage {
    l: Layout,
    sessions: Vec<SessionRow>,
    totp_enabled: bool,
    grants: Vec<(tongban_oidc::provider::AppGrant, String)>,
    passkeys: Vec<(tongban_identity::PasskeyInfo, String, String)>,
    passkey_origin: String,
    passkey_action: &'static str,
}

/// An account's passkeys with their dates formatted for the list.
pub async fn passkey_rows(
    state: &AppState,
    realm: tongban_identity::Realm,
    owner: i64,
) -> Result<Vec<(tongban_identity::PasskeyInfo, String, String)>, tongban_platform::DomainError> {
    Ok(state
        .identity
        .passkeys(realm, owner)
        .await?
        .into_iter()
        .map(|k| {
            let created = format_local(k.created_at);
            let used = k.last_used_at.map(format_local).unwrap_or_default();
            (k, created, used)
        })
        .collect())
}

pub async fn sessions(State(state): State<AppState>, ctx: Ctx, QueryOf(q): QueryOf<Done>) -> PageResult {
    let p = ctx.principal()?;
    let session = ctx.session()?;
    let rows = state
        .identity
        .my_sessions(session)
        .await?
        .into_iter()
        .map(|s| SessionRow {
            id: s.id,
            started: format_local(s.created_at),
            last_seen: format_local(s.last_seen_at),
            ip: s.ip,
            user_agent: s.user_agent,
            current: s.current,
        })
        .collect();
    let totp_enabled = state.identity.user(p, &ctx.actor(), p.user_id).await.map(|u| u.totp_enabled).unwrap_or(true);
    let grants = state
        .oidc
        .app_grants(tongban_oidc::Realm::Staff, p.user_id)
        .await?
        .into_iter()
        .map(|g| {
            let at = if g.granted_at > 0 { format_local(g.granted_at) } else { String::new() };
            (g, at)
        })
        .collect();
    let l = Layout::new(&ctx, "me.title", "me").with_flash(q.done.as_deref());
    let passkeys = passkey_rows(&state, tongban_identity::Realm::Staff, p.user_id).await?;
    let passkey_origin = state.identity.passkey_origin().unwrap_or_default().to_string();
    render(&SessionsPage { l, sessions: rows, totp_enabled, grants, passkeys, passkey_origin, passkey_action: "/me/passkeys" })
}

pub async fn revoke_session(State(state): State<AppState>, ctx: Ctx, params: PathParams) -> PageResult {
    let id = params.id("id")?;
    ctx.principal()?;
    let session = ctx.session()?;
    state.identity.revoke_session(session, &ctx.actor(), id).await?;
    state.oidc.session_ended(tongban_oidc::Realm::Staff, id, session.user_id, &ctx.actor()).await?;
    see_other("/me/sessions?done=session_revoked")
}

/// `POST /me/apps/{client_id}/revoke`: withdraws the grant to a system (授权撤销).
pub async fn revoke_app(State(state): State<AppState>, ctx: Ctx, params: PathParams) -> PageResult {
    let p = ctx.principal()?;
    state.oidc.revoke_app_grant(tongban_oidc::Realm::Staff, p.user_id, params.text("client_id"), &ctx.actor()).await?;
    see_other("/me/sessions?done=app_revoked")
}

struct TokenRow {
    id: i64,
    name: String,
    prefix: String,
    scopes: String,
    expires: String,
}

#[derive(Template)]
#[template(path = "tokens.html")]
struct TokensPage {
    l: Layout,
    tokens: Vec<TokenRow>,
    secret: String,
    error: String,
    max_days: i64,
}

async fn tokens_page(state: &AppState, ctx: &Ctx, secret: String, error: String, done: Option<&str>) -> PageResult {
    ctx.principal()?;
    let tokens = state
        .identity
        .my_api_tokens(ctx.session()?)
        .await?
        .into_iter()
        .map(|t| TokenRow { id: t.id, name: t.name, prefix: t.prefix, scopes: t.scopes, expires: format_local(t.expires_at) })
        .collect();
    let status = if error.is_empty() { axum::http::StatusCode::OK } else { axum::http::StatusCode::UNPROCESSABLE_ENTITY };
    render_status(
        status,
        &TokensPage {
            l: Layout::new(ctx, "tokens.title", "me").with_flash(done),
            tokens,
            secret,
            error,
            max_days: state.config.security.api_token_max_days,
        },
    )
}

pub async fn tokens(State(state): State<AppState>, ctx: Ctx, QueryOf(q): QueryOf<Done>) -> PageResult {
    tokens_page(&state, &ctx, String::new(), String::new(), q.done.as_deref()).await
}

#[derive(Deserialize)]
pub struct TokenForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    days: String,
    #[serde(default)]
    write: Option<String>,
}

pub async fn create_token(State(state): State<AppState>, ctx: Ctx, PageForm(form): PageForm<TokenForm>) -> PageResult {
    ctx.principal()?;
    let result = match parse_id("days", &form.days) {
        Ok(days) => state.identity.create_api_token(ctx.session()?, &ctx.actor(), &form.name, days, form.write.is_some()).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(t) => tokens_page(&state, &ctx, t.secret, String::new(), Some("token_created")).await,
        Err(e) => {
            let (_, msg) = form_error(&ctx.tr, e)?;
            tokens_page(&state, &ctx, String::new(), msg, None).await
        }
    }
}

pub async fn revoke_token(State(state): State<AppState>, ctx: Ctx, params: PathParams) -> PageResult {
    let id = params.id("id")?;
    ctx.principal()?;
    state.identity.revoke_api_token(ctx.session()?, &ctx.actor(), id).await?;
    see_other("/me/tokens?done=token_revoked")
}

pub async fn password_page(ctx: Ctx) -> PageResult {
    ctx.principal()?;
    let l = Layout::new(&ctx, "password.title", "me");
    render(&PasswordPage { l, forced: false, action: "/me/password", error: String::new(), error_field: String::new() })
}

pub async fn password_submit(State(state): State<AppState>, ctx: Ctx, PageForm(form): PageForm<PasswordForm>) -> PageResult {
    ctx.principal()?;
    change_password(&state, &ctx, form, false, "/me/password").await
}

#[derive(Deserialize)]
pub struct CodeForm {
    #[serde(default)]
    totp_code: String,
}

pub async fn totp_page(State(state): State<AppState>, ctx: Ctx) -> PageResult {
    ctx.principal()?;
    enrol(&state, &ctx, "/me/totp", String::new()).await
}

pub async fn totp_submit(State(state): State<AppState>, ctx: Ctx, PageForm(form): PageForm<CodeForm>) -> PageResult {
    ctx.principal()?;
    confirm_enrol(&state, &ctx, &form.totp_code, "/me/totp").await
}
