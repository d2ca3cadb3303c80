//! Passkey ceremonies for the pages (通行密钥): `…/begin` answers WebAuthn options as JSON for
//! `static/passkey.js`, `…/finish` takes the authenticator's answer. Log-in for both realms
//! (also re-authenticating the browser's current session), registration and removal under "my
//! account". The JSON calls carry the page's CSRF token in `X-CSRF-Token`.

use axum::{
    Extension, Json,
    extract::State,
    http::header,
    response::{IntoResponse, Response},
};
use serde::Deserialize;
use serde_json::{Value, json};
use tongban_identity::{PasskeyChallenge, PasskeyOwner, Realm};

use super::{PageResult, auth::stage_path, see_other};
use crate::{
    ctx::Ctx,
    error::ApiError,
    parse::{ApiJson, PathParams},
    state::AppState,
};

type JsonResult = Result<Response, ApiError>;

/// The browser's answer to a challenge.
#[derive(Deserialize)]
pub struct Answer {
    handle: String,
    credential: Value,
    /// The name for a new passkey (registration only).
    #[serde(default)]
    name: String,
}

fn challenge(c: PasskeyChallenge) -> JsonResult {
    Ok(Json(json!({"handle": c.handle, "publicKey": c.options})).into_response())
}

/// `POST /login/passkey/begin` and `/public/login/passkey/begin`.
pub async fn login_begin(State(state): State<AppState>, Extension(realm): Extension<Realm>, ctx: Ctx) -> JsonResult {
    challenge(state.identity.begin_passkey_login(realm, &ctx.ip).await?)
}

/// `POST /login/passkey/finish` and `/public/login/passkey/finish`: logs in (or re-authenticates
/// the current session of the same account) and answers where to go next.
pub async fn login_finish(
    State(state): State<AppState>,
    Extension(realm): Extension<Realm>,
    ctx: Ctx,
    ApiJson(a): ApiJson<Answer>,
) -> JsonResult {
    let current = match realm {
        Realm::Staff => ctx.session.as_ref().map(|s| s.session_id).filter(|id| *id != 0),
        Realm::Public => ctx.public.as_ref().map(|p| p.session_id),
    };
    let done = state.identity.finish_passkey_login(realm, &a.handle, &a.credential, &ctx.actor(), current).await?;
    let next = match realm {
        Realm::Staff => stage_path(done.stage),
        Realm::Public => "/public",
    };
    let mut resp = Json(json!({"next": next})).into_response();
    if let Some(secret) = done.session_secret {
        // A different account logged in over a live session: that session ends here.
        end_replaced_session(&state, &ctx, realm).await?;
        let cookie = match realm {
            Realm::Staff => crate::ctx::session_cookie(&state, &secret),
            Realm::Public => super::public::public_cookie(&state, &secret),
        };
        if let Ok(v) = header::HeaderValue::from_str(&cookie) {
            resp.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    Ok(resp)
}

async fn end_replaced_session(state: &AppState, ctx: &Ctx, realm: Realm) -> Result<(), ApiError> {
    match realm {
        Realm::Staff => {
            if let Some(s) = ctx.session.as_ref().filter(|s| s.session_id != 0) {
                state.identity.revoke_session(s, &ctx.actor(), s.session_id).await?;
                state.oidc.session_ended(realm, s.session_id, s.user_id, &ctx.actor()).await?;
            }
        }
        Realm::Public => {
            if let Some(p) = &ctx.public {
                state.identity.logout_public(p, &ctx.actor()).await?;
                state.oidc.session_ended(realm, p.session_id, p.account_id, &ctx.actor()).await?;
            }
        }
    }
    Ok(())
}

/// The logged-in account of `realm` as a passkey owner (names borrowed from the context).
fn owner<'a>(ctx: &'a Ctx, realm: Realm) -> Result<PasskeyOwner<'a>, ApiError> {
    Ok(match realm {
        Realm::Staff => {
            let p = ctx.principal()?;
            PasskeyOwner { realm, id: p.user_id, name: &p.username, display_name: &p.display_name }
        }
        Realm::Public => {
            let c = ctx.citizen()?;
            PasskeyOwner { realm, id: c.account_id, name: &c.cert_masked, display_name: &c.name }
        }
    })
}

/// `POST /me/passkeys/begin` and `/public/passkeys/begin`.
pub async fn register_begin(State(state): State<AppState>, Extension(realm): Extension<Realm>, ctx: Ctx) -> JsonResult {
    let owner = owner(&ctx, realm)?;
    challenge(state.identity.begin_passkey_registration(owner).await?)
}

/// `POST /me/passkeys/finish` and `/public/passkeys/finish`.
pub async fn register_finish(
    State(state): State<AppState>,
    Extension(realm): Extension<Realm>,
    ctx: Ctx,
    ApiJson(a): ApiJson<Answer>,
) -> JsonResult {
    let owner = owner(&ctx, realm)?;
    let id = state.identity.finish_passkey_registration(owner, &ctx.actor(), &a.handle, &a.name, &a.credential).await?;
    Ok(Json(json!({"id": id})).into_response())
}

/// `POST /me/passkeys/{id}/remove` and `/public/passkeys/{id}/remove` (a plain form).
pub async fn remove(State(state): State<AppState>, Extension(realm): Extension<Realm>, ctx: Ctx, params: PathParams) -> PageResult {
    let id = params.id("id")?;
    let (owner_id, back) = match realm {
        Realm::Staff => (ctx.principal()?.user_id, "/me/sessions?done=passkey_removed"),
        Realm::Public => (ctx.citizen()?.account_id, "/public?done=passkey_removed"),
    };
    state.identity.remove_passkey(realm, owner_id, &ctx.actor(), id).await?;
    see_other(back)
}
