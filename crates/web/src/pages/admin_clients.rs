//! Relying-party administration (接入系统管理, `config.write`): register a county system for
//! single sign-on, edit its redirect URIs, scopes, grants and token lifetimes, rotate its secret
//! (shown once), disable it.

use askama::Template;
use axum::{extract::State, http::StatusCode};
use tongban_oidc::{
    Realm,
    clients::{Client, ClientSpec, KNOWN_GRANTS, KNOWN_SCOPES},
};

use super::{Layout, PageResult, admin_units::Done, form_error, render, render_status, see_other};
use crate::{
    ctx::Ctx,
    parse::{PageForm, PathParams, QueryOf},
    state::AppState,
};

#[derive(Template)]
#[template(path = "clients.html")]
struct ListPage {
    l: Layout,
    clients: Vec<Client>,
    base: String,
}

/// `GET /admin/clients`.
pub async fn list(State(state): State<AppState>, ctx: Ctx, QueryOf(q): QueryOf<Done>) -> PageResult {
    let clients = state.oidc.clients.list(ctx.principal()?, &ctx.actor()).await?;
    render(&ListPage {
        l: Layout::new(&ctx, "oidc.clients_title", "clients").with_flash(q.done.as_deref()),
        clients,
        base: state.config.public_url(),
    })
}

#[derive(Template)]
#[template(path = "client_form.html")]
struct FormPage {
    l: Layout,
    heading: String,
    action: String,
    creating: bool,
    realm: String,
    realm_key: String,
    spec: ClientSpec,
    redirects: String,
    post_logout: String,
    all_scopes: Vec<(&'static str, bool)>,
    all_grants: Vec<(&'static str, bool)>,
    error: String,
    error_field: String,
}

fn form_page(ctx: &Ctx, id: Option<i64>, realm: &str, spec: ClientSpec, error: (String, String)) -> PageResult {
    let all_scopes = KNOWN_SCOPES.iter().map(|s| (*s, spec.scopes.iter().any(|x| x == s))).collect();
    let all_grants = KNOWN_GRANTS.iter().map(|g| (*g, spec.grants.iter().any(|x| x == g))).collect();
    let (heading, action) = match id {
        Some(id) => (ctx.tr.t("oidc.client_edit").to_string(), format!("/admin/clients/{id}")),
        None => (ctx.tr.t("oidc.client_new").to_string(), "/admin/clients".to_string()),
    };
    let view = FormPage {
        l: Layout::new(ctx, "oidc.clients_title", "clients"),
        heading,
        action,
        creating: id.is_none(),
        realm: realm.to_string(),
        realm_key: format!("oidc.realm_{realm}"),
        redirects: spec.redirect_uris.join("\n"),
        post_logout: spec.post_logout_uris.join("\n"),
        spec,
        all_scopes,
        all_grants,
        error_field: error.0,
        error: error.1,
    };
    let status = if view.error.is_empty() { StatusCode::OK } else { StatusCode::UNPROCESSABLE_ENTITY };
    render_status(status, &view)
}

/// `GET /admin/clients/new`.
pub async fn new_form(State(state): State<AppState>, ctx: Ctx) -> PageResult {
    state.oidc.clients.list(ctx.principal()?, &ctx.actor()).await?;
    let spec = ClientSpec {
        confidential: true,
        scopes: vec!["openid".into(), "profile".into()],
        grants: vec!["authorization_code".into(), "refresh_token".into()],
        access_ttl: 3600,
        refresh_ttl: 7 * 86_400,
        id_token_alg: "ES256".into(),
        ..ClientSpec::default()
    };
    form_page(&ctx, None, "staff", spec, (String::new(), String::new()))
}

/// The form's fields (checkboxes repeat, so the raw pairs are read).
fn spec_of(fields: &[(String, String)]) -> (String, ClientSpec) {
    let one = |k: &str| fields.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()).unwrap_or_default();
    let many = |k: &str| fields.iter().filter(|(n, _)| n == k).map(|(_, v)| v.clone()).collect::<Vec<_>>();
    let lines = |k: &str| one(k).lines().map(str::trim).filter(|l| !l.is_empty()).map(String::from).collect();
    let number = |k: &str| one(k).trim().parse::<i64>().unwrap_or(-1);
    let spec = ClientSpec {
        client_id: one("client_id"),
        name: one("name"),
        confidential: one("confidential") == "on",
        redirect_uris: lines("redirect_uris"),
        post_logout_uris: lines("post_logout_uris"),
        backchannel_logout_uri: one("backchannel_logout_uri"),
        scopes: many("scopes"),
        grants: many("grants"),
        id_token_alg: one("id_token_alg"),
        access_ttl: number("access_ttl"),
        refresh_ttl: number("refresh_ttl"),
        first_party: one("first_party") == "on",
        logo_url: one("logo_url"),
    };
    (one("realm"), spec)
}

#[derive(Template)]
#[template(path = "client_secret.html")]
struct SecretPage {
    l: Layout,
    client_id: String,
    secret: String,
    issuer: String,
}

fn secret_page(state: &AppState, ctx: &Ctx, realm: Realm, client_id: String, secret: String) -> PageResult {
    let issuer = state.oidc.issuer(realm);
    render(&SecretPage { l: Layout::new(ctx, "oidc.clients_title", "clients"), client_id, secret, issuer })
}

/// `POST /admin/clients`: registers a client; a confidential one's secret is shown once.
pub async fn create(State(state): State<AppState>, ctx: Ctx, PageForm(fields): PageForm<Vec<(String, String)>>) -> PageResult {
    let p = ctx.principal()?;
    let (realm_text, spec) = spec_of(&fields);
    let Some(realm) = Realm::parse(&realm_text) else {
        return form_page(&ctx, None, &realm_text, spec, ("realm".into(), ctx.tr.t("error.invalid_value").to_string()));
    };
    match state.oidc.clients.create(p, &ctx.actor(), realm, &spec).await {
        Ok((_, client_id, Some(secret))) => secret_page(&state, &ctx, realm, client_id, secret),
        Ok(_) => see_other("/admin/clients?done=client_saved"),
        Err(e) => {
            let err = form_error(&ctx.tr, e)?;
            form_page(&ctx, None, realm.as_str(), spec, err)
        }
    }
}

/// `GET /admin/clients/{id}`: the edit form.
pub async fn edit_form(State(state): State<AppState>, ctx: Ctx, params: PathParams) -> PageResult {
    let c = state.oidc.clients.get(ctx.principal()?, &ctx.actor(), params.id("id")?).await?;
    form_page(&ctx, Some(c.id), c.realm.as_str(), c.spec, (String::new(), String::new()))
}

/// `POST /admin/clients/{id}`: saves the edit form.
pub async fn update(
    State(state): State<AppState>,
    ctx: Ctx,
    params: PathParams,
    PageForm(fields): PageForm<Vec<(String, String)>>,
) -> PageResult {
    let p = ctx.principal()?;
    let id = params.id("id")?;
    let current = state.oidc.clients.get(p, &ctx.actor(), id).await?;
    let (_, spec) = spec_of(&fields);
    match state.oidc.clients.update(p, &ctx.actor(), id, &spec).await {
        Ok(()) => see_other("/admin/clients?done=client_saved"),
        Err(e) => {
            let err = form_error(&ctx.tr, e)?;
            form_page(
                &ctx,
                Some(id),
                current.realm.as_str(),
                ClientSpec { client_id: current.spec.client_id, confidential: current.spec.confidential, ..spec },
                err,
            )
        }
    }
}

/// `POST /admin/clients/{id}/{rotate-secret|disable|enable}`.
pub async fn act(State(state): State<AppState>, ctx: Ctx, params: PathParams) -> PageResult {
    let p = ctx.principal()?;
    let id = params.id("id")?;
    let actor = ctx.actor();
    match params.text("action") {
        "rotate-secret" => {
            let c = state.oidc.clients.get(p, &actor, id).await?;
            let secret = state.oidc.clients.rotate_secret(p, &actor, id).await?;
            secret_page(&state, &ctx, c.realm, c.spec.client_id, secret)
        }
        "disable" => {
            state.oidc.clients.set_enabled(p, &actor, id, false).await?;
            see_other("/admin/clients?done=client_saved")
        }
        "enable" => {
            state.oidc.clients.set_enabled(p, &actor, id, true).await?;
            see_other("/admin/clients?done=client_saved")
        }
        _ => Err(tongban_platform::DomainError::NotFound("error.not_found").into()),
    }
}
