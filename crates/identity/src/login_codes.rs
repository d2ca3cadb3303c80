//! One-time log-in codes for the public realm (短信/邮件验证码): a citizen may ask for a code at
//! every log-in (second factor), and a relying party may ask for one (`acr_values` mfa, step-up)
//! of a session that logged in with a password only. Codes go out through the notify gateway's
//! queue (SMS or e-mail), are six digits, live five minutes, allow five tries, and are stored as
//! SM3 digests salted with their session. Sending is rate-limited per session and per account.

use serde::Serialize;
use serde_json::json;
use sqlx::Row;
use tongban_audit::{Actor, Entry};
use tongban_crypto::{sm3_hex, token};
use tongban_notify::Channel;
use tongban_platform::{DomainError, clock::now_millis, error::DomainResult};

use crate::service::IdentityService;

const CODE_MILLIS: i64 = 5 * 60_000;
const MAX_TRIES: i64 = 5;
/// One code a minute per session, ten an hour per account.
const RESEND_MILLIS: i64 = 60_000;
const PER_HOUR: i64 = 10;
/// The methods a password plus a one-time code proves (RFC 8176).
pub const OTP_AMR: &str = "pwd otp mfa";

/// How a citizen receives log-in codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LoginOtp {
    /// No code at log-in (step-up still sends one by SMS).
    None,
    /// By SMS to the registered mobile number.
    Sms,
    /// By e-mail to the registered address.
    Email,
}

impl LoginOtp {
    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            LoginOtp::None => "none",
            LoginOtp::Sms => "sms",
            LoginOtp::Email => "email",
        }
    }

    /// Parses a stored or submitted name.
    pub fn parse(s: &str) -> Option<LoginOtp> {
        match s {
            "none" => Some(LoginOtp::None),
            "sms" => Some(LoginOtp::Sms),
            "email" => Some(LoginOtp::Email),
            _ => None,
        }
    }
}

/// A public session waiting for (or asked to give) a one-time code.
#[derive(Debug, Clone, Serialize)]
pub struct CodeLogin {
    /// The session.
    pub session_id: i64,
    /// The account.
    pub account_id: i64,
    /// Where the code goes.
    pub channel: LoginOtp,
    /// The destination, masked for display (`138****1234`).
    pub masked_to: String,
    /// Whether the session is still waiting (log-in) rather than complete (step-up).
    pub pending: bool,
}

fn mask(to: &str) -> String {
    let chars: Vec<char> = to.chars().collect();
    match to.split_once('@') {
        Some((name, domain)) => format!("{}***@{domain}", name.chars().next().unwrap_or('*')),
        None if chars.len() >= 7 => {
            format!("{}****{}", chars[..3].iter().collect::<String>(), chars[chars.len() - 4..].iter().collect::<String>())
        }
        None => "****".into(),
    }
}

fn code_hash(session_id: i64, code: &str) -> String {
    sm3_hex(format!("{session_id}:{code}").as_bytes())
}

impl IdentityService {
    /// The session behind a public cookie if it waits for a code, or is complete (step-up).
    pub async fn code_login(&self, secret: &str) -> DomainResult<Option<CodeLogin>> {
        if secret.is_empty() || secret.len() > 128 {
            return Ok(None);
        }
        let row = sqlx::query(
            "SELECT s.id, a.id, a.login_otp, a.phone, a.email, s.stage FROM public_sessions s JOIN public_accounts a ON a.id = s.account_id \
             WHERE s.token_hash = $1 AND s.revoked_at IS NULL AND s.expires_at > $2 AND a.enabled = 1",
        )
        .bind(sm3_hex(secret.as_bytes()))
        .bind(now_millis())
        .fetch_optional(self.db.pool())
        .await?;
        Ok(row.map(|r| {
            // Step-up of an account without a chosen channel: SMS to the registered mobile.
            let channel = match LoginOtp::parse(&r.get::<String, _>(2)) {
                Some(LoginOtp::Email) if !r.get::<String, _>(4).is_empty() => LoginOtp::Email,
                _ => LoginOtp::Sms,
            };
            let to: String = if channel == LoginOtp::Email { r.get(4) } else { r.get(3) };
            CodeLogin { session_id: r.get(0), account_id: r.get(1), channel, masked_to: mask(&to), pending: r.get::<String, _>(5) == "otp" }
        }))
    }

    /// Sends a new code to the session's account, within the rate limits.
    pub async fn send_login_code(&self, login: &CodeLogin, actor: &Actor) -> DomainResult<()> {
        let now = now_millis();
        let row = sqlx::query(
            "SELECT MAX(CASE WHEN c.session_id = $1 THEN c.created_at END), COUNT(*) FROM login_codes c \
             JOIN public_sessions s ON s.id = c.session_id WHERE s.account_id = $2 AND c.created_at > $3",
        )
        .bind(login.session_id)
        .bind(login.account_id)
        .bind(now - 3_600_000)
        .fetch_one(self.db.pool())
        .await?;
        if row.get::<Option<i64>, _>(0).is_some_and(|t| t + RESEND_MILLIS > now) || row.get::<i64, _>(1) >= PER_HOUR {
            return Err(DomainError::Locked("otp.error.too_soon"));
        }
        let to: String = sqlx::query(match login.channel {
            LoginOtp::Email => "SELECT email FROM public_accounts WHERE id = $1",
            _ => "SELECT phone FROM public_accounts WHERE id = $1",
        })
        .bind(login.account_id)
        .fetch_one(self.db.pool())
        .await?
        .get(0);
        let code = token::six_digit_code();
        let mut tx = self.db.begin_write().await?;
        sqlx::query("UPDATE login_codes SET used_at = $2 WHERE session_id = $1 AND used_at IS NULL")
            .bind(login.session_id)
            .bind(now)
            .execute(tx.conn())
            .await?;
        let channel = if login.channel == LoginOtp::Email { "email" } else { "sms" };
        sqlx::query("INSERT INTO login_codes (session_id, channel, code_hash, attempts, created_at, expires_at) VALUES ($1,$2,$3,0,$4,$5)")
            .bind(login.session_id)
            .bind(channel)
            .bind(code_hash(login.session_id, &code))
            .bind(now)
            .bind(now + CODE_MILLIS)
            .execute(tx.conn())
            .await?;
        let text = format!("您的登录验证码为 {code}，5 分钟内有效。请勿告诉他人；如非本人操作，请忽略。");
        let channel = if login.channel == LoginOtp::Email { Channel::Email } else { Channel::Sms };
        tongban_notify::send_later(&mut tx, channel, &to, "登录验证码", &text).await?;
        let details = json!({"channel": login.channel.as_str(), "to": login.masked_to});
        self.audit.append(&mut tx, actor, Entry::success("public.otp.send", "public_account", login.account_id, details)).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Checks a code: the session completes its log-in (or is stepped up) with `amr` = pwd otp
    /// mfa. Wrong codes count against the account like wrong passwords; a code dies after five.
    pub async fn verify_login_code(&self, login: &CodeLogin, code: &str, actor: &Actor) -> DomainResult<()> {
        let code = code.trim();
        if code.is_empty() {
            return Err(DomainError::invalid("code", "error.required"));
        }
        let now = now_millis();
        let row = sqlx::query(
            "SELECT id, code_hash, attempts FROM login_codes WHERE session_id = $1 AND used_at IS NULL AND expires_at > $2 ORDER BY id DESC LIMIT 1",
        )
        .bind(login.session_id)
        .bind(now)
        .fetch_optional(self.db.pool())
        .await?;
        let Some(row) = row else {
            return Err(DomainError::invalid("code", "otp.error.expired"));
        };
        let (code_id, attempts): (i64, i64) = (row.get(0), row.get(2));
        if !token::constant_time_eq(row.get::<String, _>(1).as_bytes(), code_hash(login.session_id, code).as_bytes()) {
            let mut tx = self.db.begin_write().await?;
            let spent = if attempts + 1 >= MAX_TRIES { Some(now) } else { None };
            sqlx::query("UPDATE login_codes SET attempts = attempts + 1, used_at = $2 WHERE id = $1")
                .bind(code_id)
                .bind(spent)
                .execute(tx.conn())
                .await?;
            tx.commit().await?;
            let failed: i64 = sqlx::query("SELECT failed_logins FROM public_accounts WHERE id = $1")
                .bind(login.account_id)
                .fetch_one(self.db.pool())
                .await?
                .get(0);
            let locked = self.public_account_failed(Some((login.account_id, failed)), actor, "bad_code").await?;
            if locked {
                return Err(DomainError::Locked("error.account_locked"));
            }
            return Err(DomainError::invalid("code", "otp.error.wrong"));
        }
        let mut tx = self.db.begin_write().await?;
        sqlx::query("UPDATE login_codes SET used_at = $2 WHERE id = $1").bind(code_id).bind(now).execute(tx.conn()).await?;
        sqlx::query("UPDATE public_sessions SET stage = 'complete', amr = $2, auth_time = $3 WHERE id = $1")
            .bind(login.session_id)
            .bind(OTP_AMR)
            .bind(now)
            .execute(tx.conn())
            .await?;
        sqlx::query("UPDATE public_accounts SET failed_logins = 0 WHERE id = $1").bind(login.account_id).execute(tx.conn()).await?;
        let details = json!({"factor": "otp", "channel": login.channel.as_str(), "step_up": !login.pending});
        self.audit.append(&mut tx, actor, Entry::success("public.login", "public_account", login.account_id, details)).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Chooses how the citizen receives log-in codes (`none`, `sms`, `email` if an address is on
    /// file).
    pub async fn set_login_otp(&self, who: &crate::PublicPrincipal, actor: &Actor, choice: &str) -> DomainResult<()> {
        let choice = LoginOtp::parse(choice.trim()).ok_or_else(|| DomainError::invalid("login_otp", "error.invalid_value"))?;
        if choice == LoginOtp::Email && who.email.is_empty() {
            return Err(DomainError::invalid("login_otp", "otp.error.no_email"));
        }
        let mut tx = self.db.begin_write().await?;
        sqlx::query("UPDATE public_accounts SET login_otp = $2 WHERE id = $1")
            .bind(who.account_id)
            .bind(choice.as_str())
            .execute(tx.conn())
            .await?;
        let details = json!({"login_otp": choice.as_str()});
        self.audit.append(&mut tx, actor, Entry::success("public.otp.setting", "public_account", who.account_id, details)).await?;
        tx.commit().await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destinations_are_masked() {
        assert_eq!(mask("13807351234"), "138****1234");
        assert_eq!(mask("lijiahe@example.cn"), "l***@example.cn");
        assert_eq!(mask("12"), "****");
    }

    #[test]
    fn codes_are_bound_to_their_session() {
        assert_ne!(code_hash(1, "123456"), code_hash(2, "123456"));
    }
}
