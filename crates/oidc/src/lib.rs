//! OpenID Connect provider (统一身份认证、单点登录): county systems log their users in through
//! tongban. Two realms with their own issuers, keys and clients — staff (内网, the accounts of the
//! spine) and public (citizens and enterprises) — so a citizen can never obtain a staff token.
//!
//! - [`keys`]: ES256/RS256 signing keys sealed at rest, JWKS, rotation.
//! - [`clients`]: relying parties (接入系统): redirect URIs, scopes, grants, secrets.
//! - [`provider`]: authorization code with PKCE, refresh token rotation with reuse detection,
//!   client credentials, userinfo, introspection (RFC 7662), revocation (RFC 7009), logout.

pub mod backchannel;
pub mod clients;
pub mod demo;
pub mod keys;
pub mod provider;
pub mod throttle;

pub use tongban_identity::Realm;

/// Authentication context classes (认证强度等级) that tongban issues as `acr`, weakest first. A
/// client asks for one with `acr_values` (step-up); a session below it logs in again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Acr {
    /// A password.
    Pwd,
    /// Two factors: a password and a one-time code.
    Mfa,
    /// A phishing-resistant key: a passkey or a certificate (U 盾).
    Hwk,
}

impl Acr {
    /// Every class, weakest first (for discovery).
    pub const ALL: [Acr; 3] = [Acr::Pwd, Acr::Mfa, Acr::Hwk];

    /// The `acr` value.
    pub fn uri(self) -> &'static str {
        match self {
            Acr::Pwd => "urn:tongban:acr:pwd",
            Acr::Mfa => "urn:tongban:acr:mfa",
            Acr::Hwk => "urn:tongban:acr:hwk",
        }
    }

    /// Parses an `acr` value.
    pub fn parse(s: &str) -> Option<Acr> {
        Acr::ALL.into_iter().find(|a| a.uri() == s)
    }

    /// The class that a log-in by the methods `amr` (RFC 8176, space-separated) reaches.
    pub fn of_amr(amr: &str) -> Acr {
        let has = |m: &str| amr.split_whitespace().any(|x| x == m);
        if has("hwk") {
            Acr::Hwk
        } else if has("mfa") {
            Acr::Mfa
        } else {
            Acr::Pwd
        }
    }
}

/// An error answered in the OAuth 2.0 / OpenID Connect format (`error`, `error_description`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{error}: {description}")]
pub struct OAuthError {
    /// The registered error code (RFC 6749 §5.2, OIDC Core §3.1.2.6).
    pub error: &'static str,
    /// What was wrong, for the developer of the client.
    pub description: String,
    /// HTTP status for direct responses.
    pub status: u16,
}

impl OAuthError {
    fn new(error: &'static str, status: u16, description: impl Into<String>) -> Self {
        OAuthError { error, description: description.into(), status }
    }

    /// A missing, repeated or malformed parameter.
    pub fn invalid_request(d: impl Into<String>) -> Self {
        Self::new("invalid_request", 400, d)
    }

    /// Client authentication failed.
    pub fn invalid_client(d: impl Into<String>) -> Self {
        Self::new("invalid_client", 401, d)
    }

    /// Too many failed client authentications from this address (answered with 429).
    pub fn throttled() -> Self {
        Self::new("invalid_client", 429, "too many failed client authentications from this address; try again later")
    }

    /// The code, refresh token or credentials are invalid, expired, revoked or not this client's.
    pub fn invalid_grant(d: impl Into<String>) -> Self {
        Self::new("invalid_grant", 400, d)
    }

    /// The client may not use this grant.
    pub fn unauthorized_client(d: impl Into<String>) -> Self {
        Self::new("unauthorized_client", 400, d)
    }

    /// The grant type is not supported.
    pub fn unsupported_grant_type(d: impl Into<String>) -> Self {
        Self::new("unsupported_grant_type", 400, d)
    }

    /// Only `code` is supported.
    pub fn unsupported_response_type(d: impl Into<String>) -> Self {
        Self::new("unsupported_response_type", 400, d)
    }

    /// A scope the client may not ask for.
    pub fn invalid_scope(d: impl Into<String>) -> Self {
        Self::new("invalid_scope", 400, d)
    }

    /// The user refused.
    pub fn access_denied(d: impl Into<String>) -> Self {
        Self::new("access_denied", 403, d)
    }

    /// `prompt=none` but nobody is logged in.
    pub fn login_required(d: impl Into<String>) -> Self {
        Self::new("login_required", 400, d)
    }

    /// `prompt=none` but consent is missing.
    pub fn consent_required(d: impl Into<String>) -> Self {
        Self::new("consent_required", 400, d)
    }

    /// The bearer token is missing, expired, revoked or forged.
    pub fn invalid_token(d: impl Into<String>) -> Self {
        Self::new("invalid_token", 401, d)
    }

    /// Something broke on our side (details go to the log, not the client).
    pub fn server_error() -> Self {
        Self::new("server_error", 500, "internal error")
    }
}

impl From<tongban_platform::DomainError> for OAuthError {
    fn from(e: tongban_platform::DomainError) -> Self {
        tracing::error!("oidc: {e}");
        OAuthError::server_error()
    }
}

impl From<sqlx::Error> for OAuthError {
    fn from(e: sqlx::Error) -> Self {
        tracing::error!("oidc database: {e}");
        OAuthError::server_error()
    }
}
