//! Relying parties (接入系统): the county systems that log their users in through tongban. Each
//! belongs to one realm; redirect URIs match exactly; secrets are random and kept only as their
//! SM3 digest (they are 256-bit random, so a fast hash is enough and keeps the token endpoint fast).

use serde::{Deserialize, Serialize};
use serde_json::json;
use sqlx::Row;
use tongban_audit::{Actor, AuditTrail, Entry};
use tongban_authz::{Permission, Principal};
use tongban_crypto::{sm3_hex, token::random_token};
use tongban_platform::{Db, DomainError, clock::now_millis, error::DomainResult};

use crate::{OAuthError, Realm};

/// Scopes a client may be allowed.
pub const KNOWN_SCOPES: [&str; 7] = ["openid", "profile", "email", "phone", "unit", "roles", "offline_access"];
/// Grants a client may be allowed.
pub const KNOWN_GRANTS: [&str; 3] = ["authorization_code", "refresh_token", "client_credentials"];

/// A registered client: its registration ([`ClientSpec`], whose fields read through it) and
/// what the registry keeps beside it.
#[derive(Debug, Clone, Serialize)]
pub struct Client {
    /// Row id.
    pub id: i64,
    /// Realm.
    pub realm: Realm,
    /// The registration; `spec.client_id` is the public identifier.
    #[serde(flatten)]
    pub spec: ClientSpec,
    #[serde(skip)]
    secret_hash: Option<String>,
    /// Disabled clients get nothing.
    pub enabled: bool,
}

impl std::ops::Deref for Client {
    type Target = ClientSpec;

    fn deref(&self) -> &ClientSpec {
        &self.spec
    }
}

impl Client {
    /// Whether the client may use `grant`.
    pub fn allows_grant(&self, grant: &str) -> bool {
        self.grants.iter().any(|g| g == grant)
    }

    /// Whether the client may ask for every scope in `scopes`.
    pub fn allows_scopes(&self, scopes: &[&str]) -> bool {
        scopes.iter().all(|s| self.scopes.iter().any(|a| a == s))
    }
}

/// What an administrator registers or edits.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClientSpec {
    /// `client_id` to use (letters, digits, `-`, `_`; 3–64); generated when empty.
    pub client_id: String,
    /// Display name.
    pub name: String,
    /// Confidential or public.
    pub confidential: bool,
    /// Redirect URIs.
    pub redirect_uris: Vec<String>,
    /// Post-logout redirect URIs.
    pub post_logout_uris: Vec<String>,
    /// Back-channel logout URI.
    pub backchannel_logout_uri: String,
    /// Allowed scopes.
    pub scopes: Vec<String>,
    /// Allowed grants.
    pub grants: Vec<String>,
    /// `ES256` (default) or `RS256`.
    pub id_token_alg: String,
    /// Access token lifetime in seconds (60–86 400; default 3 600).
    pub access_ttl: i64,
    /// Refresh token lifetime in seconds (300–2 592 000; default 604 800).
    pub refresh_ttl: i64,
    /// Skip consent.
    pub first_party: bool,
    /// Logo URL.
    pub logo_url: String,
}

/// An absolute https URL, or http on the loopback interface (for development), without fragment.
pub fn valid_redirect(uri: &str) -> bool {
    let loopback = ["http://127.0.0.1", "http://localhost", "http://[::1]"];
    let scheme_ok = uri.starts_with("https://")
        || loopback
            .iter()
            .any(|p| uri.strip_prefix(p).is_some_and(|rest| rest.is_empty() || rest.starts_with(':') || rest.starts_with('/')));
    scheme_ok && uri.len() <= 500 && !uri.contains('#') && !uri.chars().any(|c| c.is_whitespace() || c.is_control())
}

fn checked(spec: &ClientSpec) -> DomainResult<ClientSpec> {
    let mut s = spec.clone();
    s.name = s.name.trim().to_string();
    if s.name.is_empty() || s.name.chars().count() > 100 {
        return Err(DomainError::invalid("name", "error.required"));
    }
    tongban_platform::text::check_name("name", &s.name)?;
    s.client_id = s.client_id.trim().to_string();
    let id_chars_ok = s.client_id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !s.client_id.is_empty() && (!(3..=64).contains(&s.client_id.len()) || !id_chars_ok) {
        return Err(DomainError::invalid("client_id", "oidc.error.client_id"));
    }
    for (field, list) in [("redirect_uris", &mut s.redirect_uris), ("post_logout_uris", &mut s.post_logout_uris)] {
        list.iter_mut().for_each(|u| *u = u.trim().to_string());
        list.retain(|u| !u.is_empty());
        if list.len() > 10 || list.iter().any(|u| !valid_redirect(u)) {
            return Err(DomainError::invalid(field, "oidc.error.redirect_uri"));
        }
    }
    s.backchannel_logout_uri = s.backchannel_logout_uri.trim().to_string();
    if !s.backchannel_logout_uri.is_empty() && !valid_redirect(&s.backchannel_logout_uri) {
        return Err(DomainError::invalid("backchannel_logout_uri", "oidc.error.redirect_uri"));
    }
    if s.scopes.is_empty() {
        s.scopes = vec!["openid".into(), "profile".into()];
    }
    if s.scopes.iter().any(|x| !KNOWN_SCOPES.contains(&x.as_str())) {
        return Err(DomainError::invalid("scopes", "oidc.error.scope"));
    }
    if s.grants.is_empty() {
        s.grants = vec!["authorization_code".into(), "refresh_token".into()];
    }
    if s.grants.iter().any(|g| !KNOWN_GRANTS.contains(&g.as_str()))
        || (!s.confidential && s.grants.iter().any(|g| g == "client_credentials"))
    {
        return Err(DomainError::invalid("grants", "oidc.error.grant"));
    }
    if s.grants.iter().any(|g| g == "authorization_code") && s.redirect_uris.is_empty() {
        return Err(DomainError::invalid("redirect_uris", "oidc.error.redirect_uri"));
    }
    s.id_token_alg = match s.id_token_alg.trim() {
        "" | "ES256" => "ES256".into(),
        "RS256" => "RS256".into(),
        _ => return Err(DomainError::invalid("id_token_alg", "error.invalid_value")),
    };
    if s.access_ttl == 0 {
        s.access_ttl = 3600;
    }
    if s.refresh_ttl == 0 {
        s.refresh_ttl = 7 * 86_400;
    }
    if !(60..=86_400).contains(&s.access_ttl) {
        return Err(DomainError::invalid("access_ttl", "error.invalid_value"));
    }
    if !(300..=30 * 86_400).contains(&s.refresh_ttl) {
        return Err(DomainError::invalid("refresh_ttl", "error.invalid_value"));
    }
    if !s.logo_url.is_empty() && !s.logo_url.starts_with("https://") && !s.logo_url.starts_with('/') {
        return Err(DomainError::invalid("logo_url", "error.invalid_value"));
    }
    Ok(s)
}

const COLUMNS: &str = "SELECT id, realm, client_id, name, confidential, secret_hash, redirect_uris, post_logout_uris, backchannel_logout_uri, \
                       scopes, grants, id_token_alg, access_ttl, refresh_ttl, first_party, logo_url, enabled FROM oidc_clients";

fn client_of(r: &sqlx::any::AnyRow) -> Client {
    let list = |i: usize| serde_json::from_str::<Vec<String>>(&r.get::<String, _>(i)).unwrap_or_default();
    let words = |i: usize| r.get::<String, _>(i).split_whitespace().map(String::from).collect();
    Client {
        id: r.get(0),
        realm: Realm::parse(&r.get::<String, _>(1)).unwrap_or(Realm::Staff),
        spec: ClientSpec {
            client_id: r.get(2),
            name: r.get(3),
            confidential: r.get::<i64, _>(4) != 0,
            redirect_uris: list(6),
            post_logout_uris: list(7),
            backchannel_logout_uri: r.get(8),
            scopes: words(9),
            grants: words(10),
            id_token_alg: r.get(11),
            access_ttl: r.get(12),
            refresh_ttl: r.get(13),
            first_party: r.get::<i64, _>(14) != 0,
            logo_url: r.get(15),
        },
        secret_hash: r.get(5),
        enabled: r.get::<i64, _>(16) != 0,
    }
}

fn constant_time_eq(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// How long a looked-up client is trusted before it is read again (another instance may have
/// changed it; changes made here clear the cache at once).
const CACHE_MS: i64 = 5_000;

type ClientCache = std::sync::Arc<std::sync::RwLock<std::collections::HashMap<(Realm, String), (i64, Option<Client>)>>>;

/// The client registry.
#[derive(Clone)]
pub struct ClientRegistry {
    db: Db,
    audit: AuditTrail,
    cache: ClientCache,
}

impl ClientRegistry {
    /// The registry over `db`.
    pub fn new(db: Db, audit: AuditTrail) -> Self {
        ClientRegistry { db, audit, cache: ClientCache::default() }
    }

    async fn require_admin(&self, caller: &Principal, actor: &Actor, action: &str) -> DomainResult<()> {
        if caller.has(Permission::ConfigWrite) {
            return Ok(());
        }
        self.audit.record_denied(&self.db, actor, action, "oidc_client", 0, "missing_permission").await;
        Err(DomainError::Forbidden("error.forbidden"))
    }

    /// Every client of both realms (`config.write`).
    pub async fn list(&self, caller: &Principal, actor: &Actor) -> DomainResult<Vec<Client>> {
        self.require_admin(caller, actor, "oidc.client.list").await?;
        Ok(sqlx::query(&format!("{COLUMNS} ORDER BY realm, name")).fetch_all(self.db.pool()).await?.iter().map(client_of).collect())
    }

    /// One client by row id (`config.write`).
    pub async fn get(&self, caller: &Principal, actor: &Actor, id: i64) -> DomainResult<Client> {
        self.require_admin(caller, actor, "oidc.client.read").await?;
        let r = sqlx::query(&format!("{COLUMNS} WHERE id = $1")).bind(id).fetch_optional(self.db.pool()).await?;
        r.as_ref().map(client_of).ok_or(DomainError::NotFound("error.not_found"))
    }

    /// An enabled client of `realm` by `client_id`, for the protocol endpoints (cached briefly:
    /// the token endpoint looks its client up on every request).
    pub async fn find(&self, realm: Realm, client_id: &str) -> Result<Option<Client>, sqlx::Error> {
        let now = now_millis();
        let key = (realm, client_id.to_string());
        if let Ok(c) = self.cache.read()
            && let Some((at, client)) = c.get(&key)
            && now - at < CACHE_MS
        {
            return Ok(client.clone());
        }
        let r = sqlx::query(&format!("{COLUMNS} WHERE client_id = $1 AND realm = $2 AND enabled = 1"))
            .bind(client_id)
            .bind(realm.as_str())
            .fetch_optional(self.db.pool())
            .await?;
        let client = r.as_ref().map(client_of);
        if let Ok(mut c) = self.cache.write() {
            if c.len() > 10_000 {
                c.clear();
            }
            c.insert(key, (now, client.clone()));
        }
        Ok(client)
    }

    fn forget(&self) {
        if let Ok(mut c) = self.cache.write() {
            c.clear();
        }
    }

    /// Whether a browser page at `origin` (`scheme://host[:port]`) may call the realm's endpoints
    /// (CORS): it must be the origin of a redirect URI of an enabled public client, the only
    /// kind that runs in browsers.
    pub async fn origin_allowed(&self, realm: Realm, origin: &str) -> Result<bool, sqlx::Error> {
        if origin.is_empty() || origin.len() > 200 || origin.contains(char::is_whitespace) {
            return Ok(false);
        }
        let rows = sqlx::query("SELECT redirect_uris FROM oidc_clients WHERE realm = $1 AND enabled = 1 AND confidential = 0")
            .bind(realm.as_str())
            .fetch_all(self.db.pool())
            .await?;
        Ok(rows.iter().any(|r| {
            serde_json::from_str::<Vec<String>>(&r.get::<String, _>(0))
                .unwrap_or_default()
                .iter()
                .any(|u| u.strip_prefix(origin).is_some_and(|rest| rest.is_empty() || rest.starts_with('/')))
        }))
    }

    /// Authenticates a client at the token, introspection and revocation endpoints: a
    /// confidential client by its secret, a public one by its id alone.
    pub async fn authenticate(&self, realm: Realm, client_id: &str, secret: Option<&str>) -> Result<Client, OAuthError> {
        let bad = || OAuthError::invalid_client("unknown client or wrong credentials");
        let client = self.find(realm, client_id).await?.ok_or_else(bad)?;
        match (&client.secret_hash, secret) {
            (Some(hash), Some(s)) if client.confidential && constant_time_eq(hash, &sm3_hex(s.as_bytes())) => Ok(client),
            (_, None) if !client.confidential => Ok(client),
            _ => Err(bad()),
        }
    }

    /// Registers a client; answers its row id, `client_id` and (confidential clients) the
    /// secret, shown this once.
    pub async fn create(
        &self,
        caller: &Principal,
        actor: &Actor,
        realm: Realm,
        spec: &ClientSpec,
    ) -> DomainResult<(i64, String, Option<String>)> {
        self.require_admin(caller, actor, "oidc.client.create").await?;
        self.insert(actor, realm, spec).await
    }

    /// Registers a client without a caller (demo data, first start).
    pub async fn insert(&self, actor: &Actor, realm: Realm, spec: &ClientSpec) -> DomainResult<(i64, String, Option<String>)> {
        self.insert_with_secret(actor, realm, spec, None).await
    }

    /// Registers a client with a chosen secret (the demo's published ones) or a random one.
    pub async fn insert_with_secret(
        &self,
        actor: &Actor,
        realm: Realm,
        spec: &ClientSpec,
        chosen: Option<&str>,
    ) -> DomainResult<(i64, String, Option<String>)> {
        let s = checked(spec)?;
        let client_id = if s.client_id.is_empty() { format!("tb-{}", &random_token()[..16]) } else { s.client_id.clone() };
        let secret = s.confidential.then(|| chosen.map(String::from).unwrap_or_else(random_token));
        let now = now_millis();
        let mut tx = self.db.begin_write().await?;
        if sqlx::query("SELECT 1 FROM oidc_clients WHERE client_id = $1").bind(&client_id).fetch_optional(tx.conn()).await?.is_some() {
            return Err(DomainError::invalid("client_id", "oidc.error.client_taken"));
        }
        let id: i64 = sqlx::query(
            "INSERT INTO oidc_clients (realm, client_id, name, confidential, secret_hash, redirect_uris, post_logout_uris, backchannel_logout_uri, \
             scopes, grants, id_token_alg, access_ttl, refresh_ttl, first_party, logo_url, enabled, created_at, updated_at) \
             VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,1,$16,$16) RETURNING id",
        )
        .bind(realm.as_str())
        .bind(&client_id)
        .bind(&s.name)
        .bind(i64::from(s.confidential))
        .bind(secret.as_deref().map(|x| sm3_hex(x.as_bytes())))
        .bind(json!(s.redirect_uris).to_string())
        .bind(json!(s.post_logout_uris).to_string())
        .bind(&s.backchannel_logout_uri)
        .bind(s.scopes.join(" "))
        .bind(s.grants.join(" "))
        .bind(&s.id_token_alg)
        .bind(s.access_ttl)
        .bind(s.refresh_ttl)
        .bind(i64::from(s.first_party))
        .bind(&s.logo_url)
        .bind(now)
        .fetch_one(tx.conn())
        .await?
        .get(0);
        let details = json!({"client_id": client_id, "realm": realm.as_str(), "redirect_uris": s.redirect_uris, "grants": s.grants});
        self.audit.append(&mut tx, actor, Entry::success("oidc.client.create", "oidc_client", id, details)).await?;
        tx.commit().await?;
        self.forget();
        Ok((id, client_id, secret))
    }

    /// Edits a client (its id, realm and kind stay).
    pub async fn update(&self, caller: &Principal, actor: &Actor, id: i64, spec: &ClientSpec) -> DomainResult<()> {
        let current = self.get(caller, actor, id).await?;
        let s = checked(&ClientSpec { client_id: current.client_id.clone(), confidential: current.confidential, ..spec.clone() })?;
        let mut tx = self.db.begin_write().await?;
        sqlx::query(
            "UPDATE oidc_clients SET name = $1, redirect_uris = $2, post_logout_uris = $3, backchannel_logout_uri = $4, scopes = $5, grants = $6, \
             id_token_alg = $7, access_ttl = $8, refresh_ttl = $9, first_party = $10, logo_url = $11, updated_at = $12 WHERE id = $13",
        )
        .bind(&s.name)
        .bind(json!(s.redirect_uris).to_string())
        .bind(json!(s.post_logout_uris).to_string())
        .bind(&s.backchannel_logout_uri)
        .bind(s.scopes.join(" "))
        .bind(s.grants.join(" "))
        .bind(&s.id_token_alg)
        .bind(s.access_ttl)
        .bind(s.refresh_ttl)
        .bind(i64::from(s.first_party))
        .bind(&s.logo_url)
        .bind(now_millis())
        .bind(id)
        .execute(tx.conn())
        .await?;
        let details = json!({"client_id": current.client_id, "redirect_uris": s.redirect_uris, "scopes": s.scopes, "grants": s.grants});
        self.audit.append(&mut tx, actor, Entry::success("oidc.client.update", "oidc_client", id, details)).await?;
        tx.commit().await?;
        self.forget();
        Ok(())
    }

    /// Replaces a confidential client's secret; answers the new one, shown this once.
    pub async fn rotate_secret(&self, caller: &Principal, actor: &Actor, id: i64) -> DomainResult<String> {
        let current = self.get(caller, actor, id).await?;
        if !current.confidential {
            return Err(DomainError::Conflict("oidc.error.public_client"));
        }
        let secret = random_token();
        let mut tx = self.db.begin_write().await?;
        sqlx::query("UPDATE oidc_clients SET secret_hash = $1, updated_at = $2 WHERE id = $3")
            .bind(sm3_hex(secret.as_bytes()))
            .bind(now_millis())
            .bind(id)
            .execute(tx.conn())
            .await?;
        self.audit
            .append(&mut tx, actor, Entry::success("oidc.client.rotate_secret", "oidc_client", id, json!({"client_id": current.client_id})))
            .await?;
        tx.commit().await?;
        self.forget();
        Ok(secret)
    }

    /// Enables or disables a client; a disabled client's refresh tokens stop working at once.
    pub async fn set_enabled(&self, caller: &Principal, actor: &Actor, id: i64, enabled: bool) -> DomainResult<()> {
        let current = self.get(caller, actor, id).await?;
        let now = now_millis();
        let mut tx = self.db.begin_write().await?;
        sqlx::query("UPDATE oidc_clients SET enabled = $1, updated_at = $2 WHERE id = $3")
            .bind(i64::from(enabled))
            .bind(now)
            .bind(id)
            .execute(tx.conn())
            .await?;
        if !enabled {
            sqlx::query("UPDATE oidc_refresh_tokens SET revoked_at = $1 WHERE client_id = $2 AND revoked_at IS NULL")
                .bind(now)
                .bind(&current.client_id)
                .execute(tx.conn())
                .await?;
        }
        let action = if enabled { "oidc.client.enable" } else { "oidc.client.disable" };
        self.audit.append(&mut tx, actor, Entry::success(action, "oidc_client", id, json!({"client_id": current.client_id}))).await?;
        tx.commit().await?;
        self.forget();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirect_uris_must_be_https_or_loopback_without_fragments() {
        assert!(valid_redirect("https://oa.jiahe.gov.cn/callback"));
        assert!(valid_redirect("http://127.0.0.1:9000/cb"));
        assert!(valid_redirect("http://localhost/cb"));
        assert!(!valid_redirect("http://oa.jiahe.gov.cn/callback"), "plain http off the loopback");
        assert!(!valid_redirect("http://localhost.evil.com/cb"));
        assert!(!valid_redirect("https://oa.jiahe.gov.cn/cb#frag"));
        assert!(!valid_redirect("https://oa.jiahe.gov.cn/c b"));
        assert!(!valid_redirect("javascript:alert(1)"));
    }

    #[test]
    fn specs_are_checked_field_by_field() {
        let ok = ClientSpec {
            name: "旧OA".into(),
            confidential: true,
            redirect_uris: vec!["https://oa.example/cb".into()],
            ..Default::default()
        };
        let s = checked(&ok).unwrap();
        assert_eq!((s.id_token_alg.as_str(), s.access_ttl, s.grants.len()), ("ES256", 3600, 2));
        let field = |spec: ClientSpec| match checked(&spec) {
            Err(DomainError::Invalid(f)) => f.field,
            other => panic!("{other:?}"),
        };
        assert_eq!(field(ClientSpec { name: " ".into(), ..ok.clone() }), "name");
        assert_eq!(field(ClientSpec { redirect_uris: vec![], ..ok.clone() }), "redirect_uris");
        assert_eq!(field(ClientSpec { scopes: vec!["admin".into()], ..ok.clone() }), "scopes");
        assert_eq!(field(ClientSpec { confidential: false, grants: vec!["client_credentials".into()], ..ok.clone() }), "grants");
        assert_eq!(field(ClientSpec { id_token_alg: "none".into(), ..ok.clone() }), "id_token_alg");
        assert_eq!(field(ClientSpec { access_ttl: 10, ..ok.clone() }), "access_ttl");
        assert_eq!(field(ClientSpec { client_id: "a b".into(), ..ok.clone() }), "client_id");
    }
}
