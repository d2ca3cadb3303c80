//! Certificate log-in for staff (证书登录, U 盾). The security administrator issues a certificate
//! from the county CA for the key on a member of staff's USB key; the holder binds it to their own
//! account by signing a challenge with that key while logged in with their own factors (nobody
//! binds a certificate to another's account). The holder then logs in either by signing a
//! one-time server challenge (the flow USB-key middleware drives), or through a TLS-terminating
//! proxy that verified the client certificate and passes it in a configured header. At binding
//! and at every log-in the certificate must be trusted ([`CertificateTrust`]: issued for this
//! account by the county CA, not revoked), valid now and bound to the account.

use base64::{Engine, engine::general_purpose::STANDARD};
use serde::Serialize;
use serde_json::json;
use sqlx::Row;
use tongban_audit::{Actor, Entry};
use tongban_authz::Principal;
use tongban_crypto::{
    cert::{CertError, CertificateInfo, KeyAlgorithm, parse_certificate, verify_signature},
    token,
};
use tongban_platform::{DomainError, clock::now_millis, error::DomainResult};

use crate::{
    Realm,
    passkeys::{PasskeyLogin, StrongLogin},
    service::IdentityService,
    sessions::AuthSession,
};

/// What the certificate authority says of a certificate presented for an account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertificateStatus {
    /// Issued for this account by a CA trusted for log-in, and not revoked.
    Trusted,
    /// Not issued by a trusted CA, or issued for another account.
    Untrusted,
    /// Revoked (it is on the CRL).
    Revoked,
}

/// The trust anchor for certificate log-in (证书信任): the composition root supplies the county
/// CA here. Without one, no certificate is trusted.
#[async_trait::async_trait]
pub trait CertificateTrust: Send + Sync {
    /// Checks `cert` for the account `user_id` (its chain and its revocation, now).
    async fn status_for(&self, cert: &CertificateInfo, user_id: i64) -> DomainResult<CertificateStatus>;
}

/// The methods a certificate log-in proves (RFC 8176): a hardware-held key, a smart card.
pub const CERTIFICATE_AMR: &str = "hwk sc";

/// A certificate bound to an account, as the account's page lists it.
#[derive(Debug, Clone, Serialize)]
pub struct BoundCertificate {
    /// Row id.
    pub id: i64,
    /// Subject DN.
    pub subject: String,
    /// Issuer DN.
    pub issuer: String,
    /// Serial number, hex.
    pub serial: String,
    /// `sm2` or `p256`.
    pub algorithm: String,
    /// SM3 fingerprint, hex.
    pub fingerprint: String,
    /// Valid until (ms).
    pub not_after: i64,
    /// Unbound at (ms).
    pub revoked_at: Option<i64>,
}

/// A challenge for a certificate log-in: sign `to_sign` (its UTF-8 bytes) with the certificate's
/// private key and send the signature back with `handle`.
#[derive(Debug, Clone, Serialize)]
pub struct CertificateChallenge {
    /// Opaque id of the challenge.
    pub handle: String,
    /// The exact text to sign; it names this server so a signature serves nowhere else.
    pub to_sign: String,
}

fn cert_error(e: CertError) -> DomainError {
    match e {
        CertError::Malformed => DomainError::invalid("certificate", "cert.error.malformed"),
        CertError::UnsupportedKey(alg) => DomainError::invalid_detail("certificate", "cert.error.unsupported", &alg),
    }
}

fn unix_now() -> i64 {
    now_millis() / 1000
}

impl IdentityService {
    async fn trust_status(&self, cert: &CertificateInfo, user_id: i64) -> DomainResult<CertificateStatus> {
        match &self.certificate_trust {
            Some(trust) => trust.status_for(cert, user_id).await,
            None => Ok(CertificateStatus::Untrusted),
        }
    }

    /// Starts binding a certificate to the caller's own account (绑定证书): checks that the
    /// county CA issued it for this account and has not revoked it, and answers a challenge to
    /// sign with its key. Only a session that proved a second factor may bind.
    pub async fn begin_certificate_binding(
        &self,
        session: &AuthSession,
        actor: &Actor,
        certificate: &str,
    ) -> DomainResult<CertificateChallenge> {
        session.principal()?;
        if !session.second_factor {
            self.audit.record_denied(&self.db, actor, "user.certificate.bind", "user", session.user_id, "no_second_factor").await;
            return Err(DomainError::Forbidden("cert.error.second_factor_needed"));
        }
        let cert = self.bindable(session.user_id, certificate).await?;
        let to_sign =
            format!("tongban-bind-certificate\n{}\n{}\n{}\n{}", self.public_url, session.username, cert.fingerprint, token::random_token());
        let handle = self.store_ceremony(Realm::Staff, "certificate_bind", Some(session.user_id), &to_sign).await?;
        Ok(CertificateChallenge { handle, to_sign })
    }

    /// Finishes a binding: the challenge `handle` (spent whatever the outcome), the certificate
    /// again and the signature over the challenge text made with its key (proof of possession).
    pub async fn finish_certificate_binding(
        &self,
        session: &AuthSession,
        actor: &Actor,
        handle: &str,
        certificate: &str,
        signature_b64: &str,
    ) -> DomainResult<i64> {
        session.principal()?;
        let (owner, to_sign) = self.take_ceremony(Realm::Staff, "certificate_bind", handle).await?;
        if owner != Some(session.user_id) || !session.second_factor {
            return Err(DomainError::invalid("handle", "passkey.error.expired"));
        }
        let cert = self.bindable(session.user_id, certificate).await?;
        if to_sign.lines().nth(3) != Some(cert.fingerprint.as_str()) {
            return Err(DomainError::invalid("certificate", "cert.error.other_certificate"));
        }
        let signature =
            STANDARD.decode(signature_b64.trim()).map_err(|_| DomainError::invalid("signature", "cert.error.signature_format"))?;
        if !verify_signature(cert.algorithm, &cert.public_key, to_sign.as_bytes(), &signature) {
            self.audit.record_denied(&self.db, actor, "user.certificate.bind", "user", session.user_id, "bad_signature").await;
            return Err(DomainError::invalid("signature", "cert.error.bad_signature"));
        }
        let mut tx = self.db.begin_write().await?;
        let id: i64 = sqlx::query(
            "INSERT INTO user_certificates (user_id, fingerprint, subject, issuer, serial, algorithm, public_key, not_before, not_after, pem, created_at) \
             VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11) RETURNING id",
        )
        .bind(session.user_id)
        .bind(&cert.fingerprint)
        .bind(&cert.subject)
        .bind(&cert.issuer)
        .bind(&cert.serial)
        .bind(cert.algorithm.as_str())
        .bind(hex::encode(&cert.public_key))
        .bind(cert.not_before * 1000)
        .bind(cert.not_after * 1000)
        .bind(&cert.pem)
        .bind(now_millis())
        .fetch_one(tx.conn())
        .await?
        .get(0);
        let details =
            json!({"username": session.username, "subject": cert.subject, "serial": cert.serial, "fingerprint": cert.fingerprint});
        self.audit.append(&mut tx, actor, Entry::success("user.certificate.bind", "user_certificate", id, details)).await?;
        tx.commit().await?;
        Ok(id)
    }

    /// A certificate that `user_id` may bind: readable, SM2 or P-256, valid now, trusted for
    /// this account, and bound nowhere yet.
    async fn bindable(&self, user_id: i64, certificate: &str) -> DomainResult<CertificateInfo> {
        if certificate.len() > 16 * 1024 {
            return Err(DomainError::invalid("certificate", "cert.error.malformed"));
        }
        let cert = parse_certificate(certificate.as_bytes()).map_err(cert_error)?;
        if !cert.valid_at(unix_now()) {
            return Err(DomainError::invalid("certificate", "cert.error.expired"));
        }
        match self.trust_status(&cert, user_id).await? {
            CertificateStatus::Trusted => {}
            CertificateStatus::Untrusted => return Err(DomainError::invalid("certificate", "cert.error.untrusted")),
            CertificateStatus::Revoked => return Err(DomainError::invalid("certificate", "cert.error.revoked")),
        }
        let taken = sqlx::query("SELECT 1 FROM user_certificates WHERE fingerprint = $1")
            .bind(&cert.fingerprint)
            .fetch_optional(self.db.pool())
            .await?;
        if taken.is_some() {
            return Err(DomainError::invalid("certificate", "cert.error.registered"));
        }
        Ok(cert)
    }

    /// The certificates bound to an account, newest first (readable by whoever may see it).
    pub async fn certificates(&self, caller: &Principal, actor: &Actor, user_id: i64) -> DomainResult<Vec<BoundCertificate>> {
        self.user(caller, actor, user_id).await?;
        self.bound_certificates(user_id).await
    }

    /// The certificates bound to the caller's own account.
    pub async fn my_certificates(&self, session: &AuthSession) -> DomainResult<Vec<BoundCertificate>> {
        self.bound_certificates(session.principal()?.user_id).await
    }

    async fn bound_certificates(&self, user_id: i64) -> DomainResult<Vec<BoundCertificate>> {
        let rows = sqlx::query(
            "SELECT id, subject, issuer, serial, algorithm, fingerprint, not_after, revoked_at FROM user_certificates \
             WHERE user_id = $1 ORDER BY id DESC",
        )
        .bind(user_id)
        .fetch_all(self.db.pool())
        .await?;
        Ok(rows
            .iter()
            .map(|r| BoundCertificate {
                id: r.get(0),
                subject: r.get(1),
                issuer: r.get(2),
                serial: r.get(3),
                algorithm: r.get(4),
                fingerprint: r.get(5),
                not_after: r.get(6),
                revoked_at: r.get(7),
            })
            .collect())
    }

    /// Unbinds a certificate: it logs in no more (the row stays for the record).
    pub async fn unbind_certificate(&self, caller: &Principal, actor: &Actor, user_id: i64, cert_id: i64) -> DomainResult<()> {
        let user = self.guard_account(caller, actor, user_id, "user.certificate.unbind", crate::users::AccountChange::Protective).await?;
        let mut tx = self.db.begin_write().await?;
        let done = sqlx::query("UPDATE user_certificates SET revoked_at = $3 WHERE id = $1 AND user_id = $2 AND revoked_at IS NULL")
            .bind(cert_id)
            .bind(user.id)
            .bind(now_millis())
            .execute(tx.conn())
            .await?;
        if done.rows_affected() == 0 {
            return Err(DomainError::NotFound("error.not_found"));
        }
        let details = json!({"username": user.username});
        self.audit.append(&mut tx, actor, Entry::success("user.certificate.unbind", "user_certificate", cert_id, details)).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Starts a certificate log-in: a one-time challenge valid for five minutes.
    pub async fn begin_certificate_login(&self, ip: &str) -> DomainResult<CertificateChallenge> {
        if self.ip_blocked(ip).await? {
            return Err(DomainError::Locked("error.ip_locked"));
        }
        let nonce = token::random_token();
        let to_sign = format!("tongban-login\n{}\n{nonce}", self.public_url);
        let handle = self.store_ceremony(Realm::Staff, "certificate", None, &to_sign).await?;
        Ok(CertificateChallenge { handle, to_sign })
    }

    /// Finishes a certificate log-in: the challenge `handle` (spent whatever the outcome), the
    /// certificate (PEM or base64 DER) and the signature over the challenge text (base64, DER or
    /// raw `r‖s`). Opens a session, or renews `current` when it is the same account's.
    pub async fn finish_certificate_login(
        &self,
        handle: &str,
        certificate: &str,
        signature_b64: &str,
        actor: &Actor,
        current: Option<i64>,
    ) -> DomainResult<PasskeyLogin> {
        if self.ip_blocked(&actor.ip).await? {
            return Err(DomainError::Locked("error.ip_locked"));
        }
        let cert = parse_certificate(certificate.as_bytes()).map_err(cert_error)?;
        let signature =
            STANDARD.decode(signature_b64.trim()).map_err(|_| DomainError::invalid("signature", "cert.error.signature_format"))?;
        let (_, to_sign) = self.take_ceremony(Realm::Staff, "certificate", handle).await?;
        let Some((cert_id, user_id)) = self.bound_owner(&cert).await? else {
            return Err(self.strong_login_failed(Realm::Staff, None, actor, "certificate", "not_bound").await?);
        };
        if !verify_signature(cert.algorithm, &cert.public_key, to_sign.as_bytes(), &signature) {
            return Err(self.strong_login_failed(Realm::Staff, Some(user_id), actor, "certificate", "bad_signature").await?);
        }
        self.open_certificate_session(cert_id, user_id, &cert, actor, current, "signed_challenge").await
    }

    /// Logs in with the client certificate that a TLS-terminating proxy verified and passed in
    /// the configured header (`security.client_cert_header`).
    pub async fn certificate_login_from_proxy(
        &self,
        header_value: &str,
        actor: &Actor,
        current: Option<i64>,
    ) -> DomainResult<PasskeyLogin> {
        if self.policy.client_cert_header.is_empty() {
            return Err(DomainError::NotFound("cert.error.proxy_off"));
        }
        if self.ip_blocked(&actor.ip).await? {
            return Err(DomainError::Locked("error.ip_locked"));
        }
        if header_value.trim().is_empty() {
            return Err(DomainError::Unauthenticated("cert.error.no_certificate"));
        }
        let cert = parse_certificate(header_value.as_bytes()).map_err(cert_error)?;
        let Some((cert_id, user_id)) = self.bound_owner(&cert).await? else {
            return Err(self.strong_login_failed(Realm::Staff, None, actor, "certificate", "not_bound").await?);
        };
        self.open_certificate_session(cert_id, user_id, &cert, actor, current, "proxy").await
    }

    /// The bound, unrevoked certificate with this fingerprint and its account.
    async fn bound_owner(&self, cert: &CertificateInfo) -> DomainResult<Option<(i64, i64)>> {
        let row = sqlx::query("SELECT id, user_id, algorithm FROM user_certificates WHERE fingerprint = $1 AND revoked_at IS NULL")
            .bind(&cert.fingerprint)
            .fetch_optional(self.db.pool())
            .await?;
        Ok(row.filter(|r| KeyAlgorithm::parse(&r.get::<String, _>(2)) == Some(cert.algorithm)).map(|r| (r.get(0), r.get(1))))
    }

    async fn open_certificate_session(
        &self,
        cert_id: i64,
        user_id: i64,
        cert: &CertificateInfo,
        actor: &Actor,
        current: Option<i64>,
        via: &str,
    ) -> DomainResult<PasskeyLogin> {
        if !cert.valid_at(unix_now()) {
            return Err(self.strong_login_failed(Realm::Staff, Some(user_id), actor, "certificate", "expired").await?);
        }
        match self.trust_status(cert, user_id).await? {
            CertificateStatus::Trusted => {}
            CertificateStatus::Untrusted => {
                return Err(self.strong_login_failed(Realm::Staff, Some(user_id), actor, "certificate", "untrusted").await?);
            }
            CertificateStatus::Revoked => {
                return Err(self.strong_login_failed(Realm::Staff, Some(user_id), actor, "certificate", "revoked").await?);
            }
        }
        let stage = self.strong_login_stage(Realm::Staff, user_id, actor, "certificate").await?;
        let mut tx = self.db.begin_write().await?;
        let login = StrongLogin { realm: Realm::Staff, owner_id: user_id, current, stage, amr: CERTIFICATE_AMR };
        let details = json!({"factor": "certificate", "certificate": cert_id, "serial": cert.serial, "via": via});
        let secret = self.open_strong_session(&mut tx, &login, actor, details).await?;
        tx.commit().await?;
        Ok(PasskeyLogin { account_id: user_id, session_secret: secret, stage })
    }
}
