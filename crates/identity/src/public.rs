//! The public realm (公众用户): citizens (自然人, by identity card number) and enterprises (法人, by
//! unified social credit code) who apply online. Separate from staff accounts: own table, own
//! sessions and cookie, so a public log-in can never reach a staff page. Log-in by certificate
//! number or mobile number; lock-out per account and per source IP as for staff.

use serde::Serialize;
use serde_json::json;
use sqlx::Row;
use time::Date;
use tongban_audit::{Actor, Entry, Outcome};
use tongban_crypto::{password, sm3_hex, token};
use tongban_platform::{
    DomainError, WriteTx,
    clock::{local_date, now_millis},
    error::DomainResult,
};

use crate::{
    idcheck::{check_credit_code, check_id_number, mask_id_number},
    service::IdentityService,
    throttle::{AttemptKey, PUBLIC_ACCOUNT_THRESHOLD},
};

/// A citizen or an enterprise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PublicKind {
    /// 自然人.
    Person,
    /// 法人.
    Enterprise,
}

impl PublicKind {
    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            PublicKind::Person => "person",
            PublicKind::Enterprise => "enterprise",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<PublicKind> {
        match s {
            "person" => Some(PublicKind::Person),
            "enterprise" => Some(PublicKind::Enterprise),
            _ => None,
        }
    }
}

/// A registration (实名注册).
#[derive(Debug, Clone, Default)]
pub struct PublicRegistration {
    /// `person` or `enterprise`.
    pub kind: String,
    /// Real name, or the enterprise's registered name.
    pub name: String,
    /// Identity card number (person) or unified social credit code (enterprise).
    pub cert_no: String,
    /// Mobile number (used to log in and for SMS notices).
    pub phone: String,
    /// E-mail (optional).
    pub email: String,
    /// Password.
    pub password: String,
}

/// A logged-in citizen or enterprise.
#[derive(Debug, Clone, Serialize)]
pub struct PublicPrincipal {
    /// Session id.
    pub session_id: i64,
    /// Account id.
    pub account_id: i64,
    /// Kind.
    pub kind: PublicKind,
    /// Name.
    pub name: String,
    /// Certificate number, masked for display.
    pub cert_masked: String,
    /// Mobile number.
    pub phone: String,
    /// E-mail.
    pub email: String,
    /// CSRF token of the session.
    pub csrf_token: String,
    /// How the citizen receives log-in codes (`none`, `sms`, `email`).
    pub login_otp: String,
}

impl PublicPrincipal {
    /// The audit actor for this citizen.
    pub fn actor(&self, ip: &str, user_agent: &str) -> Actor {
        Actor {
            user_id: None,
            name: format!("public:{}", self.account_id),
            unit: self.name.clone(),
            ip: ip.into(),
            user_agent: user_agent.into(),
        }
    }
}

/// The answer to a failed public log-in: "try later" once the name is being slowed down, else
/// "wrong log-in or password" (the same for names nobody has).
fn public_refusal(throttled: bool) -> DomainError {
    if throttled { DomainError::Locked("error.login_throttled") } else { DomainError::Unauthenticated("error.bad_credentials") }
}

fn today() -> Date {
    local_date(now_millis()).unwrap_or(Date::MIN)
}

impl IdentityService {
    /// Registers a citizen or enterprise (实名注册): the certificate number is checked by its check
    /// character, the mobile number and certificate must be new, the password follows the policy.
    pub async fn register_public(&self, reg: &PublicRegistration, ip: &str, ua: &str) -> DomainResult<i64> {
        let kind = PublicKind::parse(reg.kind.trim()).ok_or_else(|| DomainError::invalid("kind", "error.invalid_value"))?;
        let name = reg.name.trim();
        if name.is_empty() || name.chars().count() > 100 {
            return Err(DomainError::invalid("name", "error.required"));
        }
        let cert = match kind {
            PublicKind::Person => {
                check_id_number(&reg.cert_no, today()).map_err(|_| DomainError::invalid("cert_no", "approval.error.id_number"))?
            }
            PublicKind::Enterprise => {
                check_credit_code(&reg.cert_no).map_err(|_| DomainError::invalid("cert_no", "approval.error.credit_code"))?
            }
        };
        let phone = reg.phone.trim();
        if !(phone.len() == 11 && phone.starts_with('1') && phone.bytes().all(|b| b.is_ascii_digit())) {
            return Err(DomainError::invalid("phone", "approval.error.phone"));
        }
        let email = reg.email.trim();
        if !email.is_empty() && !email.split_once('@').is_some_and(|(a, d)| !a.is_empty() && d.contains('.')) {
            return Err(DomainError::invalid("email", "approval.error.email"));
        }
        password::check_policy(&reg.password, phone, &[&cert]).map_err(|v| DomainError::invalid("password", v.message_key()))?;
        let hash = password::hash_password(&reg.password).map_err(DomainError::Internal)?;
        let mut tx = self.db.begin_write().await?;
        let taken = sqlx::query("SELECT 1 FROM public_accounts WHERE cert_no = $1 OR phone = $2")
            .bind(&cert)
            .bind(phone)
            .fetch_optional(tx.conn())
            .await?;
        if taken.is_some() {
            return Err(DomainError::invalid("cert_no", "public.error.registered"));
        }
        let now = now_millis();
        let id: i64 = sqlx::query(
            "INSERT INTO public_accounts (kind, name, cert_no, phone, email, password_hash, enabled, failed_logins, created_at) \
             VALUES ($1,$2,$3,$4,$5,$6,1,0,$7) RETURNING id",
        )
        .bind(kind.as_str())
        .bind(name)
        .bind(&cert)
        .bind(phone)
        .bind(email)
        .bind(hash)
        .bind(now)
        .fetch_one(tx.conn())
        .await?
        .get(0);
        let actor = Actor {
            user_id: None,
            name: format!("public:{id}"),
            unit: name.into(),
            ip: ip.into(),
            user_agent: ua.chars().take(256).collect(),
        };
        let details = json!({"kind": kind.as_str(), "cert": mask_id_number(&cert)});
        self.audit.append(&mut tx, &actor, Entry::success("public.register", "public_account", id, details)).await?;
        tongban_platform::outbox::publish(&mut tx, "identity.public.registered", &json!({"account_id": id})).await?;
        tx.commit().await?;
        Ok(id)
    }

    /// Logs a citizen in by certificate number or mobile number; answers the session secret.
    /// Failures slow the name down — per source after five, for every source after twenty —
    /// with delays that double from a minute up to the lock-out time; nothing locks the account,
    /// and unknown names are answered as real ones. The owner is told by SMS (at most hourly).
    pub async fn login_public(&self, login: &str, pass: &str, ip: &str, ua: &str) -> DomainResult<String> {
        let login = login.trim().to_ascii_uppercase();
        let actor = |id: Option<i64>| Actor {
            user_id: None,
            name: id.map(|i| format!("public:{i}")).unwrap_or_else(|| login.chars().take(20).collect()),
            unit: String::new(),
            ip: ip.into(),
            user_agent: ua.chars().take(256).collect(),
        };
        if self.ip_blocked(ip).await? {
            return Err(DomainError::Locked("error.ip_locked"));
        }
        let keys = [AttemptKey::public_from(&login, ip), AttemptKey::public_anywhere(&login)];
        for key in &keys {
            if self.throttled_until(key).await?.is_some() {
                return Err(DomainError::Locked("error.login_throttled"));
            }
        }
        let row = sqlx::query(
            "SELECT id, password_hash, enabled, failed_logins, locked_until, login_otp, phone FROM public_accounts WHERE cert_no = $1 OR phone = $1",
        )
        .bind(&login)
        .fetch_optional(self.db.pool())
        .await?;
        let Some(r) = row else {
            let _ = password::verify_password(pass, &password::hash_password("tongban-dummy").unwrap_or_default());
            let throttled = self.public_login_failed(None, &actor(None), "unknown_account", &keys).await?;
            return Err(public_refusal(throttled));
        };
        let id: i64 = r.get(0);
        let now = now_millis();
        if r.get::<Option<i64>, _>(4).is_some_and(|t| t > now) {
            return Err(DomainError::Locked("error.account_locked"));
        }
        if !password::verify_password(pass, &r.get::<String, _>(1)) || r.get::<i64, _>(2) == 0 {
            let owner = Some((id, r.get::<String, _>(6)));
            let throttled = self.public_login_failed(owner, &actor(Some(id)), "bad_password", &keys).await?;
            return Err(public_refusal(throttled));
        }
        let mut tx = self.db.begin_write().await?;
        sqlx::query("UPDATE public_accounts SET failed_logins = 0 WHERE id = $1").bind(id).execute(tx.conn()).await?;
        self.clear_attempts(&mut tx, &keys[0]).await?;
        let wants_code = r.get::<String, _>(5) != "none";
        let secret = self.open_public_session(&mut tx, id, "pwd", if wants_code { "otp" } else { "complete" }, ip).await?;
        let details = json!({"factor": "password", "next": if wants_code { "otp" } else { "complete" }});
        self.audit.append(&mut tx, &actor(Some(id)), Entry::success("public.login", "public_account", id, details)).await?;
        tx.commit().await?;
        if wants_code && let Some(login) = self.code_login(&secret).await? {
            // The first code goes out at once; the code page can ask for another.
            match self.send_login_code(&login, &actor(Some(id))).await {
                Ok(()) | Err(DomainError::Locked(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(secret)
    }

    /// Re-authentication (再次验证) of a citizen's live session by password (see the staff
    /// `reauthenticate`): the session stays, its sign-in time and methods are renewed.
    pub async fn reauthenticate_public(&self, who: &PublicPrincipal, pass: &str, actor: &Actor) -> DomainResult<()> {
        if pass.is_empty() {
            return Err(DomainError::invalid("password", "error.required"));
        }
        if self.ip_blocked(&actor.ip).await? {
            return Err(DomainError::Locked("error.ip_locked"));
        }
        let r = sqlx::query("SELECT password_hash, failed_logins, locked_until FROM public_accounts WHERE id = $1")
            .bind(who.account_id)
            .fetch_one(self.db.pool())
            .await?;
        if r.get::<Option<i64>, _>(2).is_some_and(|t| t > now_millis()) {
            return Err(DomainError::Locked("error.account_locked"));
        }
        if !password::verify_password(pass, &r.get::<String, _>(0)) {
            let locked = self.public_account_failed(Some((who.account_id, r.get(1))), actor, "bad_password").await?;
            return Err(crate::login::refusal(locked));
        }
        let mut tx = self.db.begin_write().await?;
        let stage = crate::Stage::Complete;
        if !crate::passkeys::renew_session(&mut tx, crate::Realm::Public, who.session_id, who.account_id, stage, "pwd").await? {
            return Err(DomainError::Unauthenticated("public.error.login_required"));
        }
        let details = json!({"factor": "password", "reauthenticated": true});
        self.audit.append(&mut tx, actor, Entry::success("public.login", "public_account", who.account_id, details)).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Creates a public session in `tx`, logged in by the methods `amr`; answers its secret.
    /// `stage` is `complete`, or `otp` while a one-time code is awaited.
    pub(crate) async fn open_public_session(
        &self,
        tx: &mut WriteTx,
        account_id: i64,
        amr: &str,
        stage: &str,
        ip: &str,
    ) -> DomainResult<String> {
        let secret = token::random_token();
        let now = now_millis();
        sqlx::query(
            "INSERT INTO public_sessions (token_hash, account_id, csrf_token, created_at, last_seen_at, expires_at, ip, amr, auth_time, stage) \
             VALUES ($1,$2,$3,$4,$4,$5,$6,$7,$4,$8)",
        )
        .bind(sm3_hex(secret.as_bytes()))
        .bind(account_id)
        .bind(token::random_token())
        .bind(now)
        .bind(now + self.policy.session_absolute_hours * 3_600_000)
        .bind(ip)
        .bind(amr)
        .bind(stage)
        .execute(tx.conn())
        .await?;
        Ok(secret)
    }

    /// Counts a failed public log-in against the source IP and the name's throttles `keys` (per
    /// source, then anywhere), with its audit record; tells the account's owner (`owner`: id and
    /// phone) by SMS once the name is being slowed down. Answers whether it now is.
    pub(crate) async fn public_login_failed(
        &self,
        owner: Option<(i64, String)>,
        actor: &Actor,
        reason: &str,
        keys: &[AttemptKey; 2],
    ) -> DomainResult<bool> {
        let now = now_millis();
        let window = self.policy.lockout_minutes * 60_000;
        let mut tx = self.db.begin_write().await?;
        let from_here = self.count_attempt(&mut tx, &keys[0], self.policy.lockout_threshold, window, false).await?;
        let anywhere = self.count_attempt(&mut tx, &keys[1], PUBLIC_ACCOUNT_THRESHOLD, window, false).await?;
        let throttled = from_here.is_some() || anywhere.is_some();
        self.count_ip_failure(&mut tx, &actor.ip, now, window).await?;
        let object = owner.as_ref().map(|(id, _)| id.to_string()).unwrap_or_default();
        let entry = Entry::success("public.login", "public_account", object, json!({"reason": reason, "throttled": throttled}))
            .with_outcome(Outcome::Failure);
        self.audit.append(&mut tx, actor, entry).await?;
        if let Some((id, phone)) = owner.filter(|_| throttled)
            && self.due_warning(&mut tx, &keys[1]).await?
        {
            let text = "【通办】您的账号近期多次登录失败，已暂时限制尝试。如非本人操作，请尽快修改密码。";
            tongban_notify::send_later(&mut tx, tongban_notify::Channel::Sms, &phone, "账号安全提醒", text).await?;
            let e = Entry::success("public.login.warned", "public_account", id, json!({"channel": "sms"}));
            self.audit.append(&mut tx, actor, e).await?;
        }
        tx.commit().await?;
        Ok(throttled)
    }

    /// Counts a failure of an account already known to be its holder's (a wrong one-time code,
    /// a wrong password at re-authentication): five lock the account.
    pub(crate) async fn public_account_failed(&self, account: Option<(i64, i64)>, actor: &Actor, reason: &str) -> DomainResult<bool> {
        let now = now_millis();
        let window = self.policy.lockout_minutes * 60_000;
        let mut tx = self.db.begin_write().await?;
        let mut locked = false;
        if let Some((id, failed)) = account {
            locked = failed + 1 >= self.policy.lockout_threshold;
            let (failed, until) = if locked { (0, Some(now + window)) } else { (failed + 1, None) };
            sqlx::query("UPDATE public_accounts SET failed_logins = $2, locked_until = COALESCE($3, locked_until) WHERE id = $1")
                .bind(id)
                .bind(failed)
                .bind(until)
                .execute(tx.conn())
                .await?;
        }
        self.count_ip_failure(&mut tx, &actor.ip, now, window).await?;
        let object = account.map(|(id, _)| id.to_string()).unwrap_or_default();
        let entry = Entry::success("public.login", "public_account", object, json!({"reason": reason, "locked": locked}))
            .with_outcome(Outcome::Failure);
        self.audit.append(&mut tx, actor, entry).await?;
        tx.commit().await?;
        Ok(locked)
    }

    /// The citizen behind a public session secret; `None` when unknown, revoked, idle or expired.
    pub async fn public_session(&self, secret: &str) -> DomainResult<Option<PublicPrincipal>> {
        if secret.is_empty() || secret.len() > 128 {
            return Ok(None);
        }
        let row = sqlx::query(
            "SELECT s.id, a.id, a.kind, a.name, a.cert_no, a.phone, a.email, s.csrf_token, s.last_seen_at, s.expires_at, s.revoked_at, a.enabled, a.login_otp \
             FROM public_sessions s JOIN public_accounts a ON a.id = s.account_id WHERE s.token_hash = $1 AND s.stage = 'complete'",
        )
        .bind(sm3_hex(secret.as_bytes()))
        .fetch_optional(self.db.pool())
        .await?;
        let Some(r) = row else { return Ok(None) };
        let now = now_millis();
        let last_seen: i64 = r.get(8);
        if r.get::<Option<i64>, _>(10).is_some()
            || r.get::<i64, _>(9) <= now
            || last_seen + self.policy.session_idle_minutes * 60_000 <= now
            || r.get::<i64, _>(11) == 0
        {
            return Ok(None);
        }
        let session_id: i64 = r.get(0);
        if now - last_seen > 60_000 {
            sqlx::query("UPDATE public_sessions SET last_seen_at = $2 WHERE id = $1")
                .bind(session_id)
                .bind(now)
                .execute(self.db.pool())
                .await?;
        }
        let kind = PublicKind::parse(&r.get::<String, _>(2)).unwrap_or(PublicKind::Person);
        let cert: String = r.get(4);
        Ok(Some(PublicPrincipal {
            session_id,
            account_id: r.get(1),
            kind,
            name: r.get(3),
            cert_masked: mask_id_number(&cert),
            phone: r.get(5),
            email: r.get(6),
            csrf_token: r.get(7),
            login_otp: r.get(12),
        }))
    }

    /// Ends a public session (退出).
    pub async fn logout_public(&self, who: &PublicPrincipal, actor: &Actor) -> DomainResult<()> {
        let mut tx = self.db.begin_write().await?;
        sqlx::query("UPDATE public_sessions SET revoked_at = $2 WHERE id = $1")
            .bind(who.session_id)
            .bind(now_millis())
            .execute(tx.conn())
            .await?;
        self.audit.append(&mut tx, actor, Entry::success("public.logout", "public_account", who.account_id, json!({}))).await?;
        tx.commit().await?;
        Ok(())
    }
}
