//! The protocol (协议): authorization requests, codes, tokens, userinfo, introspection,
//! revocation and logout, per OpenID Connect Core 1.0, RFC 6749, RFC 7636 (PKCE, S256 only),
//! RFC 7662, RFC 7009, RFC 9068 (JWT access tokens) and RFC 9207 (`iss` in the response).

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use jsonwebtoken::Algorithm;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use sqlx::Row;
use tongban_audit::{Actor, AuditBatcher, AuditTrail, Entry};
use tongban_crypto::{sm3_hex, token::random_token};
use tongban_platform::{Db, WriteTx, clock::now_millis, error::DomainResult};

use crate::{
    Acr, OAuthError, Realm,
    clients::{Client, ClientRegistry},
    keys::KeyRing,
};

/// How long an authorization code lives (s).
const CODE_TTL_S: i64 = 60;
/// How long an ID token lives (s).
const ID_TOKEN_TTL_S: i64 = 3600;
/// The longest parameter we read; longer ones are refused, not truncated.
const MAX_PARAM: usize = 2048;

/// The parameters of an authorization request (`/authorize`).
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct AuthorizeRequest {
    /// Must be `code`.
    pub response_type: Option<String>,
    /// The client.
    pub client_id: Option<String>,
    /// Must match a registered URI exactly.
    pub redirect_uri: Option<String>,
    /// Space-separated; must include `openid`.
    pub scope: Option<String>,
    /// Echoed back.
    pub state: Option<String>,
    /// Put into the ID token.
    pub nonce: Option<String>,
    /// PKCE challenge (BASE64URL(SHA-256(verifier))).
    pub code_challenge: Option<String>,
    /// Must be `S256` when a challenge is sent.
    pub code_challenge_method: Option<String>,
    /// `none`, `login` or `consent`.
    pub prompt: Option<String>,
    /// Seconds: a log-in older than this must be repeated.
    pub max_age: Option<String>,
    /// Space-separated `acr` values the client asks for, in order of preference.
    pub acr_values: Option<String>,
}

/// Why a live session must log in again before a code is issued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reauth {
    /// The client sent `prompt=login`.
    Forced,
    /// The log-in is older than the client's `max_age`.
    TooOld,
    /// The client asked for at least this class (`acr_values`).
    Stronger(Acr),
}

/// An authorization request that passed every check.
#[derive(Debug, Clone)]
pub struct ValidRequest {
    /// The client.
    pub client: Client,
    /// Where the answer goes.
    pub redirect_uri: String,
    /// Granted scopes, in request order.
    pub scopes: Vec<String>,
    /// Client state.
    pub state: Option<String>,
    /// Nonce.
    pub nonce: Option<String>,
    /// PKCE challenge.
    pub code_challenge: Option<String>,
    /// `prompt` values.
    pub prompt: Vec<String>,
    /// The oldest log-in accepted, in seconds.
    pub max_age: Option<i64>,
    /// The weakest class among the requested `acr_values` that tongban knows (none asked: any).
    pub acr: Option<Acr>,
}

impl ValidRequest {
    /// The redirect carrying an error (with `state` and `iss`).
    pub fn error_redirect(&self, issuer: &str, e: &OAuthError) -> String {
        let mut q = vec![("error", e.error.to_string()), ("error_description", e.description.clone())];
        if let Some(s) = &self.state {
            q.push(("state", s.clone()));
        }
        q.push(("iss", issuer.to_string()));
        with_query(&self.redirect_uri, &q)
    }
}

/// Why an authorization request failed: before the redirect URI is trusted the user sees a page;
/// after, the client gets the error at its redirect URI.
#[derive(Debug)]
pub enum AuthorizeError {
    /// Unknown client or unregistered redirect URI: never redirect.
    Page(OAuthError),
    /// Anything else: redirect with `error`.
    Redirect(Box<ValidRequest>, OAuthError),
}

/// Who is logged in, as the provider needs it.
#[derive(Debug, Clone, Copy)]
pub struct Subject {
    /// Realm.
    pub realm: Realm,
    /// Staff user id or public account id.
    pub id: i64,
    /// The log-in session (the SSO session).
    pub session_id: i64,
}

/// The token endpoint's form.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct TokenRequest {
    /// `authorization_code`, `refresh_token` or `client_credentials`.
    pub grant_type: Option<String>,
    /// The code.
    pub code: Option<String>,
    /// The redirect URI the code was issued for.
    pub redirect_uri: Option<String>,
    /// PKCE verifier.
    pub code_verifier: Option<String>,
    /// The refresh token.
    pub refresh_token: Option<String>,
    /// Requested scope (narrowing on refresh; for client credentials).
    pub scope: Option<String>,
    /// Client id (client_secret_post and public clients).
    pub client_id: Option<String>,
    /// Client secret (client_secret_post).
    pub client_secret: Option<String>,
}

/// Claims of a JWT access token (RFC 9068).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AccessClaims {
    /// Issuer.
    pub iss: String,
    /// Subject: a user or account id, or the client id for client credentials.
    pub sub: String,
    /// Audience: the client.
    pub aud: String,
    /// Expiry (s).
    pub exp: i64,
    /// Issued (s).
    pub iat: i64,
    /// Token id, for revocation.
    pub jti: String,
    /// The client.
    pub client_id: String,
    /// Scopes.
    pub scope: String,
    /// The grant (authorization code and its refresh tokens) the token was issued from; revoking
    /// the grant revokes the token. Absent for client credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gid: Option<String>,
}

/// Claims we read from an ID token hint.
#[derive(Debug, Clone, Deserialize)]
struct HintClaims {
    sub: String,
    aud: String,
}

/// Parameters of RP-initiated logout.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct LogoutRequest {
    /// An ID token we issued (expired is fine).
    pub id_token_hint: Option<String>,
    /// Where to go afterwards (registered exactly).
    pub post_logout_redirect_uri: Option<String>,
    /// Echoed back.
    pub state: Option<String>,
    /// The client, when no hint is given.
    pub client_id: Option<String>,
}

/// The provider.
#[derive(Clone)]
pub struct Provider {
    db: Db,
    audit: AuditTrail,
    /// Signing keys.
    pub keys: KeyRing,
    /// Registered clients.
    pub clients: ClientRegistry,
    /// Audit records of token issues that write nothing else share transactions.
    batched_audit: AuditBatcher,
    /// Failed client authentications per source address.
    client_throttle: crate::throttle::ClientThrottle,
    base_url: String,
    discovery_cache: std::sync::Arc<[std::sync::OnceLock<std::sync::Arc<str>>; 2]>,
}

fn with_query(uri: &str, pairs: &[(&str, String)]) -> String {
    let q = serde_urlencoded::to_string(pairs).unwrap_or_default();
    let sep = if uri.contains('?') { '&' } else { '?' };
    format!("{uri}{sep}{q}")
}

fn too_long(v: &Option<String>) -> bool {
    v.as_ref().is_some_and(|s| s.len() > MAX_PARAM)
}

fn now_s() -> i64 {
    now_millis() / 1000
}

/// The session id claim (`sid`) of a log-in session: stable, not secret, not the session's id.
pub fn sid_of(realm: Realm, session_id: i64) -> String {
    sm3_hex(format!("tongban sid {} {session_id}", realm.as_str()).as_bytes())[..32].to_string()
}

/// The public id of a grant (`gid` claim): derived from its refresh-token family, which stays
/// internal.
fn grant_id_of(family: &str) -> String {
    sm3_hex(format!("tongban grant {family}").as_bytes())[..32].to_string()
}

/// The key under which a revoked grant is listed among revoked access tokens (a `jti` never has
/// a colon).
fn revoked_grant_key(gid: &str) -> String {
    format!("grant:{gid}")
}

/// How long a grant's revocation is kept: the longest access-token lifetime a client may have.
const LONGEST_ACCESS_TTL_MS: i64 = 86_400_000;

fn pkce_matches(verifier: &str, challenge: &str) -> bool {
    let ok_chars = verifier.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b));
    (43..=128).contains(&verifier.len()) && ok_chars && URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes())) == challenge
}

impl Provider {
    /// The provider over `db`, answering as `base_url` (scheme, host and port, no trailing slash).
    pub fn new(db: Db, audit: AuditTrail, keys: KeyRing, base_url: &str) -> Self {
        let clients = ClientRegistry::new(db.clone(), audit.clone());
        let batched_audit = AuditBatcher::new(db.clone(), audit.clone());
        let base_url = base_url.trim_end_matches('/').to_string();
        Provider {
            db,
            audit,
            keys,
            clients,
            batched_audit,
            client_throttle: Default::default(),
            base_url,
            discovery_cache: Default::default(),
        }
    }

    /// The realm's issuer identifier.
    pub fn issuer(&self, realm: Realm) -> String {
        format!("{}/realms/{}", self.base_url, realm.as_str())
    }

    /// The discovery document, serialised (it only changes with the configuration).
    pub fn discovery_text(&self, realm: Realm) -> std::sync::Arc<str> {
        let slot = match realm {
            Realm::Staff => &self.discovery_cache[0],
            Realm::Public => &self.discovery_cache[1],
        };
        slot.get_or_init(|| self.discovery(realm).to_string().into()).clone()
    }

    /// The discovery document (`/.well-known/openid-configuration`).
    pub fn discovery(&self, realm: Realm) -> Value {
        let iss = self.issuer(realm);
        json!({
            "issuer": iss,
            "authorization_endpoint": format!("{iss}/authorize"),
            "token_endpoint": format!("{iss}/token"),
            "userinfo_endpoint": format!("{iss}/userinfo"),
            "jwks_uri": format!("{iss}/jwks"),
            "introspection_endpoint": format!("{iss}/introspect"),
            "revocation_endpoint": format!("{iss}/revoke"),
            "end_session_endpoint": format!("{iss}/logout"),
            "scopes_supported": crate::clients::KNOWN_SCOPES,
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "grant_types_supported": crate::clients::KNOWN_GRANTS,
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["ES256", "RS256"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
            "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
            "code_challenge_methods_supported": ["S256"],
            "claims_supported": ["sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "sid", "amr", "acr", "at_hash", "azp",
                "name", "preferred_username", "email", "phone_number", "unit", "unit_id", "roles"],
            "acr_values_supported": Acr::ALL.map(Acr::uri),
            "authorization_response_iss_parameter_supported": true,
            "backchannel_logout_supported": true,
            "backchannel_logout_session_supported": true,
            "frontchannel_logout_supported": false,
        })
    }

    /// Checks an authorization request (OIDC Core §3.1.2.2).
    pub async fn check_authorize(&self, realm: Realm, req: &AuthorizeRequest) -> Result<ValidRequest, AuthorizeError> {
        let page = |d: &str| AuthorizeError::Page(OAuthError::invalid_request(d));
        let client_id = req.client_id.as_deref().ok_or_else(|| page("client_id is missing"))?;
        let client = match self.clients.find(realm, client_id).await {
            Ok(Some(c)) => c,
            Ok(None) => return Err(AuthorizeError::Page(OAuthError::invalid_client("unknown client"))),
            Err(e) => return Err(AuthorizeError::Page(e.into())),
        };
        let redirect_uri = req.redirect_uri.as_deref().ok_or_else(|| page("redirect_uri is missing"))?;
        if !client.redirect_uris.iter().any(|u| u == redirect_uri) {
            return Err(page("redirect_uri is not registered for this client"));
        }
        let mut valid = ValidRequest {
            client: client.clone(),
            redirect_uri: redirect_uri.to_string(),
            scopes: Vec::new(),
            state: req.state.clone().filter(|s| s.len() <= MAX_PARAM),
            nonce: req.nonce.clone(),
            code_challenge: req.code_challenge.clone(),
            prompt: req.prompt.as_deref().unwrap_or("").split_whitespace().map(String::from).collect(),
            max_age: None,
            acr: req.acr_values.as_deref().unwrap_or("").split_whitespace().filter_map(Acr::parse).min(),
        };
        let fail = |v: &ValidRequest, e: OAuthError| Err(AuthorizeError::Redirect(Box::new(v.clone()), e));
        if [&req.state, &req.nonce, &req.scope, &req.code_challenge, &req.prompt, &req.max_age, &req.acr_values].into_iter().any(too_long) {
            return fail(&valid, OAuthError::invalid_request("a parameter is too long"));
        }
        if req.response_type.as_deref() != Some("code") {
            return fail(&valid, OAuthError::unsupported_response_type("only response_type=code is supported"));
        }
        if !client.allows_grant("authorization_code") {
            return fail(&valid, OAuthError::unauthorized_client("this client may not use the authorization code flow"));
        }
        let scopes: Vec<&str> = req.scope.as_deref().unwrap_or("").split_whitespace().collect();
        if !scopes.contains(&"openid") {
            return fail(&valid, OAuthError::invalid_scope("scope must include openid"));
        }
        if !client.allows_scopes(&scopes) {
            return fail(&valid, OAuthError::invalid_scope("a requested scope is not allowed for this client"));
        }
        valid.scopes = scopes.iter().map(|s| s.to_string()).collect();
        match (req.code_challenge.as_deref(), req.code_challenge_method.as_deref()) {
            (Some(c), Some("S256")) if c.len() == 43 => {}
            (Some(_), Some("S256")) => return fail(&valid, OAuthError::invalid_request("code_challenge must be 43 characters")),
            (Some(_), _) => return fail(&valid, OAuthError::invalid_request("code_challenge_method must be S256")),
            (None, _) if !client.confidential => return fail(&valid, OAuthError::invalid_request("PKCE is required for public clients")),
            (None, _) => {}
        }
        if valid.prompt.iter().any(|p| p == "none") && valid.prompt.len() > 1 {
            return fail(&valid, OAuthError::invalid_request("prompt=none cannot be combined"));
        }
        match req.max_age.as_deref().map(str::parse::<i64>) {
            None => {}
            Some(Ok(n)) if n >= 0 => valid.max_age = Some(n),
            Some(_) => return fail(&valid, OAuthError::invalid_request("max_age must be a non-negative integer")),
        }
        Ok(valid)
    }

    /// Why the browser's session cannot answer `req` without logging in again, if it cannot:
    /// `prompt=login`, a log-in older than `max_age`, or weaker than the `acr_values` asked for
    /// (OIDC Core §3.1.2.1, step-up). `None` also when the session has ended (that is answered
    /// when the code is issued).
    pub async fn reauthentication_needed(&self, subject: &Subject, req: &ValidRequest) -> Result<Option<Reauth>, OAuthError> {
        if req.prompt.iter().any(|p| p == "login") {
            return Ok(Some(Reauth::Forced));
        }
        let Some(login) = self.login_facts(subject).await? else { return Ok(None) };
        if req.max_age.is_some_and(|max| now_millis() - login.auth_time > max.saturating_mul(1000)) {
            return Ok(Some(Reauth::TooOld));
        }
        if req.acr.is_some_and(|wanted| Acr::of_amr(&login.amr.join(" ")) < wanted) {
            return Ok(Some(Reauth::Stronger(req.acr.unwrap_or(Acr::Hwk))));
        }
        Ok(None)
    }

    /// Whether the user must still consent to `req` (first-party clients never ask).
    pub async fn needs_consent(&self, subject: &Subject, req: &ValidRequest) -> Result<bool, OAuthError> {
        if req.client.first_party {
            return Ok(false);
        }
        if req.prompt.iter().any(|p| p == "consent") {
            return Ok(true);
        }
        let row = sqlx::query("SELECT scope FROM oidc_consents WHERE realm = $1 AND subject = $2 AND client_id = $3")
            .bind(subject.realm.as_str())
            .bind(subject.id)
            .bind(&req.client.client_id)
            .fetch_optional(self.db.pool())
            .await?;
        let granted: Vec<String> = row.map(|r| r.get::<String, _>(0).split_whitespace().map(String::from).collect()).unwrap_or_default();
        Ok(!req.scopes.iter().all(|s| granted.contains(s)))
    }

    /// Issues a code for a logged-in (and, where asked, consenting) user; answers the redirect.
    /// `consented` records the consent in the same transaction.
    pub async fn issue_code(&self, subject: &Subject, req: &ValidRequest, consented: bool, actor: &Actor) -> Result<String, OAuthError> {
        let login = self.login_facts(subject).await?.ok_or_else(|| OAuthError::login_required("the log-in session has ended"))?;
        let code = random_token();
        let now = now_millis();
        let mut tx = self.db.begin_write().await?;
        if consented {
            let scope = req.scopes.join(" ");
            sqlx::query(
                "INSERT INTO oidc_consents (realm, subject, client_id, scope, granted_at) VALUES ($1,$2,$3,$4,$5) \
                 ON CONFLICT (realm, subject, client_id) DO UPDATE SET scope = excluded.scope, granted_at = excluded.granted_at",
            )
            .bind(subject.realm.as_str())
            .bind(subject.id)
            .bind(&req.client.client_id)
            .bind(&scope)
            .bind(now)
            .execute(tx.conn())
            .await?;
            let details = json!({"client_id": req.client.client_id, "scope": scope});
            self.audit.append(&mut tx, actor, Entry::success("oidc.consent", "oidc_client", req.client.id, details)).await?;
        }
        sqlx::query(
            "INSERT INTO oidc_codes (code_hash, realm, client_id, subject, session_id, redirect_uri, scope, nonce, code_challenge, auth_time, amr, family, expires_at) \
             VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13)",
        )
        .bind(sm3_hex(code.as_bytes()))
        .bind(subject.realm.as_str())
        .bind(&req.client.client_id)
        .bind(subject.id)
        .bind(subject.session_id)
        .bind(&req.redirect_uri)
        .bind(req.scopes.join(" "))
        .bind(&req.nonce)
        .bind(&req.code_challenge)
        .bind(login.auth_time)
        .bind(login.amr.join(" "))
        .bind(random_token())
        .bind(now + CODE_TTL_S * 1000)
        .execute(tx.conn())
        .await?;
        sqlx::query(
            "INSERT INTO oidc_session_clients (realm, session_id, client_id, first_at) VALUES ($1,$2,$3,$4) ON CONFLICT (realm, session_id, client_id) DO NOTHING",
        )
        .bind(subject.realm.as_str())
        .bind(subject.session_id)
        .bind(&req.client.client_id)
        .bind(now)
        .execute(tx.conn())
        .await?;
        let details = json!({"client_id": req.client.client_id, "scope": req.scopes.join(" "), "realm": subject.realm.as_str()});
        self.audit.append(&mut tx, actor, Entry::success("oidc.authorize", "oidc_client", req.client.id, details)).await?;
        tx.commit().await?;
        let mut q = vec![("code", code)];
        if let Some(s) = &req.state {
            q.push(("state", s.clone()));
        }
        q.push(("iss", self.issuer(subject.realm)));
        Ok(with_query(&req.redirect_uri, &q))
    }

    /// The token endpoint: authenticates the client (`basic` from the Authorization header, or the
    /// form's id and secret) and runs the grant.
    pub async fn token(
        &self,
        realm: Realm,
        form: &TokenRequest,
        basic: Option<(String, String)>,
        actor: &Actor,
    ) -> Result<Value, OAuthError> {
        if [&form.code, &form.code_verifier, &form.refresh_token, &form.scope, &form.redirect_uri, &form.client_secret]
            .into_iter()
            .any(too_long)
        {
            return Err(OAuthError::invalid_request("a parameter is too long"));
        }
        let client = self.client_of_request(realm, form.client_id.as_deref(), form.client_secret.as_deref(), basic, actor).await?;
        let actor = Actor { name: client.client_id.clone(), ..actor.clone() };
        // Keys are made outside the grant's transaction (SQLite has one writer).
        self.keys.ensure(realm).await?;
        if client.id_token_alg == "RS256" {
            self.keys.ensure_alg(realm, Algorithm::RS256).await?;
        }
        match form.grant_type.as_deref() {
            Some("authorization_code") => self.grant_code(realm, &client, form, &actor).await,
            Some("refresh_token") => self.grant_refresh(realm, &client, form, &actor).await,
            Some("client_credentials") => self.grant_client_credentials(realm, &client, form, &actor).await,
            Some(_) => Err(OAuthError::unsupported_grant_type("supported: authorization_code, refresh_token, client_credentials")),
            None => Err(OAuthError::invalid_request("grant_type is missing")),
        }
    }

    /// Authenticates the client of a token, introspection or revocation request. Failures are
    /// audited and counted against the source address, which is refused for a while past the
    /// limit (brute-force protection).
    pub async fn client_of_request(
        &self,
        realm: Realm,
        form_id: Option<&str>,
        form_secret: Option<&str>,
        basic: Option<(String, String)>,
        actor: &Actor,
    ) -> Result<Client, OAuthError> {
        if self.client_throttle.blocked(&actor.ip) {
            return Err(OAuthError::throttled());
        }
        let claimed = basic.as_ref().map(|(id, _)| id.clone()).or_else(|| form_id.map(String::from)).unwrap_or_default();
        let result = self.authenticate_client(realm, form_id, form_secret, basic).await;
        if let Err(e) = &result
            && e.error == "invalid_client"
        {
            let blocked = self.client_throttle.failed(&actor.ip);
            let claimed: String = claimed.chars().take(64).collect();
            let details = json!({"realm": realm.as_str(), "client_id": claimed, "blocked": blocked});
            let entry = Entry::success("oidc.client.authenticate", "oidc_client", 0, details).with_outcome(tongban_audit::Outcome::Failure);
            if let Err(err) = self.batched_audit.append(actor.clone(), entry).await {
                tracing::error!("oidc audit: {err}");
            }
        }
        result
    }

    async fn authenticate_client(
        &self,
        realm: Realm,
        form_id: Option<&str>,
        form_secret: Option<&str>,
        basic: Option<(String, String)>,
    ) -> Result<Client, OAuthError> {
        match (basic, form_id) {
            (Some((id, secret)), None) => self.clients.authenticate(realm, &id, Some(&secret)).await,
            (Some((id, secret)), Some(f)) if f == id => self.clients.authenticate(realm, &id, Some(&secret)).await,
            (Some(_), Some(_)) => Err(OAuthError::invalid_request("client_id differs from the authenticated client")),
            (None, Some(id)) => self.clients.authenticate(realm, id, form_secret).await,
            (None, None) => Err(OAuthError::invalid_client("client authentication is missing")),
        }
    }

    async fn grant_code(&self, realm: Realm, client: &Client, form: &TokenRequest, actor: &Actor) -> Result<Value, OAuthError> {
        if !client.allows_grant("authorization_code") {
            return Err(OAuthError::unauthorized_client("grant not allowed for this client"));
        }
        let code = form.code.as_deref().ok_or_else(|| OAuthError::invalid_request("code is missing"))?;
        let now = now_millis();
        let mut tx = self.db.begin_write().await?;
        let row = sqlx::query(
            "SELECT client_id, subject, session_id, redirect_uri, scope, nonce, code_challenge, auth_time, amr, family, expires_at, used_at \
             FROM oidc_codes WHERE code_hash = $1 AND realm = $2",
        )
        .bind(sm3_hex(code.as_bytes()))
        .bind(realm.as_str())
        .fetch_optional(tx.conn())
        .await?
        .ok_or_else(|| OAuthError::invalid_grant("unknown code"))?;
        let family: String = row.get(9);
        if row.get::<Option<i64>, _>(11).is_some() {
            // A code used twice: someone else may hold it. Everything issued from it goes (RFC 6749 §4.1.2).
            revoke_family(&mut tx, &family, now).await?;
            self.audit
                .append(
                    &mut tx,
                    actor,
                    Entry::success("oidc.code.reuse", "oidc_client", client.id, json!({"family": family}))
                        .with_outcome(tongban_audit::Outcome::Failure),
                )
                .await?;
            tx.commit().await?;
            return Err(OAuthError::invalid_grant("the code was already used"));
        }
        if row.get::<String, _>(0) != client.client_id {
            return Err(OAuthError::invalid_grant("the code was issued to another client"));
        }
        if row.get::<i64, _>(10) < now {
            return Err(OAuthError::invalid_grant("the code has expired"));
        }
        if form.redirect_uri.as_deref() != Some(row.get::<String, _>(3).as_str()) {
            return Err(OAuthError::invalid_grant("redirect_uri differs from the authorization request"));
        }
        match (row.get::<Option<String>, _>(6), form.code_verifier.as_deref()) {
            (Some(challenge), Some(verifier)) if pkce_matches(verifier, &challenge) => {}
            (Some(_), _) => return Err(OAuthError::invalid_grant("PKCE verification failed")),
            (None, Some(_)) => return Err(OAuthError::invalid_grant("no code_challenge was sent with the authorization request")),
            (None, None) => {}
        }
        sqlx::query("UPDATE oidc_codes SET used_at = $1 WHERE code_hash = $2")
            .bind(now)
            .bind(sm3_hex(code.as_bytes()))
            .execute(tx.conn())
            .await?;
        let grant = Grant {
            realm,
            subject: row.get(1),
            session_id: row.get(2),
            scope: row.get(4),
            nonce: row.get(5),
            auth_time: row.get(7),
            amr: row.get(8),
            family,
        };
        let out = self.issue_tokens(&mut tx, client, &grant, true, actor, "oidc.token.code").await?;
        tx.commit().await?;
        Ok(out)
    }

    async fn grant_refresh(&self, realm: Realm, client: &Client, form: &TokenRequest, actor: &Actor) -> Result<Value, OAuthError> {
        if !client.allows_grant("refresh_token") {
            return Err(OAuthError::unauthorized_client("grant not allowed for this client"));
        }
        let token = form.refresh_token.as_deref().ok_or_else(|| OAuthError::invalid_request("refresh_token is missing"))?;
        let now = now_millis();
        let mut tx = self.db.begin_write().await?;
        let row = sqlx::query(
            "SELECT family, client_id, subject, session_id, scope, auth_time, amr, expires_at, used_at, revoked_at \
             FROM oidc_refresh_tokens WHERE token_hash = $1 AND realm = $2",
        )
        .bind(sm3_hex(token.as_bytes()))
        .bind(realm.as_str())
        .fetch_optional(tx.conn())
        .await?
        .ok_or_else(|| OAuthError::invalid_grant("unknown refresh token"))?;
        let family: String = row.get(0);
        if row.get::<String, _>(1) != client.client_id {
            return Err(OAuthError::invalid_grant("the refresh token was issued to another client"));
        }
        if row.get::<Option<i64>, _>(8).is_some() && row.get::<Option<i64>, _>(9).is_none() {
            // Reuse of a rotated token: the family is revoked, for the thief and the owner alike.
            revoke_family(&mut tx, &family, now).await?;
            let entry = Entry::success("oidc.token.reuse", "oidc_client", client.id, json!({"family": family}))
                .with_outcome(tongban_audit::Outcome::Failure);
            self.audit.append(&mut tx, actor, entry).await?;
            tx.commit().await?;
            return Err(OAuthError::invalid_grant("the refresh token was already used; its family is revoked"));
        }
        if row.get::<Option<i64>, _>(9).is_some() || row.get::<i64, _>(7) < now {
            return Err(OAuthError::invalid_grant("the refresh token is revoked or expired"));
        }
        let scope: String = row.get(4);
        let granted: Vec<&str> = scope.split_whitespace().collect();
        let scope = match form.scope.as_deref() {
            Some(s) if s.split_whitespace().all(|x| granted.contains(&x)) => s.split_whitespace().collect::<Vec<_>>().join(" "),
            Some(_) => return Err(OAuthError::invalid_scope("a refresh cannot widen the scope")),
            None => scope.clone(),
        };
        let grant = Grant {
            realm,
            subject: row.get(2),
            session_id: row.get(3),
            scope,
            nonce: None,
            auth_time: row.get(5),
            amr: row.get(6),
            family,
        };
        if !granted.contains(&"offline_access") && !self.session_alive(&mut tx, realm, grant.session_id).await? {
            return Err(OAuthError::invalid_grant("the log-in session has ended"));
        }
        sqlx::query("UPDATE oidc_refresh_tokens SET used_at = $1 WHERE token_hash = $2")
            .bind(now)
            .bind(sm3_hex(token.as_bytes()))
            .execute(tx.conn())
            .await?;
        let out = self.issue_tokens(&mut tx, client, &grant, true, actor, "oidc.token.refresh").await?;
        tx.commit().await?;
        Ok(out)
    }

    async fn grant_client_credentials(
        &self,
        realm: Realm,
        client: &Client,
        form: &TokenRequest,
        actor: &Actor,
    ) -> Result<Value, OAuthError> {
        if !client.confidential || !client.allows_grant("client_credentials") {
            return Err(OAuthError::unauthorized_client("grant not allowed for this client"));
        }
        let scopes: Vec<&str> = form.scope.as_deref().unwrap_or("").split_whitespace().filter(|s| *s != "openid").collect();
        if !client.allows_scopes(&scopes) {
            return Err(OAuthError::invalid_scope("a requested scope is not allowed for this client"));
        }
        let scope = scopes.join(" ");
        let (token, jti) = self.access_token(realm, client, &client.client_id, &scope, None).await?;
        let details = json!({"client_id": client.client_id, "grant": "client_credentials", "scope": scope, "jti": jti});
        let entry = Entry::success("oidc.token.client_credentials", "oidc_client", client.id, details);
        // The token is answered only once its audit record is committed.
        self.batched_audit.append(actor.clone(), entry).await.map_err(|e| {
            tracing::error!("oidc audit: {e}");
            OAuthError::server_error()
        })?;
        Ok(json!({"access_token": token, "token_type": "Bearer", "expires_in": client.access_ttl, "scope": scope}))
    }

    async fn access_token(
        &self,
        realm: Realm,
        client: &Client,
        sub: &str,
        scope: &str,
        gid: Option<String>,
    ) -> Result<(String, String), OAuthError> {
        let iat = now_s();
        let jti = random_token();
        let claims = AccessClaims {
            iss: self.issuer(realm),
            sub: sub.to_string(),
            aud: client.client_id.clone(),
            exp: iat + client.access_ttl,
            iat,
            jti: jti.clone(),
            client_id: client.client_id.clone(),
            scope: scope.to_string(),
            gid,
        };
        Ok((self.keys.sign(realm, Algorithm::ES256, &claims, "at+jwt").await?, jti))
    }

    /// Access token, ID token (when `openid` was granted) and a rotated refresh token (when the
    /// client may refresh), in the caller's transaction.
    async fn issue_tokens(
        &self,
        tx: &mut WriteTx,
        client: &Client,
        g: &Grant,
        id_token: bool,
        actor: &Actor,
        action: &str,
    ) -> Result<Value, OAuthError> {
        let facts = self.subject_claims(g.realm, g.subject).await?.ok_or_else(|| OAuthError::invalid_grant("the account is disabled"))?;
        let (access, jti) = self.access_token(g.realm, client, &g.subject.to_string(), &g.scope, Some(grant_id_of(&g.family))).await?;
        let scopes: Vec<&str> = g.scope.split_whitespace().collect();
        let mut out = json!({"access_token": access, "token_type": "Bearer", "expires_in": client.access_ttl, "scope": g.scope});
        if id_token && scopes.contains(&"openid") {
            let alg = if client.id_token_alg == "RS256" { Algorithm::RS256 } else { Algorithm::ES256 };
            let half = Sha256::digest(access.as_bytes());
            let mut claims = Map::new();
            let iat = now_s();
            claims.insert("iss".into(), json!(self.issuer(g.realm)));
            claims.insert("sub".into(), json!(g.subject.to_string()));
            claims.insert("aud".into(), json!(client.client_id));
            claims.insert("azp".into(), json!(client.client_id));
            claims.insert("exp".into(), json!(iat + ID_TOKEN_TTL_S));
            claims.insert("iat".into(), json!(iat));
            claims.insert("auth_time".into(), json!(g.auth_time / 1000));
            claims.insert("sid".into(), json!(sid_of(g.realm, g.session_id)));
            claims.insert("amr".into(), json!(g.amr.split_whitespace().collect::<Vec<_>>()));
            claims.insert("acr".into(), json!(Acr::of_amr(&g.amr).uri()));
            claims.insert("at_hash".into(), json!(URL_SAFE_NO_PAD.encode(&half[..16])));
            if let Some(n) = &g.nonce {
                claims.insert("nonce".into(), json!(n));
            }
            claims.extend(scoped_claims(&facts, &scopes));
            out["id_token"] = json!(self.keys.sign(g.realm, alg, &claims, "JWT").await?);
        }
        if client.allows_grant("refresh_token") {
            let refresh = random_token();
            let now = now_millis();
            sqlx::query(
                "INSERT INTO oidc_refresh_tokens (token_hash, family, realm, client_id, subject, session_id, scope, auth_time, amr, created_at, expires_at) \
                 VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11)",
            )
            .bind(sm3_hex(refresh.as_bytes()))
            .bind(&g.family)
            .bind(g.realm.as_str())
            .bind(&client.client_id)
            .bind(g.subject)
            .bind(g.session_id)
            .bind(&g.scope)
            .bind(g.auth_time)
            .bind(&g.amr)
            .bind(now)
            .bind(now + client.refresh_ttl * 1000)
            .execute(tx.conn())
            .await?;
            out["refresh_token"] = json!(refresh);
        }
        let details = json!({"client_id": client.client_id, "sub": g.subject, "scope": g.scope, "jti": jti, "realm": g.realm.as_str()});
        self.audit
            .append(
                tx,
                &Actor { user_id: (g.realm == Realm::Staff).then_some(g.subject), ..actor.clone() },
                Entry::success(action, "oidc_client", client.id, details),
            )
            .await?;
        Ok(out)
    }

    /// The claims of a valid, unrevoked access token of this realm.
    pub async fn check_access_token(&self, realm: Realm, token: &str) -> Result<AccessClaims, OAuthError> {
        let claims: AccessClaims = self
            .keys
            .verify(realm, token, &self.issuer(realm), "at+jwt", false)
            .await
            .ok_or_else(|| OAuthError::invalid_token("the access token is invalid or expired"))?;
        // The token itself, or the grant it came from (a replayed code, a reused or revoked refresh token).
        let grant_key = claims.gid.as_deref().map(revoked_grant_key).unwrap_or_default();
        if sqlx::query("SELECT 1 FROM oidc_revoked_tokens WHERE jti = $1 OR jti = $2")
            .bind(&claims.jti)
            .bind(&grant_key)
            .fetch_optional(self.db.pool())
            .await?
            .is_some()
        {
            return Err(OAuthError::invalid_token("the access token was revoked"));
        }
        Ok(claims)
    }

    /// The userinfo endpoint's answer for an access token.
    pub async fn userinfo(&self, realm: Realm, token: &str) -> Result<Value, OAuthError> {
        let claims = self.check_access_token(realm, token).await?;
        let scopes: Vec<&str> = claims.scope.split_whitespace().collect();
        if !scopes.contains(&"openid") {
            return Err(OAuthError::new("insufficient_scope", 403, "the token was not granted openid"));
        }
        let id: i64 = claims.sub.parse().map_err(|_| OAuthError::invalid_token("not a user's token"))?;
        let facts = self.subject_claims(realm, id).await?.ok_or_else(|| OAuthError::invalid_token("the account is disabled"))?;
        let mut out = Map::new();
        out.insert("sub".into(), json!(claims.sub));
        out.extend(scoped_claims(&facts, &scopes));
        Ok(Value::Object(out))
    }

    /// Token introspection (RFC 7662) for an authenticated confidential client of the realm.
    pub async fn introspect(&self, realm: Realm, client: &Client, token: &str) -> Result<Value, OAuthError> {
        if !client.confidential {
            return Err(OAuthError::invalid_client("introspection needs a confidential client"));
        }
        if token.matches('.').count() == 2 {
            return Ok(match self.check_access_token(realm, token).await {
                Ok(c) => json!({"active": true, "token_type": "Bearer", "scope": c.scope, "client_id": c.client_id, "sub": c.sub,
                    "aud": c.aud, "iss": c.iss, "exp": c.exp, "iat": c.iat, "jti": c.jti}),
                Err(_) => json!({"active": false}),
            });
        }
        let row = sqlx::query("SELECT client_id, subject, scope, expires_at, created_at, used_at, revoked_at FROM oidc_refresh_tokens WHERE token_hash = $1 AND realm = $2")
            .bind(sm3_hex(token.as_bytes()))
            .bind(realm.as_str())
            .fetch_optional(self.db.pool())
            .await?;
        Ok(match row {
            Some(r)
                if r.get::<Option<i64>, _>(5).is_none() && r.get::<Option<i64>, _>(6).is_none() && r.get::<i64, _>(3) > now_millis() =>
            {
                json!({"active": true, "client_id": r.get::<String, _>(0), "sub": r.get::<i64, _>(1).to_string(),
                    "scope": r.get::<String, _>(2), "exp": r.get::<i64, _>(3) / 1000, "iat": r.get::<i64, _>(4) / 1000, "iss": self.issuer(realm)})
            }
            _ => json!({"active": false}),
        })
    }

    /// Token revocation (RFC 7009): a refresh token takes its whole family with it; an access token
    /// is listed until it expires. Unknown tokens and other clients' tokens answer the same.
    pub async fn revoke(&self, realm: Realm, client: &Client, token: &str, actor: &Actor) -> Result<(), OAuthError> {
        let now = now_millis();
        let actor = Actor { name: client.client_id.clone(), ..actor.clone() };
        if token.matches('.').count() == 2 {
            if let Ok(c) = self.check_access_token(realm, token).await
                && c.client_id == client.client_id
            {
                let mut tx = self.db.begin_write().await?;
                sqlx::query("INSERT INTO oidc_revoked_tokens (jti, expires_at) VALUES ($1, $2) ON CONFLICT (jti) DO NOTHING")
                    .bind(&c.jti)
                    .bind(c.exp * 1000)
                    .execute(tx.conn())
                    .await?;
                self.audit
                    .append(&mut tx, &actor, Entry::success("oidc.token.revoke", "oidc_client", client.id, json!({"jti": c.jti})))
                    .await?;
                tx.commit().await?;
            }
            return Ok(());
        }
        let mut tx = self.db.begin_write().await?;
        let row = sqlx::query("SELECT family FROM oidc_refresh_tokens WHERE token_hash = $1 AND realm = $2 AND client_id = $3")
            .bind(sm3_hex(token.as_bytes()))
            .bind(realm.as_str())
            .bind(&client.client_id)
            .fetch_optional(tx.conn())
            .await?;
        if let Some(r) = row {
            let family: String = r.get(0);
            revoke_family(&mut tx, &family, now).await?;
            self.audit
                .append(&mut tx, &actor, Entry::success("oidc.token.revoke", "oidc_client", client.id, json!({"family": family})))
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Checks an RP-initiated logout request; answers where to send the browser afterwards (if
    /// anywhere) and the subject the hint names.
    pub async fn check_logout(&self, realm: Realm, req: &LogoutRequest) -> Result<(Option<String>, Option<String>), OAuthError> {
        let hint: Option<HintClaims> = match req.id_token_hint.as_deref() {
            Some(t) => Some(
                self.keys
                    .verify(realm, t, &self.issuer(realm), "JWT", true)
                    .await
                    .ok_or_else(|| OAuthError::invalid_request("id_token_hint is not a valid ID token of this issuer"))?,
            ),
            None => None,
        };
        let client_id = match (&hint, req.client_id.as_deref()) {
            (Some(h), Some(c)) if h.aud != c => return Err(OAuthError::invalid_request("client_id differs from the hint's audience")),
            (Some(h), _) => Some(h.aud.clone()),
            (None, c) => c.map(String::from),
        };
        let target = match req.post_logout_redirect_uri.as_deref() {
            None => None,
            Some(uri) => {
                let id = client_id
                    .as_deref()
                    .ok_or_else(|| OAuthError::invalid_request("post_logout_redirect_uri needs id_token_hint or client_id"))?;
                let client = self.clients.find(realm, id).await?.ok_or_else(|| OAuthError::invalid_request("unknown client"))?;
                if !client.post_logout_uris.iter().any(|u| u == uri) {
                    return Err(OAuthError::invalid_request("post_logout_redirect_uri is not registered"));
                }
                let q: Vec<(&str, String)> = req.state.iter().map(|s| ("state", s.clone())).collect();
                Some(if q.is_empty() { uri.to_string() } else { with_query(uri, &q) })
            }
        };
        Ok((target, hint.map(|h| h.sub)))
    }

    /// A log-in session of `subject` ended (log-out, administrator): refresh tokens bound to it
    /// (those without `offline_access`) stop working, every client it reached with a back-channel
    /// URI is told (a job per client, retried), and the ending is audited.
    pub async fn session_ended(&self, realm: Realm, session_id: i64, subject: i64, actor: &Actor) -> DomainResult<usize> {
        let now = now_millis();
        let mut tx = self.db.begin_write().await?;
        let rows = sqlx::query(
            "SELECT s.client_id, COALESCE(c.backchannel_logout_uri, '') FROM oidc_session_clients s \
             LEFT JOIN oidc_clients c ON c.client_id = s.client_id AND c.enabled = 1 WHERE s.realm = $1 AND s.session_id = $2",
        )
        .bind(realm.as_str())
        .bind(session_id)
        .fetch_all(tx.conn())
        .await?;
        let clients: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
        for r in &rows {
            let uri: String = r.get(1);
            if uri.is_empty() {
                continue;
            }
            let d = crate::backchannel::Delivery {
                realm: realm.as_str().into(),
                client_id: r.get(0),
                uri,
                sid: sid_of(realm, session_id),
                sub: subject.to_string(),
            };
            let payload = serde_json::to_value(&d).map_err(|e| tongban_platform::DomainError::Internal(e.to_string()))?;
            tongban_platform::jobs::enqueue(&mut tx, crate::backchannel::BACKCHANNEL_JOB, &payload, 6).await?;
        }
        sqlx::query(
            "UPDATE oidc_refresh_tokens SET revoked_at = $1 WHERE realm = $2 AND session_id = $3 AND revoked_at IS NULL AND scope NOT LIKE '%offline_access%'",
        )
        .bind(now)
        .bind(realm.as_str())
        .bind(session_id)
        .execute(tx.conn())
        .await?;
        // Told once: a later sweep (an administrator ending every session) skips this one.
        sqlx::query("DELETE FROM oidc_session_clients WHERE realm = $1 AND session_id = $2")
            .bind(realm.as_str())
            .bind(session_id)
            .execute(tx.conn())
            .await?;
        if !clients.is_empty() {
            let details = json!({"realm": realm.as_str(), "sid": sid_of(realm, session_id), "clients": clients});
            self.audit.append(&mut tx, actor, Entry::success("oidc.logout", "session", session_id, details)).await?;
        }
        tx.commit().await?;
        Ok(clients.len())
    }

    /// Every log-in session of a staff member has ended (an administrator disabled, locked or
    /// reset the account): each one that reached a client is ended here too.
    pub async fn staff_sessions_ended(&self, user_id: i64, actor: &Actor) -> DomainResult<usize> {
        let sessions: Vec<i64> = sqlx::query(
            "SELECT DISTINCT c.session_id FROM oidc_session_clients c JOIN sessions s ON s.id = c.session_id \
             WHERE c.realm = 'staff' AND s.user_id = $1 AND s.revoked_at IS NOT NULL",
        )
        .bind(user_id)
        .fetch_all(self.db.pool())
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
        for id in &sessions {
            self.session_ended(Realm::Staff, *id, user_id, actor).await?;
        }
        Ok(sessions.len())
    }

    /// The systems a user has let in (授权管理): consents and live refresh grants, per client.
    pub async fn app_grants(&self, realm: Realm, subject: i64) -> DomainResult<Vec<AppGrant>> {
        let rows = sqlx::query(
            "SELECT c.client_id, c.name, COALESCE(g.scope, ''), COALESCE(g.granted_at, 0), \
             (SELECT COUNT(*) FROM oidc_refresh_tokens t WHERE t.realm = $1 AND t.subject = $2 AND t.client_id = c.client_id \
              AND t.revoked_at IS NULL AND t.used_at IS NULL AND t.expires_at > $3) \
             FROM oidc_clients c LEFT JOIN oidc_consents g ON g.client_id = c.client_id AND g.realm = $1 AND g.subject = $2 \
             WHERE c.realm = $1 ORDER BY c.name",
        )
        .bind(realm.as_str())
        .bind(subject)
        .bind(now_millis())
        .fetch_all(self.db.pool())
        .await?;
        Ok(rows
            .iter()
            .map(|r| AppGrant { client_id: r.get(0), name: r.get(1), scope: r.get(2), granted_at: r.get(3), live_tokens: r.get(4) })
            .filter(|g| g.granted_at > 0 || g.live_tokens > 0)
            .collect())
    }

    /// Withdraws a user's grant to a client: the consent goes, and every refresh token and access
    /// token the client holds for the user is revoked (the next log-in there asks again).
    pub async fn revoke_app_grant(&self, realm: Realm, subject: i64, client_id: &str, actor: &Actor) -> DomainResult<()> {
        let now = now_millis();
        let mut tx = self.db.begin_write().await?;
        let families: Vec<String> = sqlx::query(
            "SELECT family FROM oidc_refresh_tokens WHERE realm = $1 AND subject = $2 AND client_id = $3 \
             UNION SELECT family FROM oidc_codes WHERE realm = $1 AND subject = $2 AND client_id = $3 AND used_at IS NOT NULL",
        )
        .bind(realm.as_str())
        .bind(subject)
        .bind(client_id)
        .fetch_all(tx.conn())
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
        for family in &families {
            revoke_grant_access(&mut tx, family, now).await?;
        }
        sqlx::query("DELETE FROM oidc_consents WHERE realm = $1 AND subject = $2 AND client_id = $3")
            .bind(realm.as_str())
            .bind(subject)
            .bind(client_id)
            .execute(tx.conn())
            .await?;
        sqlx::query(
            "UPDATE oidc_refresh_tokens SET revoked_at = $1 WHERE realm = $2 AND subject = $3 AND client_id = $4 AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(realm.as_str())
        .bind(subject)
        .bind(client_id)
        .execute(tx.conn())
        .await?;
        let details = json!({"realm": realm.as_str(), "client_id": client_id});
        self.audit.append(&mut tx, actor, Entry::success("oidc.grant.revoke", "oidc_client", 0, details)).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn session_alive(&self, tx: &mut WriteTx, realm: Realm, session_id: i64) -> Result<bool, sqlx::Error> {
        let table = match realm {
            Realm::Staff => "sessions",
            Realm::Public => "public_sessions",
        };
        let r = sqlx::query(&format!("SELECT 1 FROM {table} WHERE id = $1 AND revoked_at IS NULL AND expires_at > $2"))
            .bind(session_id)
            .bind(now_millis())
            .fetch_optional(tx.conn())
            .await?;
        Ok(r.is_some())
    }

    /// When the session logged in and how (auth_time ms, amr).
    async fn login_facts(&self, s: &Subject) -> Result<Option<LoginFacts>, OAuthError> {
        let row = match s.realm {
            Realm::Staff => {
                sqlx::query(
                    "SELECT COALESCE(s.auth_time, s.created_at), s.amr FROM sessions s JOIN users u ON u.id = s.user_id \
                     WHERE s.id = $1 AND s.user_id = $2 AND s.revoked_at IS NULL AND u.enabled = 1",
                )
                .bind(s.session_id)
                .bind(s.id)
                .fetch_optional(self.db.pool())
                .await?
            }
            Realm::Public => sqlx::query(
                "SELECT COALESCE(s.auth_time, s.created_at), s.amr FROM public_sessions s JOIN public_accounts a ON a.id = s.account_id \
                     WHERE s.id = $1 AND s.account_id = $2 AND s.revoked_at IS NULL AND s.stage = 'complete' AND a.enabled = 1",
            )
            .bind(s.session_id)
            .bind(s.id)
            .fetch_optional(self.db.pool())
            .await?,
        };
        Ok(row.map(|r| LoginFacts { auth_time: r.get(0), amr: r.get::<String, _>(1).split_whitespace().map(String::from).collect() }))
    }

    /// What can be said about an enabled account, by claim name.
    async fn subject_claims(&self, realm: Realm, id: i64) -> Result<Option<Map<String, Value>>, OAuthError> {
        let mut m = Map::new();
        match realm {
            Realm::Staff => {
                let Some(r) = sqlx::query(
                    "SELECT u.username, u.display_name, u.email, u.phone, n.name, n.id FROM users u JOIN units n ON n.id = u.unit_id WHERE u.id = $1 AND u.enabled = 1",
                )
                .bind(id)
                .fetch_optional(self.db.pool())
                .await?
                else {
                    return Ok(None);
                };
                m.insert("preferred_username".into(), json!(r.get::<String, _>(0)));
                m.insert("name".into(), json!(r.get::<String, _>(1)));
                m.insert("email".into(), json!(r.get::<String, _>(2)));
                m.insert("phone_number".into(), json!(r.get::<String, _>(3)));
                m.insert("unit".into(), json!(r.get::<String, _>(4)));
                m.insert("unit_id".into(), json!(r.get::<i64, _>(5)));
                let roles: Vec<String> =
                    sqlx::query("SELECT r.code FROM grants g JOIN roles r ON r.id = g.role_id WHERE g.user_id = $1 ORDER BY r.code")
                        .bind(id)
                        .fetch_all(self.db.pool())
                        .await?
                        .iter()
                        .map(|r| r.get(0))
                        .collect();
                m.insert("roles".into(), json!(roles));
            }
            Realm::Public => {
                let Some(r) = sqlx::query("SELECT kind, name, phone, email FROM public_accounts WHERE id = $1 AND enabled = 1")
                    .bind(id)
                    .fetch_optional(self.db.pool())
                    .await?
                else {
                    return Ok(None);
                };
                m.insert("name".into(), json!(r.get::<String, _>(1)));
                m.insert("phone_number".into(), json!(r.get::<String, _>(2)));
                m.insert("email".into(), json!(r.get::<String, _>(3)));
                m.insert("account_kind".into(), json!(r.get::<String, _>(0)));
            }
        }
        Ok(Some(m))
    }
}

/// A system the user has let in.
#[derive(Debug, Clone, Serialize)]
pub struct AppGrant {
    /// The client.
    pub client_id: String,
    /// Its name.
    pub name: String,
    /// Consented scopes (empty for first-party systems, which do not ask).
    pub scope: String,
    /// When consent was given (ms; 0 if never asked).
    pub granted_at: i64,
    /// Refresh tokens the system holds for the user.
    pub live_tokens: i64,
}

/// When and how a session logged in.
struct LoginFacts {
    auth_time: i64,
    amr: Vec<String>,
}

/// What a code or refresh token stands for.
struct Grant {
    realm: Realm,
    subject: i64,
    session_id: i64,
    scope: String,
    nonce: Option<String>,
    auth_time: i64,
    amr: String,
    family: String,
}

/// The claims that `scopes` release (OIDC Core §5.4, plus tongban's `unit` and `roles`).
fn scoped_claims(facts: &Map<String, Value>, scopes: &[&str]) -> Map<String, Value> {
    let by_scope: [(&str, &[&str]); 5] = [
        ("profile", &["name", "preferred_username", "account_kind"]),
        ("email", &["email"]),
        ("phone", &["phone_number"]),
        ("unit", &["unit", "unit_id"]),
        ("roles", &["roles"]),
    ];
    let mut out = Map::new();
    for (scope, names) in by_scope {
        if scopes.contains(&scope) {
            for n in names {
                if let Some(v) = facts.get(*n) {
                    out.insert((*n).to_string(), v.clone());
                }
            }
        }
    }
    out
}

/// Revokes a grant: its refresh tokens, and the access tokens issued from it (listed by grant id
/// until the longest access token could have expired; RFC 6749 §4.1.2, RFC 7009 §2.1).
async fn revoke_family(tx: &mut WriteTx, family: &str, now: i64) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE oidc_refresh_tokens SET revoked_at = $1 WHERE family = $2 AND revoked_at IS NULL")
        .bind(now)
        .bind(family)
        .execute(tx.conn())
        .await?;
    revoke_grant_access(tx, family, now).await
}

/// Lists a grant among the revoked, so that the access tokens issued from it stop working.
async fn revoke_grant_access(tx: &mut WriteTx, family: &str, now: i64) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO oidc_revoked_tokens (jti, expires_at) VALUES ($1, $2) ON CONFLICT (jti) DO NOTHING")
        .bind(revoked_grant_key(&grant_id_of(family)))
        .bind(now + LONGEST_ACCESS_TTL_MS)
        .execute(tx.conn())
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_s256_matches_the_rfc_7636_example() {
        // RFC 7636 Appendix B.
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        assert!(pkce_matches(verifier, "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"));
        assert!(!pkce_matches("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXl", "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"));
        assert!(!pkce_matches("short", "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"));
    }

    #[test]
    fn claims_follow_the_granted_scopes() {
        let mut facts = Map::new();
        facts.insert("name".into(), json!("周军"));
        facts.insert("email".into(), json!("zj@jiahe.gov.cn"));
        facts.insert("roles".into(), json!(["staff"]));
        let c = scoped_claims(&facts, &["openid", "profile"]);
        assert_eq!(c.get("name"), Some(&json!("周军")));
        assert!(c.get("email").is_none() && c.get("roles").is_none());
        assert!(scoped_claims(&facts, &["openid", "roles"]).contains_key("roles"));
    }

    #[test]
    fn redirects_keep_existing_queries_and_encode_values() {
        assert_eq!(with_query("https://a/cb", &[("code", "x y".into())]), "https://a/cb?code=x+y");
        assert_eq!(with_query("https://a/cb?t=1", &[("state", "s&1".into())]), "https://a/cb?t=1&state=s%261");
    }

    #[test]
    fn sids_differ_by_realm_and_session() {
        assert_ne!(sid_of(Realm::Staff, 1), sid_of(Realm::Public, 1));
        assert_ne!(sid_of(Realm::Staff, 1), sid_of(Realm::Staff, 2));
        assert_eq!(sid_of(Realm::Staff, 7).len(), 32);
    }
}
