//! Back-channel logout (OpenID Connect Back-Channel Logout 1.0): when a log-in session ends, every
//! client it reached that registered a back-channel URI gets a signed logout token, POSTed by the
//! job runner with retries, so the county's other systems end their sessions too.

use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use jsonwebtoken::Algorithm;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tongban_crypto::token::random_token;
use tongban_platform::{
    clock::now_millis,
    jobs::{Job, JobHandler},
};

use crate::{Realm, keys::KeyRing};

/// The job kind.
pub const BACKCHANNEL_JOB: &str = "oidc.backchannel";

/// What one delivery needs.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Delivery {
    /// Realm (`staff` or `public`).
    pub realm: String,
    /// The client to tell.
    pub client_id: String,
    /// Its back-channel logout URI.
    pub uri: String,
    /// The session (`sid`).
    pub sid: String,
    /// The user (`sub`).
    pub sub: String,
}

/// Signs and delivers logout tokens.
pub struct BackchannelJob {
    keys: KeyRing,
    base_url: String,
}

impl BackchannelJob {
    /// A sender signing with `keys` as the issuers under `base_url`.
    pub fn new(keys: KeyRing, base_url: &str) -> Self {
        BackchannelJob { keys, base_url: base_url.trim_end_matches('/').to_string() }
    }

    /// The logout token for a delivery.
    pub async fn logout_token(&self, d: &Delivery) -> Result<String, String> {
        let realm = Realm::parse(&d.realm).ok_or("unknown realm")?;
        let iat = now_millis() / 1000;
        let claims = json!({
            "iss": format!("{}/realms/{}", self.base_url, realm.as_str()),
            "aud": d.client_id,
            "iat": iat,
            "exp": iat + 120,
            "jti": random_token(),
            "sub": d.sub,
            "sid": d.sid,
            "events": {"http://schemas.openid.net/event/backchannel-logout": {}},
        });
        self.keys.sign(realm, Algorithm::ES256, &claims, "logout+jwt").await.map_err(|e| e.to_string())
    }
}

#[async_trait::async_trait]
impl JobHandler for BackchannelJob {
    async fn run(&self, job: &Job) -> Result<(), String> {
        let d: Delivery = serde_json::from_value(job.payload.clone()).map_err(|e| format!("bad delivery: {e}"))?;
        let token = self.logout_token(&d).await?;
        let body = serde_urlencoded::to_string([("logout_token", token)]).map_err(|e| e.to_string())?;
        let req = hyper::Request::post(&d.uri)
            .header(hyper::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(hyper::header::CACHE_CONTROL, "no-store")
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| e.to_string())?;
        let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new()).build_http();
        let resp = tokio::time::timeout(Duration::from_secs(10), client.request(req))
            .await
            .map_err(|_| format!("{} timed out", d.uri))?
            .map_err(|e| format!("{}: {e}", d.uri))?;
        let status = resp.status();
        let _ = resp.into_body().collect().await;
        if status.is_success() { Ok(()) } else { Err(format!("{} answered {status}", d.uri)) }
    }
}
