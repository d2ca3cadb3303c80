//! Strong log-in through HTTP: passkeys (通行密钥), certificate log-in (证书登录) and forced
//! re-authentication. A small software authenticator
//! (P-256 via ring, "none" attestation, CBOR written by hand) plays the browser's part, so the
//! server's WebAuthn checks run for real: registration, discoverable log-in, one-time challenges,
//! signature counters, tampered signatures, the wrong origin, keys of the other realm; then
//! `prompt=login`, `max_age` and `acr_values` sending a live session back to log in again in place.
//! Certificates are OpenSSL-made fixtures (SM2 and P-256) with their test keys.

use axum::http::{Method, StatusCode};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use ring::{
    digest::{SHA256, digest},
    rand::SystemRandom,
    signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair},
};
use serde_json::{Value, json};

use crate::{
    support::{Client, DEMO_PASSWORD, Resp, TestApp},
    takeover::{P256_CSR, SM2_CSR, bind_own, issue_from, staff_with_second_factor},
};

/// Where the test app's pages are (the default public URL served as localhost, see PasskeyParty).
const ORIGIN: &str = "http://localhost:8080";

/// A security key holding one credential.
struct Authenticator {
    key: EcdsaKeyPair,
    credential_id: Vec<u8>,
    user_handle: Vec<u8>,
    counter: u32,
    origin: String,
}

fn cbor_bytes(out: &mut Vec<u8>, b: &[u8]) {
    match b.len() {
        n if n < 24 => out.push(0x40 | n as u8),
        n if n < 256 => out.extend([0x58, n as u8]),
        n => out.extend([0x59, (n >> 8) as u8, n as u8]),
    }
    out.extend_from_slice(b);
}

fn cbor_text(out: &mut Vec<u8>, s: &str) {
    out.push(0x60 | s.len() as u8);
    out.extend_from_slice(s.as_bytes());
}

fn b64(b: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(b)
}

fn unb64(v: &Value) -> Vec<u8> {
    URL_SAFE_NO_PAD.decode(v.as_str().unwrap_or_default().trim_end_matches('=')).unwrap_or_default()
}

impl Authenticator {
    fn new() -> Self {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng).expect("key");
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref(), &rng).expect("key");
        let credential_id = (0..32).map(|_| rand::random::<u8>()).collect();
        Authenticator { key, credential_id, user_handle: Vec::new(), counter: 0, origin: ORIGIN.into() }
    }

    fn client_data(&self, kind: &str, challenge: &Value) -> Vec<u8> {
        json!({"type": kind, "challenge": challenge, "origin": self.origin, "crossOrigin": false}).to_string().into_bytes()
    }

    /// The COSE_Key of the public key: {kty: EC2, alg: ES256, crv: P-256, x, y}.
    fn cose_key(&self) -> Vec<u8> {
        let point = self.key.public_key().as_ref();
        let mut k = vec![0xa5, 0x01, 0x02, 0x03, 0x26, 0x20, 0x01, 0x21];
        cbor_bytes(&mut k, &point[1..33]);
        k.push(0x22);
        cbor_bytes(&mut k, &point[33..65]);
        k
    }

    /// Answers `navigator.credentials.create()` with the options the server sent.
    fn register(&mut self, options: &Value) -> Value {
        self.user_handle = unb64(&options["user"]["id"]);
        let client_data = self.client_data("webauthn.create", &options["challenge"]);
        let mut auth_data = digest(&SHA256, options["rp"]["id"].as_str().unwrap_or_default().as_bytes()).as_ref().to_vec();
        auth_data.push(0x45); // user present, user verified, attested credential data
        auth_data.extend(self.counter.to_be_bytes());
        auth_data.extend([0u8; 16]);
        auth_data.extend((self.credential_id.len() as u16).to_be_bytes());
        auth_data.extend(&self.credential_id);
        auth_data.extend(self.cose_key());
        let mut att = vec![0xa3];
        cbor_text(&mut att, "fmt");
        cbor_text(&mut att, "none");
        cbor_text(&mut att, "attStmt");
        att.push(0xa0);
        cbor_text(&mut att, "authData");
        cbor_bytes(&mut att, &auth_data);
        json!({
            "id": b64(&self.credential_id), "rawId": b64(&self.credential_id), "type": "public-key", "extensions": {},
            "response": {"attestationObject": b64(&att), "clientDataJSON": b64(&client_data)},
        })
    }

    /// Answers `navigator.credentials.get()`; the counter goes up by one each time.
    fn assert(&mut self, options: &Value) -> Value {
        self.counter += 1;
        let client_data = self.client_data("webauthn.get", &options["challenge"]);
        let mut auth_data = digest(&SHA256, options["rpId"].as_str().unwrap_or_default().as_bytes()).as_ref().to_vec();
        auth_data.push(0x05); // user present, user verified
        auth_data.extend(self.counter.to_be_bytes());
        let mut signed = auth_data.clone();
        signed.extend(digest(&SHA256, &client_data).as_ref());
        let sig = self.key.sign(&SystemRandom::new(), &signed).expect("sign");
        json!({
            "id": b64(&self.credential_id), "rawId": b64(&self.credential_id), "type": "public-key", "extensions": {},
            "response": {
                "authenticatorData": b64(&auth_data), "clientDataJSON": b64(&client_data),
                "signature": b64(sig.as_ref()), "userHandle": b64(&self.user_handle),
            },
        })
    }
}

/// Posts JSON as the page's script does: the CSRF token of `page` in `X-CSRF-Token`.
pub(crate) async fn post_json(c: &mut Client, page: &str, path: &str, body: Value) -> Resp {
    let token = c.csrf(page).await;
    let headers = [("content-type", "application/json"), ("x-csrf-token", token.as_str())];
    c.request(Method::POST, path, &headers, &body.to_string()).await
}

/// Registers a passkey for the logged-in staff client.
async fn register(c: &mut Client, key: &mut Authenticator, name: &str) -> Resp {
    let start = post_json(c, "/me/sessions", "/me/passkeys/begin", json!({})).await;
    assert_eq!(start.status, StatusCode::OK, "{}", start.body);
    let start = start.json();
    let credential = key.register(&start["publicKey"]);
    post_json(c, "/me/sessions", "/me/passkeys/finish", json!({"handle": start["handle"], "name": name, "credential": credential})).await
}

/// A passkey log-in from `page` (the staff or public log-in page) through `prefix`.
async fn passkey_login(c: &mut Client, key: &mut Authenticator, page: &str, prefix: &str) -> Resp {
    let start = post_json(c, page, &format!("{prefix}/begin"), json!({})).await;
    assert_eq!(start.status, StatusCode::OK, "{}", start.body);
    let start = start.json();
    assert_eq!(start["publicKey"]["userVerification"], "required");
    let answer = key.assert(&start["publicKey"]);
    post_json(c, page, &format!("{prefix}/finish"), json!({"handle": start["handle"], "credential": answer})).await
}

#[tokio::test]
async fn a_staff_member_registers_a_passkey_and_logs_in_with_it_alone() {
    let app = TestApp::demo().await;
    let mut c = app.staff("zhoujun").await;
    let mut key = Authenticator::new();
    let r = register(&mut c, &mut key, "办公室 U 盾").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let page = c.get("/me/sessions").await;
    assert!(page.body.contains("办公室 U 盾"), "listed under my account");
    assert_eq!(app.audit_count("passkey.register", "success").await, 1);

    // A new browser: no user name, no password, no TOTP.
    let mut browser = app.client();
    let r = passkey_login(&mut browser, &mut key, "/login", "/login/passkey").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.json()["next"], "/workbench");
    assert_eq!(browser.get("/workbench").await.status, StatusCode::OK);
    let uid = app.user_id("zhoujun").await;
    let amr = app.scalar_text(&format!("SELECT amr FROM sessions WHERE user_id = {uid} ORDER BY id DESC LIMIT 1")).await;
    assert_eq!(amr, "hwk user mfa");
    assert_eq!(app.scalar("SELECT COUNT(*) FROM passkeys WHERE last_used_at IS NOT NULL").await, 1);

    // The same key cannot be registered twice, not even by another account.
    let mut other = app.staff("xuhui").await;
    let again = register(&mut other, &mut key, "copy").await;
    assert_eq!(again.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", again.body);
    assert_eq!(again.json()["field"], "credential");
}

#[tokio::test]
async fn passkey_answers_that_are_replayed_forged_or_from_elsewhere_are_refused() {
    let app = TestApp::demo().await;
    let mut c = app.staff("zhoujun").await;
    let mut key = Authenticator::new();
    assert_eq!(register(&mut c, &mut key, "key").await.status, StatusCode::OK);
    let sessions = || app.scalar("SELECT COUNT(*) FROM sessions WHERE revoked_at IS NULL");
    let before = sessions().await;
    let mut browser = app.client();

    // A challenge answers once: the same answer again is refused.
    let start = post_json(&mut browser, "/login", "/login/passkey/begin", json!({})).await.json();
    let answer = key.assert(&start["publicKey"]);
    let body = json!({"handle": start["handle"], "credential": answer});
    assert_eq!(post_json(&mut browser, "/login", "/login/passkey/finish", body.clone()).await.status, StatusCode::OK);
    let mut replay = app.client();
    let r = post_json(&mut replay, "/login", "/login/passkey/finish", body).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    assert_eq!(r.json()["field"], "handle");
    let after_first = sessions().await;
    assert_eq!(after_first, before + 1);

    // A cloned key (counter not above the stored one), a forged signature, another origin.
    let mut clone = app.client();
    key.counter -= 1;
    assert_eq!(passkey_login(&mut clone, &mut key, "/login", "/login/passkey").await.status, StatusCode::UNAUTHORIZED);
    let start = post_json(&mut clone, "/login", "/login/passkey/begin", json!({})).await.json();
    let mut forged = key.assert(&start["publicKey"]);
    forged["response"]["signature"] = json!(b64(&[0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01]));
    let r = post_json(&mut clone, "/login", "/login/passkey/finish", json!({"handle": start["handle"], "credential": forged})).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.body);
    key.origin = "http://localhost.evil.example".into();
    assert_eq!(passkey_login(&mut clone, &mut key, "/login", "/login/passkey").await.status, StatusCode::UNAUTHORIZED);
    key.origin = ORIGIN.into();

    // A staff key does not open the public realm.
    assert_eq!(passkey_login(&mut clone, &mut key, "/public/login", "/public/login/passkey").await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(app.scalar("SELECT COUNT(*) FROM public_sessions WHERE amr = 'hwk user mfa'").await, 0);

    // Malformed answers name the field; nothing opened anywhere.
    let r = post_json(&mut clone, "/login", "/login/passkey/finish", json!({"handle": "x", "credential": {"id": 3}})).await;
    assert_eq!((r.status, r.json()["field"].clone()), (StatusCode::UNPROCESSABLE_ENTITY, json!("credential")));
    let r = post_json(&mut clone, "/login", "/login/passkey/finish", json!({"credential": {}})).await;
    assert_eq!((r.status, r.json()["field"].clone()), (StatusCode::UNPROCESSABLE_ENTITY, json!("handle")));
    assert_eq!(sessions().await, after_first);
    assert_eq!(app.audit_count("auth.login", "failure").await, 3, "refusals are audited");
    assert_eq!(app.audit_count("public.login", "failure").await, 1);

    // Without the page's CSRF token the call is refused.
    let r = clone.request(Method::POST, "/login/passkey/begin", &[("content-type", "application/json")], "{}").await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn passkeys_are_managed_only_by_their_owner() {
    let app = TestApp::demo().await;
    // Registration needs a log-in.
    let mut anon = app.client();
    assert_eq!(post_json(&mut anon, "/login", "/me/passkeys/begin", json!({})).await.status, StatusCode::UNAUTHORIZED);

    let mut c = app.staff("zhoujun").await;
    let mut key = Authenticator::new();
    let start = post_json(&mut c, "/me/sessions", "/me/passkeys/begin", json!({})).await.json();
    let credential = key.register(&start["publicKey"]);
    let r =
        post_json(&mut c, "/me/sessions", "/me/passkeys/finish", json!({"handle": start["handle"], "name": " ", "credential": credential}))
            .await;
    assert_eq!((r.status, r.json()["field"].clone()), (StatusCode::UNPROCESSABLE_ENTITY, json!("name")));
    // Another account cannot finish zhoujun's ceremony.
    let mut other = app.staff("xuhui").await;
    let start = post_json(&mut c, "/me/sessions", "/me/passkeys/begin", json!({})).await.json();
    let credential = key.register(&start["publicKey"]);
    let body = json!({"handle": start["handle"], "name": "stolen", "credential": credential});
    assert_eq!(post_json(&mut other, "/me/sessions", "/me/passkeys/finish", body).await.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(app.scalar("SELECT COUNT(*) FROM passkeys").await, 0, "nothing half-written");

    assert_eq!(register(&mut c, &mut key, "key").await.status, StatusCode::OK);
    let id = app.scalar("SELECT id FROM passkeys").await;
    let r = other.post_form("/me/sessions", &format!("/me/passkeys/{id}/remove"), &[]).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "another account's key is not found");
    let r = c.post_form("/me/sessions", &format!("/me/passkeys/{id}/remove"), &[]).await;
    assert_eq!(r.location(), "/me/sessions?done=passkey_removed");
    assert_eq!(app.scalar("SELECT COUNT(*) FROM passkeys").await, 0);
    let mut browser = app.client();
    assert_eq!(passkey_login(&mut browser, &mut key, "/login", "/login/passkey").await.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_citizen_logs_in_with_a_passkey() {
    let app = TestApp::demo().await;
    let mut citizen = app.client();
    let registration = [
        ("kind", "person"),
        ("name", "李小龙"),
        ("cert_no", "11010519491231002X"),
        ("phone", "13800000001"),
        ("email", ""),
        ("password", "Citizen#2026"),
        ("password_again", "Citizen#2026"),
    ];
    let r = citizen.post_form("/public/register", "/public/register", &registration).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let mut stranger = app.client();
    let r = post_json(&mut stranger, "/public/login", "/public/passkeys/begin", json!({})).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "registration needs a citizen's log-in");
    let mut key = Authenticator::new();
    let start = post_json(&mut citizen, "/public", "/public/passkeys/begin", json!({})).await;
    assert_eq!(start.status, StatusCode::OK, "{}", start.body);
    let start = start.json();
    let credential = key.register(&start["publicKey"]);
    let body = json!({"handle": start["handle"], "name": "手机", "credential": credential});
    assert_eq!(post_json(&mut citizen, "/public", "/public/passkeys/finish", body).await.status, StatusCode::OK);

    let mut phone = app.client();
    let r = passkey_login(&mut phone, &mut key, "/public/login", "/public/login/passkey").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.json()["next"], "/public");
    assert!(phone.get("/public").await.body.contains("public-me"));
    // The citizen's key does not log in to the staff realm, and the public session opens no staff page.
    assert_eq!(passkey_login(&mut phone, &mut key, "/login", "/login/passkey").await.status, StatusCode::UNAUTHORIZED);
    let staff_page = phone.get("/workbench").await;
    assert_eq!((staff_page.status, staff_page.location()), (StatusCode::SEE_OTHER, "/login"), "{}", staff_page.body);
}

fn authorize(extra: &str) -> String {
    format!(
        "/realms/staff/authorize?response_type=code&client_id=legacy-oa&redirect_uri=http%3A%2F%2F127.0.0.1%3A9101%2Fcallback&scope=openid&state=s{extra}"
    )
}

#[tokio::test]
async fn a_relying_party_can_demand_a_fresh_or_stronger_log_in() {
    let app = TestApp::demo().await;
    let mut c = app.staff("zhoujun").await;
    let sid = || app.scalar("SELECT MAX(id) FROM sessions");
    let first = sid().await;

    // prompt=login: back to the log-in page, the user name kept; the password renews the session.
    let r = c.get(&authorize("&prompt=login")).await;
    assert_eq!(r.location(), "/login?reauth=fresh");
    let page = c.get("/login?reauth=fresh").await;
    assert!(page.body.contains("id=\"reauth-notice\"") && page.body.contains("value=\"zhoujun\""), "{}", page.body);
    let wrong = c.post_form("/login?reauth=fresh", "/login", &[("username", "zhoujun"), ("password", "nope"), ("reauth", "fresh")]).await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    let r =
        c.post_form("/login?reauth=fresh", "/login", &[("username", "zhoujun"), ("password", DEMO_PASSWORD), ("reauth", "fresh")]).await;
    assert_eq!(r.location(), "/workbench");
    assert_eq!(sid().await, first, "the same session, renewed in place");
    let back = c.get("/workbench").await;
    assert!(!back.body.contains("prompt=login") && back.body.contains("id=\"continue\""), "continues without prompt=login");
    let r = c.get(&authorize("")).await;
    assert!(r.location().starts_with("http://127.0.0.1:9101/callback?code="), "{}", r.location());

    // max_age: a log-in older than asked for must be repeated; prompt=none answers login_required.
    app.sql("UPDATE sessions SET auth_time = auth_time - 120000").await;
    assert!(c.get(&authorize("&max_age=600")).await.location().contains("code="));
    assert_eq!(c.get(&authorize("&max_age=60")).await.location(), "/login?reauth=fresh");
    let r = c.get(&authorize("&max_age=60&prompt=none")).await;
    assert!(r.location().contains("error=login_required"), "{}", r.location());
    let r = c.get(&authorize("&max_age=soon")).await;
    assert!(r.location().contains("error=invalid_request"), "{}", r.location());

    // acr_values: a password session is below hwk; mfa accepts a passkey too.
    assert_eq!(c.get(&authorize("&acr_values=urn%3Atongban%3Aacr%3Ahwk")).await.location(), "/login?reauth=hwk");
    assert_eq!(c.get(&authorize("&acr_values=urn%3Atongban%3Aacr%3Amfa")).await.location(), "/login?reauth=mfa");
    let mut key = Authenticator::new();
    assert_eq!(register(&mut c, &mut key, "key").await.status, StatusCode::OK);
    let r = passkey_login(&mut c, &mut key, "/login?reauth=hwk", "/login/passkey").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(sid().await, first, "step-up renews the same session");
    assert!(c.get(&authorize("&acr_values=urn%3Atongban%3Aacr%3Ahwk")).await.location().contains("code="));
    assert!(c.get(&authorize("&acr_values=urn%3Atongban%3Aacr%3Amfa")).await.location().contains("code="));
    let d = app.client().get("/realms/staff/.well-known/openid-configuration").await.json();
    assert_eq!(d["acr_values_supported"], json!(["urn:tongban:acr:pwd", "urn:tongban:acr:mfa", "urn:tongban:acr:hwk"]));
}

pub(crate) const P256_CERT: &str = include_str!("../fixtures/p256.crt");
pub(crate) const P256_KEY: &str = include_str!("../fixtures/p256.key");
pub(crate) const SM2_CERT: &str = include_str!("../fixtures/sm2.crt");
pub(crate) const SM2_KEY: &str = include_str!("../fixtures/sm2.key");
const RSA_CERT: &str = include_str!("../fixtures/rsa.crt");

/// Signs like USB-key middleware: P-256 ECDSA (DER) or SM2 with the default user id (r‖s).
pub(crate) fn sign(key_pem: &str, message: &str) -> String {
    use base64::engine::general_purpose::STANDARD;
    if key_pem == SM2_KEY {
        use sm2::{SecretKey, dsa::SigningKey, pkcs8::DecodePrivateKey};
        let secret = SecretKey::from_pkcs8_pem(key_pem).expect("sm2 key");
        let key = SigningKey::new("1234567812345678", &secret).expect("signing key");
        let sig: sm2::dsa::Signature = sm2::dsa::signature::Signer::sign(&key, message.as_bytes());
        return STANDARD.encode(sig.to_bytes());
    }
    let b64: String = key_pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let der = STANDARD.decode(b64).expect("pem");
    let rng = SystemRandom::new();
    let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &der, &rng).expect("p256 key");
    STANDARD.encode(key.sign(&rng, message.as_bytes()).expect("sign").as_ref())
}

/// A certificate log-in as middleware drives it: challenge, sign, finish.
pub(crate) async fn certificate_login(c: &mut Client, cert: &str, key: &str) -> Resp {
    let start = post_json(c, "/login", "/login/certificate/challenge", json!({})).await;
    assert_eq!(start.status, StatusCode::OK, "{}", start.body);
    let start = start.json();
    let to_sign = start["to_sign"].as_str().unwrap_or_default().to_string();
    assert!(to_sign.starts_with("tongban-login\nhttp://127.0.0.1:8080\n"), "the challenge names the server: {to_sign}");
    let body = json!({"handle": start["handle"], "certificate": cert, "signature": sign(key, &to_sign)});
    post_json(c, "/login", "/login/certificate/finish", body).await
}

/// The county CA issues certificates for zhoujun (P-256) and xuhui (SM2) and each binds their own;
/// answers the two PEMs and zhoujun's session.
async fn issued_and_bound(app: &TestApp) -> (String, String, Client) {
    crate::pki::ca(app).await;
    let mut sec = app.admin("secadmin").await;
    let p256 = issue_from(app, &mut sec, "zhoujun", P256_CSR).await;
    let sm2 = issue_from(app, &mut sec, "xuhui", SM2_CSR).await;
    let mut zhoujun = staff_with_second_factor(app, "zhoujun").await;
    assert_eq!(bind_own(&mut zhoujun, &p256, P256_KEY).await.location(), "/me/certificates?done=certificate_bound");
    let mut xuhui = staff_with_second_factor(app, "xuhui").await;
    assert_eq!(bind_own(&mut xuhui, &sm2, SM2_KEY).await.location(), "/me/certificates?done=certificate_bound");
    (p256, sm2, zhoujun)
}

#[tokio::test]
async fn holders_bind_certificates_of_the_county_ca_and_log_in_by_signing() {
    let app = TestApp::demo().await;
    let mut fangyuan = staff_with_second_factor(&app, "fangyuan").await;
    // Binding: SM2 and P-256 only, readable, of the county CA, once; refusals name the field and
    // store nothing.
    let r = bind_own(&mut fangyuan, RSA_CERT, P256_KEY).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body.contains("id=\"cert-error\"") && r.body.contains("SM2"), "{}", r.body);
    let garbage = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----";
    assert_eq!(bind_own(&mut fangyuan, garbage, P256_KEY).await.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(bind_own(&mut fangyuan, P256_CERT, P256_KEY).await.status, StatusCode::UNPROCESSABLE_ENTITY, "self-signed");
    assert_eq!(bind_own(&mut fangyuan, SM2_CERT, SM2_KEY).await.status, StatusCode::UNPROCESSABLE_ENTITY, "self-signed SM2");
    assert_eq!(app.scalar("SELECT COUNT(*) FROM user_certificates").await, 0);
    let (p256, sm2, mut zhoujun) = issued_and_bound(&app).await;
    let again = bind_own(&mut zhoujun, &p256, P256_KEY).await;
    assert!(again.status == StatusCode::UNPROCESSABLE_ENTITY && again.body.contains("已绑定"), "bound once only");
    assert_eq!(bind_own(&mut fangyuan, &sm2, SM2_KEY).await.status, StatusCode::UNPROCESSABLE_ENTITY, "issued for another");
    let zid = app.user_id("zhoujun").await;
    let mut admin = app.admin("sysadmin").await;
    let page = admin.get(&format!("/admin/users/{zid}")).await;
    assert!(page.body.contains("CN=周军") && page.body.contains("p256"), "listed on the account page");
    assert!(!page.body.contains("name=\"certificate\""), "no binding form for administrators");

    // Log-in by signing the challenge: P-256 and SM2; no password, no TOTP.
    let mut browser = app.client();
    let r = certificate_login(&mut browser, &p256, P256_KEY).await;
    assert_eq!((r.status, r.json()["next"].clone()), (StatusCode::OK, json!("/workbench")), "{}", r.body);
    assert_eq!(browser.get("/workbench").await.status, StatusCode::OK);
    let amr = app.scalar_text(&format!("SELECT amr FROM sessions WHERE user_id = {zid} ORDER BY id DESC LIMIT 1")).await;
    assert_eq!(amr, "hwk sc");
    let mut other = app.client();
    assert_eq!(certificate_login(&mut other, &sm2, SM2_KEY).await.status, StatusCode::OK);

    // Refused: a signature by another key, a replayed challenge, a malformed signature.
    let before = app.scalar("SELECT COUNT(*) FROM sessions").await;
    let mut thief = app.client();
    assert_eq!(certificate_login(&mut thief, &p256, SM2_KEY).await.status, StatusCode::UNAUTHORIZED);
    let start = post_json(&mut thief, "/login", "/login/certificate/challenge", json!({})).await.json();
    let signed = sign(P256_KEY, start["to_sign"].as_str().unwrap_or_default());
    let body = json!({"handle": start["handle"], "certificate": p256, "signature": signed});
    let mut holder = app.client();
    assert_eq!(post_json(&mut holder, "/login", "/login/certificate/finish", body.clone()).await.status, StatusCode::OK);
    let r = post_json(&mut thief, "/login", "/login/certificate/finish", body).await;
    assert_eq!((r.status, r.json()["field"].clone()), (StatusCode::UNPROCESSABLE_ENTITY, json!("handle")), "a challenge answers once");
    let start = post_json(&mut thief, "/login", "/login/certificate/challenge", json!({})).await.json();
    let body = json!({"handle": start["handle"], "certificate": p256, "signature": "not base64!"});
    let r = post_json(&mut thief, "/login", "/login/certificate/finish", body).await;
    assert_eq!((r.status, r.json()["field"].clone()), (StatusCode::UNPROCESSABLE_ENTITY, json!("signature")));
    assert_eq!(app.scalar("SELECT COUNT(*) FROM sessions").await, before + 1, "only the good answer opened a session");
    assert!(
        app.scalar("SELECT COUNT(*) FROM audit_log WHERE action = 'auth.login' AND result = 'failure' AND details LIKE '%certificate%'")
            .await
            >= 1
    );

    // Unbound by an administrator (a lost USB key): the certificate logs in no more.
    let id = app.scalar(&format!("SELECT id FROM user_certificates WHERE user_id = {zid}")).await;
    let r = admin.post_form(&format!("/admin/users/{zid}"), &format!("/admin/users/{zid}/certificates/{id}/unbind"), &[]).await;
    assert_eq!(r.location(), format!("/admin/users/{zid}?done=certificate_unbound"));
    let mut late = app.client();
    assert_eq!(certificate_login(&mut late, &p256, P256_KEY).await.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_certificate_verified_by_the_proxy_logs_in_when_configured() {
    let app = TestApp::with(|c| c.security.client_cert_header = "x-ssl-client-cert".into(), true).await;
    let (_, sm2, _) = issued_and_bound(&app).await;
    assert!(app.client().get("/login").await.body.contains("id=\"certificate-login\""), "the log-in page links it");

    // nginx passes $ssl_client_escaped_cert.
    let escape =
        |pem: &str| -> String { pem.replace('-', "%2D").replace('\n', "%0A").replace('+', "%2B").replace('/', "%2F").replace('=', "%3D") };
    let escaped = escape(&sm2);
    let mut browser = app.client();
    let r = browser.request(Method::GET, "/login/certificate", &[("x-ssl-client-cert", &escaped)], "").await;
    assert_eq!(r.location(), "/workbench", "{}", r.body);
    assert_eq!(browser.get("/workbench").await.status, StatusCode::OK);

    let mut none = app.client();
    let r = none.get("/login/certificate").await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(r.body.contains("U 盾"), "says what is missing: {}", r.body);
    let r = none.request(Method::GET, "/login/certificate", &[("x-ssl-client-cert", P256_CERT.replace('\n', " ").as_str())], "").await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "a certificate bound to nobody");

    // Not configured: the header means nothing.
    let plain = TestApp::demo().await;
    let r = plain.client().request(Method::GET, "/login/certificate", &[("x-ssl-client-cert", &escaped)], "").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

/// A registered citizen, logged in with a password.
async fn citizen(app: &TestApp, cert_no: &str, phone: &str) -> Client {
    let mut c = app.client();
    let form = [
        ("kind", "person"),
        ("name", "李小龙"),
        ("cert_no", cert_no),
        ("phone", phone),
        ("email", ""),
        ("password", "Citizen#2026"),
        ("password_again", "Citizen#2026"),
    ];
    let r = c.post_form("/public/register", "/public/register", &form).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    c
}

/// The code in the last SMS to `phone`, as the phone shows it.
async fn last_code(app: &TestApp, phone: &str) -> String {
    let body = app
        .scalar_text(&format!("SELECT body FROM notify_messages WHERE recipient = '{phone}' AND channel = 'sms' ORDER BY id DESC LIMIT 1"))
        .await;
    body.chars().filter(char::is_ascii_digit).take(6).collect()
}

#[tokio::test]
async fn a_citizen_who_asks_for_it_gets_a_code_at_every_log_in() {
    let app = TestApp::demo().await;
    let mut c = citizen(&app, "11010519491231002X", "13800000001").await;
    let r = c.post_form("/public", "/public/account/login-otp", &[("login_otp", "email")]).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "no e-mail on file");
    let r = c.post_form("/public", "/public/account/login-otp", &[("login_otp", "sms")]).await;
    assert_eq!(r.location(), "/public?done=otp_saved");

    // Password first; the session waits for the code and opens nothing meanwhile.
    let mut phone = app.client();
    let r = phone.post_form("/public/login", "/public/login", &[("login", "13800000001"), ("password", "Citizen#2026")]).await;
    assert_eq!(r.location(), "/public/login/otp", "{} {}", r.status, r.body);
    assert_eq!(phone.get("/public").await.location(), "/public/login", "not logged in before the code");
    let page = phone.get("/public/login/otp").await;
    assert!(page.body.contains("138****0001"), "{}", page.body);
    let code = last_code(&app, "13800000001").await;
    assert_eq!(code.len(), 6);
    // Asking again at once is refused (one a minute).
    assert_eq!(phone.post_form("/public/login/otp", "/public/login/otp/send", &[]).await.status, StatusCode::TOO_MANY_REQUESTS);

    let wrong = if code == "000000" { "000001" } else { "000000" };
    let r = phone.post_form("/public/login/otp", "/public/login/otp", &[("code", wrong)]).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body.contains("id=\"code-error\""));
    let r = phone.post_form("/public/login/otp", "/public/login/otp", &[("code", &code)]).await;
    assert_eq!(r.location(), "/public");
    assert!(phone.get("/public").await.body.contains("public-me"));
    let amr = app.scalar_text("SELECT amr FROM public_sessions ORDER BY id DESC LIMIT 1").await;
    assert_eq!(amr, "pwd otp mfa");
    // A code works once.
    let again = phone.post_form("/public/login/otp", "/public/login/otp", &[("code", &code)]).await;
    assert_eq!(again.status, StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn a_code_dies_after_five_wrong_tries_and_a_system_can_step_up_a_password_session() {
    let app = TestApp::demo().await;
    let mut c = citizen(&app, "11010519491231002X", "13800000001").await;

    // A public system asks for mfa: the password session is sent to confirm with a code.
    let q = "response_type=code&client_id=citizen-app&redirect_uri=http%3A%2F%2F127.0.0.1%3A9103%2Fcallback&scope=openid&state=s\
             &code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256&acr_values=urn%3Atongban%3Aacr%3Amfa";
    let url = format!("/realms/public/authorize?{q}");
    let r = c.get(&url).await;
    assert_eq!(r.location(), "/public/login?reauth=mfa", "{}", r.body);
    let page = c.get("/public/login?reauth=mfa").await;
    assert!(page.body.contains("id=\"step-up-code\""));
    let r = c.post_form("/public/login?reauth=mfa", "/public/login/otp/send", &[]).await;
    assert_eq!(r.location(), "/public/login/otp?sent=1");
    let code = last_code(&app, "13800000001").await;

    // Five wrong tries spend the code and, counted like wrong passwords, lock the account.
    let wrong = if code == "000000" { "000001" } else { "000000" };
    for _ in 0..4 {
        assert_eq!(
            c.post_form("/public/login/otp", "/public/login/otp", &[("code", wrong)]).await.status,
            StatusCode::UNPROCESSABLE_ENTITY
        );
    }
    assert_eq!(c.post_form("/public/login/otp", "/public/login/otp", &[("code", wrong)]).await.status, StatusCode::TOO_MANY_REQUESTS);
    app.sql("UPDATE public_accounts SET locked_until = NULL, failed_logins = 0").await;
    let r = c.post_form("/public/login/otp", "/public/login/otp", &[("code", &code)]).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "the right code is dead after five wrong ones");
    assert!(app.audit_count("public.login", "failure").await >= 5);

    // A new code (a minute later) steps the same session up; the system gets its code.
    app.sql("UPDATE login_codes SET created_at = created_at - 61000").await;
    assert_eq!(c.post_form("/public/login/otp", "/public/login/otp/send", &[]).await.location(), "/public/login/otp?sent=1");
    let code = last_code(&app, "13800000001").await;
    let sessions = app.scalar("SELECT COUNT(*) FROM public_sessions").await;
    assert_eq!(c.post_form("/public/login/otp", "/public/login/otp", &[("code", &code)]).await.location(), "/public");
    assert_eq!(app.scalar("SELECT COUNT(*) FROM public_sessions").await, sessions, "stepped up in place");
    let r = c.get(&url).await;
    assert!(r.location().starts_with("http://127.0.0.1:9103/callback?code="), "{}", r.location());
}
