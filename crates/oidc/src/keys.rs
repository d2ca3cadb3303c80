//! Signing keys (签名密钥) per realm: ES256 (P-256) always, RS256 (RSA 2048) made on first need for
//! older clients. Private keys are stored sealed with SM4-GCM; the JWKS publishes every key that
//! is active or retired less than a token lifetime ago, so tokens signed before a rotation still
//! verify until they expire.

use std::{
    collections::HashMap,
    sync::{Arc, RwLock},
};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header};
use serde::{Serialize, de::DeserializeOwned};
use serde_json::{Value, json};
use sqlx::Row;
use tongban_crypto::seal::SecretBox;
use tongban_platform::{Db, DomainError, clock::now_millis, error::DomainResult};

use crate::Realm;

/// How long a retired key stays in the JWKS: longer than any token signed with it lives.
pub const RETIRED_KEY_PUBLISHED_MS: i64 = 24 * 3600 * 1000;
/// How long loaded keys are trusted before the database is read again (other instances may
/// have rotated).
const CACHE_MS: i64 = 60_000;

/// One signing key, unsealed.
#[derive(Clone)]
struct LoadedKey {
    kid: String,
    alg: Algorithm,
    encoding: Option<EncodingKey>,
    /// ES256 signing through ring: its P-256 is about eight times faster than the generic
    /// arithmetic behind `jsonwebtoken`'s RustCrypto backend, and the signature is most of a
    /// token's cost. (`jsonwebtoken` still verifies and signs RS256.)
    fast_es256: Option<Arc<ring::signature::EcdsaKeyPair>>,
    decoding: DecodingKey,
    jwk: Value,
    active: bool,
}

#[derive(Default)]
struct Cache {
    loaded_at: i64,
    keys: Vec<LoadedKey>,
    /// The JWKS document, serialised once per load (clients fetch it often).
    jwks: Arc<str>,
}

/// The signing keys of both realms.
#[derive(Clone)]
pub struct KeyRing {
    db: Db,
    secrets: SecretBox,
    cache: Arc<RwLock<HashMap<Realm, Cache>>>,
}

fn alg_name(alg: Algorithm) -> &'static str {
    match alg {
        Algorithm::RS256 => "RS256",
        _ => "ES256",
    }
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A new key: (kid, private DER for jsonwebtoken, public JWK).
fn generate(alg: Algorithm) -> DomainResult<(String, Vec<u8>, Value)> {
    let internal = |e: String| DomainError::Internal(format!("generating a signing key: {e}"));
    let kid = b64(&rand::random::<[u8; 12]>());
    match alg {
        Algorithm::RS256 => {
            use rsa::{pkcs1::EncodeRsaPrivateKey, traits::PublicKeyParts};
            let key = rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, 2048).map_err(|e| internal(e.to_string()))?;
            let der = key.to_pkcs1_der().map_err(|e| internal(e.to_string()))?.as_bytes().to_vec();
            let jwk = json!({"kty": "RSA", "use": "sig", "alg": "RS256", "kid": kid,
                "n": b64(&key.n().to_bytes_be()), "e": b64(&key.e().to_bytes_be())});
            Ok((kid, der, jwk))
        }
        _ => {
            use p256::pkcs8::EncodePrivateKey;
            let key = p256::ecdsa::SigningKey::random(&mut rand::rngs::OsRng);
            let der = key.to_pkcs8_der().map_err(|e| internal(e.to_string()))?.as_bytes().to_vec();
            let point = key.verifying_key().to_encoded_point(false);
            let (Some(x), Some(y)) = (point.x(), point.y()) else { return Err(internal("no point".into())) };
            let jwk = json!({"kty": "EC", "use": "sig", "alg": "ES256", "kid": kid, "crv": "P-256", "x": b64(x), "y": b64(y)});
            Ok((kid, der, jwk))
        }
    }
}

fn decoding_of(jwk: &Value) -> DomainResult<DecodingKey> {
    let s = |k: &str| jwk[k].as_str().unwrap_or_default().to_string();
    let key = match jwk["kty"].as_str() {
        Some("RSA") => DecodingKey::from_rsa_components(&s("n"), &s("e")),
        _ => DecodingKey::from_ec_components(&s("x"), &s("y")),
    };
    key.map_err(|e| DomainError::Internal(format!("public key: {e}")))
}

impl KeyRing {
    /// The key ring over `db`, unsealing with `secrets`.
    pub fn new(db: Db, secrets: SecretBox) -> Self {
        KeyRing { db, secrets, cache: Arc::new(RwLock::new(HashMap::new())) }
    }

    fn context(kid: &str) -> Vec<u8> {
        format!("oidc.key:{kid}").into_bytes()
    }

    async fn create(&self, realm: Realm, alg: Algorithm) -> DomainResult<()> {
        let (kid, der, jwk) = generate(alg)?;
        let sealed = self.secrets.seal(&der, &Self::context(&kid));
        sqlx::query("INSERT INTO oidc_keys (realm, kid, alg, private_sealed, public_jwk, created_at) VALUES ($1,$2,$3,$4,$5,$6)")
            .bind(realm.as_str())
            .bind(&kid)
            .bind(alg_name(alg))
            .bind(sealed)
            .bind(jwk.to_string())
            .bind(now_millis())
            .execute(self.db.pool())
            .await?;
        self.forget(realm);
        Ok(())
    }

    fn forget(&self, realm: Realm) {
        if let Ok(mut c) = self.cache.write() {
            c.remove(&realm);
        }
    }

    async fn load(&self, realm: Realm) -> DomainResult<Vec<LoadedKey>> {
        let now = now_millis();
        if let Ok(c) = self.cache.read()
            && let Some(cached) = c.get(&realm)
            && now - cached.loaded_at < CACHE_MS
        {
            return Ok(cached.keys.clone());
        }
        let rows = sqlx::query(
            "SELECT kid, alg, private_sealed, public_jwk, retired_at FROM oidc_keys WHERE realm = $1 \
             AND (retired_at IS NULL OR published_until > $2) ORDER BY id DESC",
        )
        .bind(realm.as_str())
        .bind(now)
        .fetch_all(self.db.pool())
        .await?;
        let mut keys = Vec::with_capacity(rows.len());
        for r in rows {
            let kid: String = r.get(0);
            let alg = if r.get::<String, _>(1) == "RS256" { Algorithm::RS256 } else { Algorithm::ES256 };
            let jwk: Value = serde_json::from_str(&r.get::<String, _>(3)).map_err(|e| DomainError::Internal(e.to_string()))?;
            let active = r.get::<Option<i64>, _>(4).is_none();
            let (encoding, fast_es256) = if active {
                let der = self
                    .secrets
                    .open(&r.get::<String, _>(2), &Self::context(&kid))
                    .map_err(|e| DomainError::Internal(format!("signing key {kid}: {e}")))?;
                match alg {
                    Algorithm::RS256 => (Some(EncodingKey::from_rsa_der(&der)), None),
                    _ => (Some(EncodingKey::from_ec_der(&der)), ring_key(&der).map(Arc::new)),
                }
            } else {
                (None, None)
            };
            keys.push(LoadedKey { decoding: decoding_of(&jwk)?, kid, alg, encoding, fast_es256, jwk, active });
        }
        let jwks = jwks_of(&keys);
        if let Ok(mut c) = self.cache.write() {
            c.insert(realm, Cache { loaded_at: now, keys: keys.clone(), jwks });
        }
        Ok(keys)
    }

    /// Makes sure the realm has an active ES256 key (at start).
    pub async fn ensure(&self, realm: Realm) -> DomainResult<()> {
        self.ensure_alg(realm, Algorithm::ES256).await
    }

    /// Makes sure the realm has an active key for `alg`; called before a write transaction
    /// opens, since making a key writes too.
    pub async fn ensure_alg(&self, realm: Realm, alg: Algorithm) -> DomainResult<()> {
        if !self.load(realm).await?.iter().any(|k| k.active && k.alg == alg) {
            self.create(realm, alg).await?;
        }
        Ok(())
    }

    /// Signs `claims` with the realm's active key for `alg` (an RS256 key is made on first use).
    pub async fn sign<T: Serialize>(&self, realm: Realm, alg: Algorithm, claims: &T, typ: &str) -> DomainResult<String> {
        let mut keys = self.load(realm).await?;
        if !keys.iter().any(|k| k.active && k.alg == alg) {
            self.create(realm, alg).await?;
            keys = self.load(realm).await?;
        }
        let key = keys.iter().find(|k| k.active && k.alg == alg).ok_or_else(|| DomainError::Internal("no signing key".into()))?;
        if let Some(pair) = &key.fast_es256 {
            return sign_es256(pair, &key.kid, typ, claims);
        }
        let Some(encoding) = &key.encoding else { return Err(DomainError::Internal("retired key".into())) };
        let mut header = Header::new(alg);
        header.kid = Some(key.kid.clone());
        header.typ = Some(typ.to_string());
        jsonwebtoken::encode(&header, claims, encoding).map_err(|e| DomainError::Internal(format!("signing: {e}")))
    }

    /// Verifies a token signed by this realm: the `kid` must be one of its published keys, the
    /// algorithm the key's own (so `alg: none` or a swapped algorithm never verifies) and the
    /// `typ` header the kind expected (an ID token is no access token). Expiry is checked unless
    /// `allow_expired`; audience is left to the caller.
    pub async fn verify<T: DeserializeOwned>(&self, realm: Realm, token: &str, issuer: &str, typ: &str, allow_expired: bool) -> Option<T> {
        let header = jsonwebtoken::decode_header(token).ok()?;
        if header.typ.as_deref() != Some(typ) {
            return None;
        }
        let keys = self.load(realm).await.ok()?;
        let key = keys.iter().find(|k| Some(&k.kid) == header.kid.as_ref() && k.alg == header.alg)?;
        let mut v = jsonwebtoken::Validation::new(key.alg);
        v.set_issuer(&[issuer]);
        v.validate_aud = false;
        v.validate_exp = !allow_expired;
        v.leeway = 30;
        if allow_expired {
            v.required_spec_claims.remove("exp");
        }
        jsonwebtoken::decode::<T>(token, &key.decoding, &v).ok().map(|d| d.claims)
    }

    /// The realm's JSON Web Key Set as served, serialised once per load.
    pub async fn jwks_text(&self, realm: Realm) -> DomainResult<Arc<str>> {
        let keys = self.load(realm).await?;
        let cached = self.cache.read().ok().and_then(|c| c.get(&realm).map(|c| c.jwks.clone()));
        Ok(cached.unwrap_or_else(|| jwks_of(&keys)))
    }

    /// Rotates the realm's keys (轮换): new active keys for each algorithm in use; the old ones
    /// stay published for [`RETIRED_KEY_PUBLISHED_MS`].
    pub async fn rotate(&self, realm: Realm) -> DomainResult<Vec<String>> {
        let now = now_millis();
        let algs: Vec<String> = sqlx::query("SELECT DISTINCT alg FROM oidc_keys WHERE realm = $1 AND retired_at IS NULL")
            .bind(realm.as_str())
            .fetch_all(self.db.pool())
            .await?
            .iter()
            .map(|r| r.get(0))
            .collect();
        sqlx::query("UPDATE oidc_keys SET retired_at = $2, published_until = $3 WHERE realm = $1 AND retired_at IS NULL")
            .bind(realm.as_str())
            .bind(now)
            .bind(now + RETIRED_KEY_PUBLISHED_MS)
            .execute(self.db.pool())
            .await?;
        for alg in &algs {
            self.create(realm, if alg == "RS256" { Algorithm::RS256 } else { Algorithm::ES256 }).await?;
        }
        self.ensure(realm).await?;
        self.forget(realm);
        Ok(algs)
    }
}

/// The JWKS document of `keys`.
fn jwks_of(keys: &[LoadedKey]) -> Arc<str> {
    json!({"keys": keys.iter().map(|k| k.jwk.clone()).collect::<Vec<_>>()}).to_string().into()
}

/// A ring key pair from the PKCS#8 document that `jsonwebtoken` signs with.
fn ring_key(pkcs8: &[u8]) -> Option<ring::signature::EcdsaKeyPair> {
    use p256::{elliptic_curve::sec1::ToEncodedPoint, pkcs8::DecodePrivateKey};
    let secret = p256::SecretKey::from_pkcs8_der(pkcs8).ok()?;
    let public = secret.public_key().to_encoded_point(false);
    let alg = &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING;
    ring::signature::EcdsaKeyPair::from_private_key_and_public_key(
        alg,
        &secret.to_bytes(),
        public.as_bytes(),
        &ring::rand::SystemRandom::new(),
    )
    .ok()
}

/// A compact JWS (RFC 7515) over `claims`, ES256: the fixed-length r ‖ s signature is exactly the
/// JWS form.
fn sign_es256<T: Serialize>(pair: &ring::signature::EcdsaKeyPair, kid: &str, typ: &str, claims: &T) -> DomainResult<String> {
    let header = json!({"alg": "ES256", "typ": typ, "kid": kid});
    let payload = serde_json::to_vec(claims).map_err(|e| DomainError::Internal(format!("claims: {e}")))?;
    let mut out = format!("{}.{}", b64(header.to_string().as_bytes()), b64(&payload));
    let sig = pair.sign(&ring::rand::SystemRandom::new(), out.as_bytes()).map_err(|_| DomainError::Internal("signing failed".into()))?;
    out.push('.');
    out.push_str(&b64(sig.as_ref()));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ring_signatures_verify_with_jsonwebtoken_and_the_published_key() {
        let (kid, der, jwk) = generate(Algorithm::ES256).unwrap();
        let pair = ring_key(&der).expect("ring accepts the generated key");
        let token = sign_es256(&pair, &kid, "at+jwt", &json!({"sub": "1", "exp": 4_000_000_000u64})).unwrap();
        let header = jsonwebtoken::decode_header(&token).unwrap();
        assert_eq!((header.alg, header.kid.as_deref(), header.typ.as_deref()), (Algorithm::ES256, Some(kid.as_str()), Some("at+jwt")));
        let mut v = jsonwebtoken::Validation::new(Algorithm::ES256);
        v.validate_aud = false;
        v.required_spec_claims.clear();
        let claims = jsonwebtoken::decode::<Value>(&token, &decoding_of(&jwk).unwrap(), &v).unwrap().claims;
        assert_eq!(claims["sub"], "1");
        let mut forged = token.clone();
        forged.replace_range(token.len() - 4.., "AAAA");
        assert!(jsonwebtoken::decode::<Value>(&forged, &decoding_of(&jwk).unwrap(), &v).is_err(), "a changed signature fails");
    }
}
