//! Passkeys (通行密钥, WebAuthn): security keys and platform authenticators as a log-in for both
//! realms. The ceremony's cryptography is webauthn-rs; this module keeps the credentials, pairs
//! each challenge with its server-side state (used once, expiring), and opens sessions.
//!
//! A passkey log-in is discoverable (no user name typed): the authenticator names the account by
//! its user handle, and the credential must belong to that account *in the realm asked for*, so a
//! staff key never opens a public session or the other way round. User verification is required,
//! which makes a passkey a second factor by itself (`amr` = `hwk`, `user`, `mfa`).

use std::sync::Arc;

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use serde::Serialize;
use serde_json::{Value, json};
use sqlx::Row;
use tongban_audit::{Actor, Entry, Outcome};
use tongban_crypto::{sm3_hex, token};
use tongban_platform::{DomainError, WriteTx, clock::now_millis, error::DomainResult};
use webauthn_rs::prelude::{
    DiscoverableAuthentication, Passkey, PasskeyRegistration, PublicKeyCredential, RegisterPublicKeyCredential, Url, Uuid, Webauthn,
    WebauthnBuilder,
};

use crate::{Realm, login::Stage, service::IdentityService};

/// How long a browser has to answer a challenge.
const CEREMONY_MILLIS: i64 = 5 * 60_000;
/// Most passkeys one account may hold.
const MAX_PER_ACCOUNT: i64 = 10;
/// The methods a passkey log-in proves (RFC 8176): a hardware-bound key, the user present and
/// verified (PIN or biometrics) by the authenticator.
pub const PASSKEY_AMR: &str = "hwk user mfa";

/// The relying party that passkeys are bound to, from the server's public URL.
#[derive(Clone)]
pub struct PasskeyParty {
    webauthn: Arc<Webauthn>,
    origin: String,
}

impl PasskeyParty {
    /// The relying party for `public_url` (scheme, host and port). Browsers only allow WebAuthn on
    /// a domain name, so a loopback IP address is served as `localhost` on the same port; any
    /// other IP address has no passkeys (`None`).
    pub fn for_public_url(public_url: &str) -> Option<PasskeyParty> {
        let mut url = Url::parse(public_url).ok()?;
        let loopback = match url.host() {
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            _ => false,
        };
        if loopback {
            url.set_host(Some("localhost")).ok()?;
        }
        let rp_id = url.domain()?.to_string();
        let webauthn = WebauthnBuilder::new(&rp_id, &url).ok()?.rp_name("tongban 通办").build().ok()?;
        let origin = url.origin().ascii_serialization();
        Some(PasskeyParty { webauthn: Arc::new(webauthn), origin })
    }

    /// The origin pages must be opened on for passkeys to work (e.g. `https://zw.jiahe.gov.cn`).
    pub fn origin(&self) -> &str {
        &self.origin
    }
}

/// One of an account's passkeys, as "my account" lists it.
#[derive(Debug, Clone, Serialize)]
pub struct PasskeyInfo {
    /// Row id.
    pub id: i64,
    /// The name the owner gave it ("办公室 U 盾").
    pub name: String,
    /// Registered at (ms).
    pub created_at: i64,
    /// Last used to log in (ms).
    pub last_used_at: Option<i64>,
}

/// Whose passkey is being registered.
#[derive(Debug, Clone, Copy)]
pub struct PasskeyOwner<'a> {
    /// Realm of the account.
    pub realm: Realm,
    /// Account id (staff user or public account).
    pub id: i64,
    /// The name the authenticator shows (user name or masked certificate number).
    pub name: &'a str,
    /// Display name.
    pub display_name: &'a str,
}

/// A challenge for the browser: `handle` comes back with the answer, `options` go to
/// `navigator.credentials.create()` / `.get()` as `publicKey`.
#[derive(Debug, Clone, Serialize)]
pub struct PasskeyChallenge {
    /// Opaque id of the server-side state.
    pub handle: String,
    /// WebAuthn options (JSON with base64url binary fields).
    pub options: Value,
}

/// A log-in by a strong factor (passkey, certificate) about to open or renew a session.
#[derive(Debug, Clone, Copy)]
pub(crate) struct StrongLogin {
    pub(crate) realm: Realm,
    pub(crate) owner_id: i64,
    /// The browser's current session, renewed in place when it is the same account's.
    pub(crate) current: Option<i64>,
    pub(crate) stage: Stage,
    pub(crate) amr: &'static str,
}

/// A finished passkey log-in.
#[derive(Debug, Clone)]
pub struct PasskeyLogin {
    /// The account.
    pub account_id: i64,
    /// The new session's secret for the cookie; `None` when the log-in re-authenticated the
    /// browser's current session of the same account (its sign-in time and methods renewed).
    pub session_secret: Option<String>,
    /// Staff only: what must happen next (a forced password change can still be due).
    pub stage: Stage,
}

fn unavailable() -> DomainError {
    DomainError::Conflict("passkey.error.unavailable")
}

fn rejected() -> DomainError {
    DomainError::Unauthenticated("passkey.error.rejected")
}

impl IdentityService {
    fn party(&self) -> DomainResult<&PasskeyParty> {
        self.passkeys.as_ref().ok_or_else(unavailable)
    }

    /// The origin passkeys work on, if they are available at all.
    pub fn passkey_origin(&self) -> Option<&str> {
        self.passkeys.as_ref().map(|p| p.origin())
    }

    /// Starts registering a passkey for a logged-in account.
    pub async fn begin_passkey_registration(&self, owner: PasskeyOwner<'_>) -> DomainResult<PasskeyChallenge> {
        let party = self.party()?;
        let existing = self.stored_passkeys(owner.realm, owner.id).await?;
        if existing.len() as i64 >= MAX_PER_ACCOUNT {
            return Err(DomainError::invalid("name", "passkey.error.too_many"));
        }
        let handle = match existing.first() {
            Some((_, h, _)) => Uuid::parse_str(h).map_err(|_| DomainError::Internal("stored user handle".into()))?,
            None => Uuid::new_v4(),
        };
        let exclude = existing.iter().map(|(_, _, k)| k.cred_id().clone()).collect();
        let (ccr, state) = party
            .webauthn
            .start_passkey_registration(handle, owner.name, owner.display_name, Some(exclude))
            .map_err(|e| DomainError::Internal(format!("webauthn: {e}")))?;
        let state = serde_json::to_string(&(handle, state)).map_err(|e| DomainError::Internal(e.to_string()))?;
        let handle = self.store_ceremony(owner.realm, "register", Some(owner.id), &state).await?;
        let mut options = json!(ccr.public_key);
        // A passkey is found by the authenticator without a user name, so it must be resident.
        options["authenticatorSelection"]["residentKey"] = json!("required");
        options["authenticatorSelection"]["requireResidentKey"] = json!(true);
        Ok(PasskeyChallenge { handle, options })
    }

    /// Verifies the authenticator's answer and stores the passkey under `name`.
    pub async fn finish_passkey_registration(
        &self,
        owner: PasskeyOwner<'_>,
        actor: &Actor,
        handle: &str,
        name: &str,
        credential: &Value,
    ) -> DomainResult<i64> {
        let party = self.party()?;
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 60 {
            return Err(DomainError::invalid("name", "passkey.error.name"));
        }
        let answer: RegisterPublicKeyCredential =
            serde_json::from_value(credential.clone()).map_err(|_| DomainError::invalid("credential", "passkey.error.malformed"))?;
        let (owner_id, state) = self.take_ceremony(owner.realm, "register", handle).await?;
        if owner_id != Some(owner.id) {
            return Err(DomainError::invalid("handle", "passkey.error.expired"));
        }
        let (user_handle, state): (Uuid, PasskeyRegistration) =
            serde_json::from_str(&state).map_err(|e| DomainError::Internal(e.to_string()))?;
        let passkey = match party.webauthn.finish_passkey_registration(&answer, &state) {
            Ok(p) => p,
            Err(e) => {
                let entry =
                    Entry::success("passkey.register", "account", owner.id, json!({"realm": owner.realm.as_str(), "error": e.to_string()}))
                        .with_outcome(Outcome::Failure);
                self.audit.record(&self.db, actor, entry).await?;
                return Err(DomainError::invalid("credential", "passkey.error.rejected"));
            }
        };
        let raw_id: &[u8] = passkey.cred_id().as_ref();
        let cred_id = URL_SAFE_NO_PAD.encode(raw_id);
        let mut tx = self.db.begin_write().await?;
        let taken = sqlx::query("SELECT 1 FROM passkeys WHERE credential_id = $1").bind(&cred_id).fetch_optional(tx.conn()).await?;
        if taken.is_some() {
            return Err(DomainError::invalid("credential", "passkey.error.registered"));
        }
        let stored = serde_json::to_string(&passkey).map_err(|e| DomainError::Internal(e.to_string()))?;
        let id: i64 = sqlx::query(
            "INSERT INTO passkeys (realm, owner_id, user_handle, credential_id, name, credential, created_at) \
             VALUES ($1,$2,$3,$4,$5,$6,$7) RETURNING id",
        )
        .bind(owner.realm.as_str())
        .bind(owner.id)
        .bind(user_handle.to_string())
        .bind(&cred_id)
        .bind(name)
        .bind(stored)
        .bind(now_millis())
        .fetch_one(tx.conn())
        .await?
        .get(0);
        let details = json!({"realm": owner.realm.as_str(), "account": owner.id, "name": name});
        self.audit.append(&mut tx, actor, Entry::success("passkey.register", "passkey", id, details)).await?;
        tx.commit().await?;
        Ok(id)
    }

    /// The passkeys of an account, newest first.
    pub async fn passkeys(&self, realm: Realm, owner_id: i64) -> DomainResult<Vec<PasskeyInfo>> {
        let rows = sqlx::query(
            "SELECT id, name, created_at, last_used_at FROM passkeys WHERE realm = $1 AND owner_id = $2 ORDER BY created_at DESC, id DESC",
        )
        .bind(realm.as_str())
        .bind(owner_id)
        .fetch_all(self.db.pool())
        .await?;
        Ok(rows.iter().map(|r| PasskeyInfo { id: r.get(0), name: r.get(1), created_at: r.get(2), last_used_at: r.get(3) }).collect())
    }

    /// Removes one of the caller's own passkeys (another account's is "not found").
    pub async fn remove_passkey(&self, realm: Realm, owner_id: i64, actor: &Actor, id: i64) -> DomainResult<()> {
        let mut tx = self.db.begin_write().await?;
        let done = sqlx::query("DELETE FROM passkeys WHERE id = $1 AND realm = $2 AND owner_id = $3")
            .bind(id)
            .bind(realm.as_str())
            .bind(owner_id)
            .execute(tx.conn())
            .await?;
        if done.rows_affected() == 0 {
            return Err(DomainError::NotFound("error.not_found"));
        }
        let details = json!({"realm": realm.as_str(), "account": owner_id});
        self.audit.append(&mut tx, actor, Entry::success("passkey.remove", "passkey", id, details)).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Starts a passkey log-in to `realm` (no user name: the authenticator offers its keys).
    pub async fn begin_passkey_login(&self, realm: Realm, ip: &str) -> DomainResult<PasskeyChallenge> {
        let party = self.party()?;
        if self.ip_blocked(ip).await? {
            return Err(DomainError::Locked("error.ip_locked"));
        }
        let (rcr, state) =
            party.webauthn.start_discoverable_authentication().map_err(|e| DomainError::Internal(format!("webauthn: {e}")))?;
        let state = serde_json::to_string(&state).map_err(|e| DomainError::Internal(e.to_string()))?;
        let handle = self.store_ceremony(realm, "login", None, &state).await?;
        // `mediation: conditional` is for autofill; the button asks with the modal dialogue.
        Ok(PasskeyChallenge { handle, options: json!(rcr.public_key) })
    }

    /// Verifies a passkey log-in and opens a session in `realm`, or renews `current` (the
    /// browser's session id) when it belongs to the same account (re-authentication, step-up).
    /// Failures count against the source IP like wrong passwords.
    pub async fn finish_passkey_login(
        &self,
        realm: Realm,
        handle: &str,
        credential: &Value,
        actor: &Actor,
        current: Option<i64>,
    ) -> DomainResult<PasskeyLogin> {
        let party = self.party()?;
        if self.ip_blocked(&actor.ip).await? {
            return Err(DomainError::Locked("error.ip_locked"));
        }
        let answer: PublicKeyCredential =
            serde_json::from_value(credential.clone()).map_err(|_| DomainError::invalid("credential", "passkey.error.malformed"))?;
        let (_, state) = self.take_ceremony(realm, "login", handle).await?;
        let state: DiscoverableAuthentication = serde_json::from_str(&state).map_err(|e| DomainError::Internal(e.to_string()))?;
        let Ok((user_handle, cred_id)) = party.webauthn.identify_discoverable_authentication(&answer) else {
            return Err(self.passkey_failed(realm, None, actor, "no_user_handle").await?);
        };
        let cred_id = URL_SAFE_NO_PAD.encode(cred_id);
        let row = sqlx::query("SELECT id, owner_id, credential FROM passkeys WHERE credential_id = $1 AND realm = $2 AND user_handle = $3")
            .bind(&cred_id)
            .bind(realm.as_str())
            .bind(user_handle.to_string())
            .fetch_optional(self.db.pool())
            .await?;
        let Some(row) = row else {
            return Err(self.passkey_failed(realm, None, actor, "unknown_credential").await?);
        };
        let (key_id, owner_id): (i64, i64) = (row.get(0), row.get(1));
        let mut passkey: Passkey = serde_json::from_str(&row.get::<String, _>(2)).map_err(|e| DomainError::Internal(e.to_string()))?;
        let result = match party.webauthn.finish_discoverable_authentication_v2(&answer, state, &passkey) {
            Ok(r) => r,
            Err(e) => return Err(self.passkey_failed(realm, Some(owner_id), actor, &e.to_string()).await?),
        };
        passkey.update_credential(&result);
        self.open_passkey_session(realm, (owner_id, current), key_id, &passkey, actor).await
    }

    async fn open_passkey_session(
        &self,
        realm: Realm,
        (owner_id, current): (i64, Option<i64>),
        key_id: i64,
        passkey: &Passkey,
        actor: &Actor,
    ) -> DomainResult<PasskeyLogin> {
        let stage = self.strong_login_stage(realm, owner_id, actor, "passkey").await?;
        let stored = serde_json::to_string(passkey).map_err(|e| DomainError::Internal(e.to_string()))?;
        let mut tx = self.db.begin_write().await?;
        sqlx::query("UPDATE passkeys SET credential = $2, last_used_at = $3 WHERE id = $1")
            .bind(key_id)
            .bind(stored)
            .bind(now_millis())
            .execute(tx.conn())
            .await?;
        let login = StrongLogin { realm, owner_id, current, stage, amr: PASSKEY_AMR };
        let details = json!({"factor": "passkey", "passkey": key_id});
        let secret = self.open_strong_session(&mut tx, &login, actor, details).await?;
        tx.commit().await?;
        Ok(PasskeyLogin { account_id: owner_id, session_secret: secret, stage })
    }

    /// Checks that an account may log in now (enabled, not locked) after a strong factor and
    /// answers the stage that follows (a due password change still applies).
    pub(crate) async fn strong_login_stage(&self, realm: Realm, owner_id: i64, actor: &Actor, factor: &str) -> DomainResult<Stage> {
        let now = now_millis();
        match realm {
            Realm::Staff => {
                let c = self.credentials_by_id(owner_id).await?;
                if !c.enabled || c.locked_until.is_some_and(|t| t > now) {
                    return Err(self.strong_login_failed(realm, Some(owner_id), actor, factor, "disabled_or_locked").await?);
                }
                // A certificate alone does not open an administrator's account: their TOTP follows.
                if factor == "certificate" && self.is_admin_class(owner_id).await? {
                    if !c.totp_enabled {
                        return Err(self.strong_login_failed(realm, Some(owner_id), actor, factor, "admin_without_totp").await?);
                    }
                    return self.next_stage(&c, false).await;
                }
                self.next_stage(&c, true).await
            }
            Realm::Public => {
                let r = sqlx::query("SELECT enabled, locked_until FROM public_accounts WHERE id = $1")
                    .bind(owner_id)
                    .fetch_one(self.db.pool())
                    .await?;
                if r.get::<i64, _>(0) == 0 || r.get::<Option<i64>, _>(1).is_some_and(|t| t > now) {
                    return Err(self.strong_login_failed(realm, Some(owner_id), actor, factor, "disabled_or_locked").await?);
                }
                Ok(Stage::Complete)
            }
        }
    }

    /// Opens a session after a strong factor, or renews the browser's current session of the same
    /// account, with its audit record, in `tx`. Answers the new session's secret, if one opened.
    pub(crate) async fn open_strong_session(
        &self,
        tx: &mut WriteTx,
        login: &StrongLogin,
        actor: &Actor,
        mut details: Value,
    ) -> DomainResult<Option<String>> {
        let StrongLogin { realm, owner_id, current, stage, amr } = *login;
        let renewed = match current {
            Some(sid) => renew_session(tx, realm, sid, owner_id, stage, amr).await?,
            None => false,
        };
        let secret = match realm {
            _ if renewed => None,
            Realm::Staff => {
                sqlx::query("UPDATE users SET failed_logins = 0 WHERE id = $1").bind(owner_id).execute(tx.conn()).await?;
                Some(self.open_session(tx, owner_id, stage, amr, &actor.ip, &actor.user_agent).await?)
            }
            Realm::Public => {
                sqlx::query("UPDATE public_accounts SET failed_logins = 0 WHERE id = $1").bind(owner_id).execute(tx.conn()).await?;
                Some(self.open_public_session(tx, owner_id, amr, "complete", &actor.ip).await?)
            }
        };
        let (action, object) = login_action(realm);
        let who = Actor { user_id: (realm == Realm::Staff).then_some(owner_id), ..actor.clone() };
        details["next"] = json!(stage.as_str());
        details["reauthenticated"] = json!(renewed);
        self.audit.append(tx, &who, Entry::success(action, object, owner_id, details)).await?;
        Ok(secret)
    }

    async fn passkey_failed(&self, realm: Realm, account: Option<i64>, actor: &Actor, reason: &str) -> DomainResult<DomainError> {
        self.strong_login_failed(realm, account, actor, "passkey", reason).await?;
        Ok(rejected())
    }

    /// Records a refused passkey or certificate log-in (counting it against the source IP) and
    /// answers the error to return.
    pub(crate) async fn strong_login_failed(
        &self,
        realm: Realm,
        account: Option<i64>,
        actor: &Actor,
        factor: &str,
        reason: &str,
    ) -> DomainResult<DomainError> {
        let now = now_millis();
        let window = self.policy.lockout_minutes * 60_000;
        let mut tx = self.db.begin_write().await?;
        self.count_ip_failure(&mut tx, &actor.ip, now, window).await?;
        let (action, object) = login_action(realm);
        let reason: String = reason.chars().take(200).collect();
        let entry =
            Entry::success(action, object, account.map(|a| a.to_string()).unwrap_or_default(), json!({"factor": factor, "reason": reason}))
                .with_outcome(Outcome::Failure);
        self.audit.append(&mut tx, actor, entry).await?;
        tx.commit().await?;
        Ok(match factor {
            "passkey" => rejected(),
            _ => DomainError::Unauthenticated("cert.error.rejected"),
        })
    }

    async fn stored_passkeys(&self, realm: Realm, owner_id: i64) -> DomainResult<Vec<(i64, String, Passkey)>> {
        let rows = sqlx::query("SELECT id, user_handle, credential FROM passkeys WHERE realm = $1 AND owner_id = $2 ORDER BY id")
            .bind(realm.as_str())
            .bind(owner_id)
            .fetch_all(self.db.pool())
            .await?;
        rows.iter()
            .map(|r| {
                let key: Passkey = serde_json::from_str(&r.get::<String, _>(2)).map_err(|e| DomainError::Internal(e.to_string()))?;
                Ok((r.get(0), r.get(1), key))
            })
            .collect()
    }

    /// Takes a ceremony out, so that it can be answered once (a refused answer spends it too):
    /// its owner and state, if it exists, is of this realm and kind, and has not expired.
    pub(crate) async fn take_ceremony(&self, realm: Realm, kind: &str, handle: &str) -> DomainResult<(Option<i64>, String)> {
        let expired = || DomainError::invalid("handle", "passkey.error.expired");
        if handle.is_empty() || handle.len() > 128 {
            return Err(expired());
        }
        let mut tx = self.db.begin_write().await?;
        let row = sqlx::query(
            "DELETE FROM webauthn_ceremonies WHERE handle_hash = $1 AND realm = $2 AND kind = $3 RETURNING owner_id, state, expires_at",
        )
        .bind(sm3_hex(handle.as_bytes()))
        .bind(realm.as_str())
        .bind(kind)
        .fetch_optional(tx.conn())
        .await?;
        tx.commit().await?;
        row.filter(|r| r.get::<i64, _>(2) > now_millis()).map(|r| (r.get(0), r.get(1))).ok_or_else(expired)
    }

    /// Stores a ceremony's state and answers the handle for the browser. Expired ceremonies are
    /// swept on the way.
    pub(crate) async fn store_ceremony(&self, realm: Realm, kind: &str, owner: Option<i64>, state: &str) -> DomainResult<String> {
        let handle = token::random_token();
        let now = now_millis();
        let mut tx = self.db.begin_write().await?;
        sqlx::query("DELETE FROM webauthn_ceremonies WHERE expires_at < $1").bind(now).execute(tx.conn()).await?;
        sqlx::query("INSERT INTO webauthn_ceremonies (handle_hash, realm, kind, owner_id, state, expires_at) VALUES ($1,$2,$3,$4,$5,$6)")
            .bind(sm3_hex(handle.as_bytes()))
            .bind(realm.as_str())
            .bind(kind)
            .bind(owner)
            .bind(state)
            .bind(now + CEREMONY_MILLIS)
            .execute(tx.conn())
            .await?;
        tx.commit().await?;
        Ok(handle)
    }
}

/// Renews the sign-in of session `sid` if it is a live session of `owner` in `realm`: a
/// re-authentication keeps the session (and the systems it signed in to) and records the new
/// time and methods. Answers whether it did.
pub(crate) async fn renew_session(tx: &mut WriteTx, realm: Realm, sid: i64, owner: i64, stage: Stage, amr: &str) -> DomainResult<bool> {
    let now = now_millis();
    let done = match realm {
        Realm::Staff => {
            sqlx::query(
                "UPDATE sessions SET amr = $3, auth_time = $4, stage = $5 WHERE id = $1 AND user_id = $2 AND revoked_at IS NULL AND expires_at > $4",
            )
            .bind(sid)
            .bind(owner)
            .bind(amr)
            .bind(now)
            .bind(stage.as_str())
            .execute(tx.conn())
            .await?
        }
        Realm::Public => {
            sqlx::query(
                "UPDATE public_sessions SET amr = $3, auth_time = $4 WHERE id = $1 AND account_id = $2 AND revoked_at IS NULL AND expires_at > $4",
            )
            .bind(sid)
            .bind(owner)
            .bind(amr)
            .bind(now)
            .execute(tx.conn())
            .await?
        }
    };
    Ok(done.rows_affected() == 1)
}

/// The audit action and object type of a log-in in `realm`.
fn login_action(realm: Realm) -> (&'static str, &'static str) {
    match realm {
        Realm::Staff => ("auth.login", "user"),
        Realm::Public => ("public.login", "public_account"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_addresses_are_served_as_localhost() {
        let p = PasskeyParty::for_public_url("http://127.0.0.1:8080").map(|p| p.origin().to_string());
        assert_eq!(p.as_deref(), Some("http://localhost:8080"));
        let p = PasskeyParty::for_public_url("https://zw.jiahe.gov.cn").map(|p| p.origin().to_string());
        assert_eq!(p.as_deref(), Some("https://zw.jiahe.gov.cn"));
    }

    #[test]
    fn other_ip_addresses_have_no_passkeys() {
        assert!(PasskeyParty::for_public_url("http://10.1.2.3:8080").is_none());
        assert!(PasskeyParty::for_public_url("not a url").is_none());
    }
}
