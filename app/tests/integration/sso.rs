//! Single sign-on (统一身份认证): the OpenID Connect provider end to end through HTTP — discovery,
//! authorization code with PKCE, ID token checked against the JWKS, userinfo, refresh rotation and
//! reuse detection, client credentials, introspection, revocation, logout — and the refusals the
//! specifications ask for, each leaving nothing behind.

use axum::http::{Method, StatusCode};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use serde_json::Value;

use crate::support::{Client, TestApp};

const ISSUER: &str = "http://127.0.0.1:8080/realms/staff";
const OA_SECRET: &str = tongban_oidc::demo::LEGACY_OA_SECRET;
const OA_REDIRECT: &str = "http://127.0.0.1:9101/callback";
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

fn basic(id: &str, secret: &str) -> String {
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}")))
}

fn authorize_url(client: &str, redirect: &str, scope: &str, extra: &str) -> String {
    let q = serde_urlencoded::to_string([
        ("response_type", "code"),
        ("client_id", client),
        ("redirect_uri", redirect),
        ("scope", scope),
        ("state", "st-1"),
        ("nonce", "n-1"),
    ])
    .unwrap_or_default();
    format!("/realms/staff/authorize?{q}{extra}")
}

/// Where a continue page (the answer to a form on the way to a relying party) leads.
fn continued(r: &crate::support::Resp) -> String {
    assert_eq!(r.status, StatusCode::OK, "a continue page: {}", r.body);
    let marker = "id=\"continue\" href=\"";
    let start = r.body.find(marker).map(|i| i + marker.len()).unwrap_or_else(|| panic!("no continue link: {}", r.body));
    let end = r.body[start..].find('"').map(|e| start + e).unwrap_or(start);
    r.body[start..end]
        .replace("&#38;", "&")
        .replace("&amp;", "&")
        .replace("&#x2f;", "/")
        .replace("&#47;", "/")
        .replace("&#x3d;", "=")
        .replace("&#61;", "=")
}

fn query_of(location: &str) -> std::collections::HashMap<String, String> {
    let q = location.split_once('?').map(|(_, q)| q).unwrap_or("");
    serde_urlencoded::from_str::<Vec<(String, String)>>(q).unwrap_or_default().into_iter().collect()
}

async fn token(c: &mut Client, auth: Option<&str>, form: &[(&str, &str)]) -> crate::support::Resp {
    let body = serde_urlencoded::to_string(form).unwrap_or_default();
    let mut headers = vec![("content-type", "application/x-www-form-urlencoded")];
    if let Some(a) = auth {
        headers.push(("authorization", a));
    }
    c.request(Method::POST, "/realms/staff/token", &headers, &body).await
}

/// The JWT's payload, unverified (verification is the provider's and the RP's job; here we read).
fn payload(jwt: &str) -> Value {
    let part = jwt.split('.').nth(1).unwrap_or("");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap_or_default()).unwrap_or(Value::Null)
}

fn header(jwt: &str) -> Value {
    let part = jwt.split('.').next().unwrap_or("");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap_or_default()).unwrap_or(Value::Null)
}

/// Verifies an ES256 JWT against the published JWKS, as a relying party would.
async fn verify_against_jwks(c: &mut Client, jwt: &str) -> bool {
    use p256::ecdsa::{Signature, VerifyingKey, signature::Verifier};
    let jwks = c.get("/realms/staff/jwks").await.json();
    let kid = header(jwt)["kid"].clone();
    let Some(key) = jwks["keys"].as_array().and_then(|k| k.iter().find(|k| k["kid"] == kid)).cloned() else { return false };
    let coord = |n: &str| URL_SAFE_NO_PAD.decode(key[n].as_str().unwrap_or("")).unwrap_or_default();
    let mut sec1 = vec![4u8];
    sec1.extend(coord("x"));
    sec1.extend(coord("y"));
    let Ok(vk) = VerifyingKey::from_sec1_bytes(&sec1) else { return false };
    let (signed, sig) = jwt.rsplit_once('.').unwrap_or(("", ""));
    let Ok(sig) = Signature::from_slice(&URL_SAFE_NO_PAD.decode(sig).unwrap_or_default()) else { return false };
    vk.verify(signed.as_bytes(), &sig).is_ok()
}

/// Logs zhoujun in, runs the authorization request and answers the code.
async fn code_for(app: &TestApp, url: &str) -> (Client, String) {
    let mut c = app.staff("zhoujun").await;
    let r = c.get(url).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let q = query_of(r.location());
    assert!(r.location().starts_with(OA_REDIRECT) || r.location().starts_with("http://127.0.0.1:9102/callback"), "{}", r.location());
    assert_eq!((q.get("state").map(String::as_str), q.get("iss").map(String::as_str)), (Some("st-1"), Some(ISSUER)));
    (c, q.get("code").cloned().unwrap_or_else(|| panic!("no code: {}", r.location())))
}

#[tokio::test]
async fn a_staff_member_signs_in_to_the_legacy_oa_and_the_tokens_work() {
    let app = TestApp::demo().await;
    let mut anon = app.client();
    let d = anon.get("/realms/staff/.well-known/openid-configuration").await.json();
    assert_eq!(d["issuer"], ISSUER);
    assert_eq!(d["token_endpoint"], format!("{ISSUER}/token"));
    assert_eq!(d["code_challenge_methods_supported"], serde_json::json!(["S256"]));

    // Not logged in: to the staff log-in page, then back to the request.
    let url = authorize_url(
        "legacy-oa",
        OA_REDIRECT,
        "openid profile email unit roles offline_access",
        &format!("&code_challenge={CHALLENGE}&code_challenge_method=S256"),
    );
    let mut browser = app.client();
    let r = browser.get(&url).await;
    assert_eq!(r.location(), "/login");
    let r = browser.login("zhoujun", crate::support::DEMO_PASSWORD).await;
    assert_eq!(r.location(), "/workbench");
    let r = browser.get("/workbench").await;
    assert_eq!(continued(&r), url, "the log-in continues the authorization request");
    let r = browser.get(&url).await;
    let code = query_of(r.location()).get("code").cloned().unwrap_or_default();
    assert!(!code.is_empty(), "first-party client: no consent screen: {}", r.location());

    let mut oa = app.client();
    let r = token(
        &mut oa,
        Some(&basic("legacy-oa", OA_SECRET)),
        &[("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", OA_REDIRECT), ("code_verifier", VERIFIER)],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.headers.get("cache-control").and_then(|v| v.to_str().ok()), Some("no-store"));
    let t = r.json();
    let id_token = t["id_token"].as_str().unwrap_or_default().to_string();
    let claims = payload(&id_token);
    assert_eq!((claims["iss"].as_str(), claims["aud"].as_str(), claims["nonce"].as_str()), (Some(ISSUER), Some("legacy-oa"), Some("n-1")));
    assert_eq!(claims["sub"], app.user_id("zhoujun").await.to_string());
    assert_eq!(claims["unit"], "自然资源局");
    assert_eq!(header(&id_token)["alg"], "ES256");
    assert!(verify_against_jwks(&mut oa, &id_token).await, "the ID token verifies against the JWKS");

    let access = t["access_token"].as_str().unwrap_or_default().to_string();
    let bearer = format!("Bearer {access}");
    let r = oa.request(Method::GET, "/realms/staff/userinfo", &[("authorization", &bearer)], "").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!((r.json()["name"].as_str(), r.json()["unit"].as_str()), (Some("周军"), Some("自然资源局")));
    let r = oa.request(Method::GET, "/realms/staff/userinfo", &[("authorization", &format!("Bearer {id_token}"))], "").await;
    assert_eq!((r.status, r.json()["error"].as_str()), (StatusCode::UNAUTHORIZED, Some("invalid_token")), "an ID token is no access token");

    // The code works once; its second use revokes what it gave.
    let r = token(
        &mut oa,
        Some(&basic("legacy-oa", OA_SECRET)),
        &[("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", OA_REDIRECT), ("code_verifier", VERIFIER)],
    )
    .await;
    assert_eq!((r.status, r.json()["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_grant")));
    let refresh = t["refresh_token"].as_str().unwrap_or_default();
    let r = token(&mut oa, Some(&basic("legacy-oa", OA_SECRET)), &[("grant_type", "refresh_token"), ("refresh_token", refresh)]).await;
    assert_eq!(r.json()["error"], "invalid_grant", "the replayed code took its refresh token with it");
    assert_eq!(app.audit_count("oidc.code.reuse", "failure").await, 1);
}

#[tokio::test]
async fn refresh_tokens_rotate_and_a_reused_one_revokes_the_family() {
    let app = TestApp::demo().await;
    let (_browser, code) = code_for(&app, &authorize_url("legacy-oa", OA_REDIRECT, "openid profile", "")).await;
    let mut oa = app.client();
    let auth = basic("legacy-oa", OA_SECRET);
    let t =
        token(&mut oa, Some(&auth), &[("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", OA_REDIRECT)]).await.json();
    let first = t["refresh_token"].as_str().unwrap_or_default().to_string();
    let r = token(&mut oa, Some(&auth), &[("grant_type", "refresh_token"), ("refresh_token", &first)]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let second = r.json()["refresh_token"].as_str().unwrap_or_default().to_string();
    assert_ne!(first, second, "rotated");
    let r = token(&mut oa, Some(&auth), &[("grant_type", "refresh_token"), ("refresh_token", &second), ("scope", "openid profile email")])
        .await;
    assert_eq!(r.json()["error"], "invalid_scope", "a refresh cannot widen the scope");
    let r = token(&mut oa, Some(&auth), &[("grant_type", "refresh_token"), ("refresh_token", &first)]).await;
    assert_eq!(r.json()["error"], "invalid_grant", "the rotated token is dead");
    let r = token(&mut oa, Some(&auth), &[("grant_type", "refresh_token"), ("refresh_token", &second)]).await;
    assert_eq!(r.json()["error"], "invalid_grant", "…and its reuse killed the whole family");
    assert_eq!(app.audit_count("oidc.token.reuse", "failure").await, 1);
}

#[tokio::test]
async fn public_clients_need_pkce_and_the_user_consents() {
    let app = TestApp::demo().await;
    let redirect = "http://127.0.0.1:9102/callback";
    let mut c = app.staff("xuhui").await;
    let r = c.get(&authorize_url("hotline-12345", redirect, "openid profile", "")).await;
    assert_eq!(query_of(r.location()).get("error").map(String::as_str), Some("invalid_request"), "no PKCE: {}", r.location());
    let r = c
        .get(&authorize_url(
            "hotline-12345",
            redirect,
            "openid profile",
            &format!("&code_challenge={CHALLENGE}&code_challenge_method=plain"),
        ))
        .await;
    assert_eq!(query_of(r.location()).get("error").map(String::as_str), Some("invalid_request"), "plain is refused");
    let url = authorize_url(
        "hotline-12345",
        redirect,
        "openid profile phone",
        &format!("&code_challenge={CHALLENGE}&code_challenge_method=S256"),
    );
    let r = c.get(&url).await;
    assert_eq!(r.status, StatusCode::OK, "the consent screen: {}", r.body);
    assert!(r.body.contains("12345政务服务便民热线系统") && r.body.contains("手机号码"));
    let r = c.get(&format!("{url}&prompt=none")).await;
    assert_eq!(query_of(r.location()).get("error").map(String::as_str), Some("consent_required"));
    let r = c.get(&format!("{url}&prompt=login")).await;
    assert_eq!(r.location(), "/login?reauth=fresh", "no silent reuse of the session: the user confirms with a log-in");
    let csrf = c.csrf(&url).await;
    let mut fields: Vec<(&str, &str)> = vec![
        ("_csrf", &csrf),
        ("decision", "deny"),
        ("response_type", "code"),
        ("client_id", "hotline-12345"),
        ("redirect_uri", redirect),
        ("scope", "openid profile phone"),
        ("state", "st-1"),
        ("code_challenge", CHALLENGE),
        ("code_challenge_method", "S256"),
    ];
    let r = c.post_raw_form("/realms/staff/authorize", &fields).await;
    assert_eq!(query_of(&continued(&r)).get("error").map(String::as_str), Some("access_denied"));
    fields[1] = ("decision", "allow");
    let r = c.post_raw_form("/realms/staff/authorize", &fields).await;
    let code = query_of(&continued(&r)).get("code").cloned().unwrap_or_else(|| panic!("{}", r.body));
    assert_eq!(app.audit_count("oidc.consent", "success").await, 1);
    let r = c.get(&url).await;
    assert!(r.location().contains("code="), "consent is remembered");

    let mut spa = app.client();
    let wrong = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXl";
    let r = token(
        &mut spa,
        None,
        &[
            ("grant_type", "authorization_code"),
            ("client_id", "hotline-12345"),
            ("code", &code),
            ("redirect_uri", redirect),
            ("code_verifier", wrong),
        ],
    )
    .await;
    assert_eq!(r.json()["error"], "invalid_grant", "PKCE mismatch");
    let r = token(
        &mut spa,
        None,
        &[
            ("grant_type", "authorization_code"),
            ("client_id", "hotline-12345"),
            ("code", &code),
            ("redirect_uri", redirect),
            ("code_verifier", VERIFIER),
        ],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
}

#[tokio::test]
async fn bad_requests_get_the_oauth_error_and_change_nothing() {
    let app = TestApp::demo().await;
    let mut c = app.staff("zhoujun").await;
    let r = c.get(&authorize_url("legacy-oa", "http://127.0.0.1:9101/other", "openid", "")).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "an unregistered redirect_uri is never redirected to");
    assert!(r.body.contains("redirect_uri"));
    let r = c.get(&authorize_url("no-such-client", OA_REDIRECT, "openid", "")).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = c.get(&authorize_url("legacy-oa", OA_REDIRECT, "profile", "")).await;
    assert_eq!(query_of(r.location()).get("error").map(String::as_str), Some("invalid_scope"), "openid is required");
    let r = c.get(&authorize_url("legacy-oa", OA_REDIRECT, "openid admin", "")).await;
    assert_eq!(query_of(r.location()).get("error").map(String::as_str), Some("invalid_scope"));
    let r = c.get(&authorize_url("legacy-oa", OA_REDIRECT, "openid", "").replace("response_type=code", "response_type=token")).await;
    assert_eq!(query_of(r.location()).get("error").map(String::as_str), Some("unsupported_response_type"), "{}", r.location());
    let r = c.get(&authorize_url("legacy-oa", OA_REDIRECT, "openid", "&response_type=token")).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "a repeated parameter makes the request untrustworthy");
    let long = "x".repeat(3000);
    let r = c.get(&authorize_url("legacy-oa", OA_REDIRECT, "openid", "").replace("nonce=n-1", &format!("nonce={long}"))).await;
    assert!(r.location().contains("error=invalid_request"), "oversized parameters are refused");
    assert_eq!(app.scalar("SELECT COUNT(*) FROM oidc_codes").await, 0, "no code for any of them");

    let (_b, code) = code_for(&app, &authorize_url("legacy-oa", OA_REDIRECT, "openid", "")).await;
    let mut oa = app.client();
    let r = token(
        &mut oa,
        Some(&basic("legacy-oa", "wrong")),
        &[("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", OA_REDIRECT)],
    )
    .await;
    assert_eq!((r.status, r.json()["error"].as_str()), (StatusCode::UNAUTHORIZED, Some("invalid_client")));
    assert!(r.headers.get("www-authenticate").is_some());
    let r = token(
        &mut oa,
        Some(&basic("legacy-oa", OA_SECRET)),
        &[("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", "http://127.0.0.1:9101/x")],
    )
    .await;
    assert_eq!(r.json()["error"], "invalid_grant", "redirect_uri must match");
    let r = token(&mut oa, Some(&basic("legacy-oa", OA_SECRET)), &[("grant_type", "password"), ("username", "x")]).await;
    assert_eq!(r.json()["error"], "unsupported_grant_type");
    app.sql("UPDATE oidc_codes SET expires_at = 0").await;
    let r = token(
        &mut oa,
        Some(&basic("legacy-oa", OA_SECRET)),
        &[("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", OA_REDIRECT)],
    )
    .await;
    assert_eq!(r.json()["error"], "invalid_grant", "expired");
    assert_eq!(app.scalar("SELECT COUNT(*) FROM oidc_refresh_tokens").await, 0, "nothing issued");

    // Forged tokens at userinfo: alg none, a flipped signature byte.
    let none = format!("{}.{}.", URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"at+jwt"}"#), URL_SAFE_NO_PAD.encode(format!(r#"{{"iss":"{ISSUER}","sub":"1","aud":"legacy-oa","exp":9999999999,"iat":1,"jti":"x","client_id":"legacy-oa","scope":"openid"}}"#)));
    let r = oa.request(Method::GET, "/realms/staff/userinfo", &[("authorization", &format!("Bearer {none}"))], "").await;
    assert_eq!(r.json()["error"], "invalid_token", "alg none");
    let r = oa.request(Method::GET, "/realms/staff/userinfo", &[], "").await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn systems_use_client_credentials_and_tokens_are_introspected_and_revoked() {
    let app = TestApp::demo().await;
    let mut ex = app.client();
    let auth = basic("data-exchange", tongban_oidc::demo::EXCHANGE_SECRET);
    let r = token(&mut ex, Some(&auth), &[("grant_type", "client_credentials"), ("scope", "unit")]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let access = r.json()["access_token"].as_str().unwrap_or_default().to_string();
    assert_eq!(payload(&access)["sub"], "data-exchange");
    assert!(r.json().get("refresh_token").is_none() && r.json().get("id_token").is_none());
    let r = token(&mut ex, Some(&auth), &[("grant_type", "client_credentials"), ("scope", "email")]).await;
    assert_eq!(r.json()["error"], "invalid_scope");
    let r = token(&mut ex, Some(&basic("legacy-oa", OA_SECRET)), &[("grant_type", "client_credentials")]).await;
    assert_eq!(r.json()["error"], "unauthorized_client", "not every client may");

    let form = |t: &str| serde_urlencoded::to_string([("token", t)]).unwrap_or_default();
    let ct = ("content-type", "application/x-www-form-urlencoded");
    let r = ex.request(Method::POST, "/realms/staff/introspect", &[ct, ("authorization", &auth)], &form(&access)).await;
    assert_eq!((r.json()["active"].as_bool(), r.json()["client_id"].as_str()), (Some(true), Some("data-exchange")), "{}", r.body);
    let r = ex.request(Method::POST, "/realms/staff/introspect", &[ct], &form(&access)).await;
    assert_eq!(r.json()["error"], "invalid_client", "introspection needs client authentication");
    let r = ex.request(Method::POST, "/realms/staff/revoke", &[ct, ("authorization", &auth)], &form(&access)).await;
    assert_eq!(r.status, StatusCode::OK);
    let r = ex.request(Method::POST, "/realms/staff/introspect", &[ct, ("authorization", &auth)], &form(&access)).await;
    assert_eq!(r.json()["active"], false, "revoked");
    let r = ex.request(Method::POST, "/realms/staff/revoke", &[ct, ("authorization", &auth)], &form("unknown-token")).await;
    assert_eq!(r.status, StatusCode::OK, "unknown tokens answer the same (RFC 7009)");
    assert_eq!(app.audit_count("oidc.token.client_credentials", "success").await, 1);
    assert_eq!(app.audit_count("oidc.token.revoke", "success").await, 1);
}

#[tokio::test]
async fn citizens_never_get_staff_tokens_and_logout_ends_the_grants() {
    let app = TestApp::demo().await;
    // A citizen's session does not count in the staff realm.
    let mut citizen = app.client();
    let fields = [
        ("kind", "person"),
        ("name", "李秀英"),
        ("cert_no", "11010519491231002X"),
        ("phone", "13900000061"),
        ("email", ""),
        ("password", "Citizen#2026"),
        ("password_again", "Citizen#2026"),
    ];
    let r = citizen.post_form("/public/register", "/public/register", &fields).await;
    assert_eq!(r.location(), "/public?done=registered", "{}", r.body);
    let r = citizen.get(&authorize_url("legacy-oa", OA_REDIRECT, "openid", "")).await;
    assert_eq!(r.location(), "/login", "the staff log-in is asked for");
    let r = citizen.get("/realms/public/authorize?response_type=code&client_id=legacy-oa&redirect_uri=http%3A%2F%2F127.0.0.1%3A9101%2Fcallback&scope=openid").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "staff clients do not exist in the public realm");
    let url = format!(
        "/realms/public/authorize?response_type=code&client_id=citizen-app&redirect_uri=http%3A%2F%2F127.0.0.1%3A9103%2Fcallback&scope=openid%20profile&code_challenge={CHALLENGE}&code_challenge_method=S256"
    );
    let r = citizen.get(&url).await;
    assert!(r.location().starts_with("http://127.0.0.1:9103/callback?code="), "{}", r.location());
    assert!(r.location().contains("realms%2Fpublic"), "the public issuer answers");

    // Logout: the OA's refresh token (no offline_access) dies with the session.
    let (mut browser, code) = code_for(&app, &authorize_url("legacy-oa", OA_REDIRECT, "openid profile", "")).await;
    let mut oa = app.client();
    let auth = basic("legacy-oa", OA_SECRET);
    let t =
        token(&mut oa, Some(&auth), &[("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", OA_REDIRECT)]).await.json();
    let hint = t["id_token"].as_str().unwrap_or_default();
    let q = serde_urlencoded::to_string([("id_token_hint", hint), ("post_logout_redirect_uri", "http://evil.example/"), ("state", "bye")])
        .unwrap_or_default();
    let r = browser.get(&format!("/realms/staff/logout?{q}")).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "unregistered post-logout URI");
    let q =
        serde_urlencoded::to_string([("id_token_hint", hint), ("post_logout_redirect_uri", "http://127.0.0.1:9101/"), ("state", "bye")])
            .unwrap_or_default();
    let r = browser.get(&format!("/realms/staff/logout?{q}")).await;
    assert_eq!(r.location(), "http://127.0.0.1:9101/?state=bye");
    assert_eq!(browser.get("/workbench").await.location(), "/login", "logged out of tongban too");
    let r =
        token(&mut oa, Some(&auth), &[("grant_type", "refresh_token"), ("refresh_token", t["refresh_token"].as_str().unwrap_or_default())])
            .await;
    assert_eq!(r.json()["error"], "invalid_grant", "the session's grants ended");
    assert_eq!(app.audit_count("oidc.logout", "success").await, 1);
}

#[tokio::test]
async fn the_system_administrator_registers_rotates_and_disables_a_client() {
    let app = TestApp::demo().await;
    let mut staff = app.staff("zhoujun").await;
    assert_eq!(staff.get("/admin/clients").await.status, StatusCode::FORBIDDEN, "config.write only");
    let mut sys = app.admin("sysadmin").await;
    let r = sys.get("/admin/clients").await;
    assert!(r.body.contains("legacy-oa") && r.body.contains("hotline-12345"), "the demo systems are listed");
    let fields = [
        ("realm", "staff"),
        ("client_id", "archives"),
        ("name", "档案管理系统"),
        ("confidential", "on"),
        ("redirect_uris", "http://oa.example/cb"),
        ("scopes", "openid"),
        ("grants", "client_credentials"),
        ("id_token_alg", "ES256"),
        ("access_ttl", "600"),
        ("refresh_ttl", "86400"),
    ];
    let r = sys.post_form("/admin/clients/new", "/admin/clients", &fields).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "plain http off the loopback");
    assert!(r.body.contains("aria-invalid=\"true\"") && r.body.contains("https"), "{}", r.body);
    assert_eq!(app.scalar("SELECT COUNT(*) FROM oidc_clients WHERE client_id = 'archives'").await, 0);
    let mut ok = fields.to_vec();
    ok[4] = ("redirect_uris", "https://archives.jiahe.gov.cn/cb");
    let r = sys.post_form("/admin/clients/new", "/admin/clients", &ok).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let secret = r.element_text("client-secret");
    assert_eq!(secret.len(), 43, "shown once");

    let mut archives = app.client();
    let cc = [("grant_type", "client_credentials")];
    assert_eq!(token(&mut archives, Some(&basic("archives", &secret)), &cc).await.status, StatusCode::OK);
    let id = app.scalar("SELECT id FROM oidc_clients WHERE client_id = 'archives'").await;
    let r = sys.post_form(&format!("/admin/clients/{id}"), &format!("/admin/clients/{id}/rotate-secret"), &[]).await;
    let fresh = r.element_text("client-secret");
    assert_ne!(fresh, secret);
    assert_eq!(
        token(&mut archives, Some(&basic("archives", &secret)), &cc).await.json()["error"],
        "invalid_client",
        "the old secret is gone"
    );
    assert_eq!(token(&mut archives, Some(&basic("archives", &fresh)), &cc).await.status, StatusCode::OK);
    let r = sys.post_form(&format!("/admin/clients/{id}"), &format!("/admin/clients/{id}/disable"), &[]).await;
    assert_eq!(r.location(), "/admin/clients?done=client_saved");
    assert_eq!(token(&mut archives, Some(&basic("archives", &fresh)), &cc).await.json()["error"], "invalid_client", "disabled");
    assert_eq!(app.audit_count("oidc.client.create", "success").await, 5, "four demo systems and this one");
    assert_eq!(app.audit_count("oidc.client.rotate_secret", "success").await, 1);
    assert_eq!(app.audit_count("oidc.client.disable", "success").await, 1);
    assert!(app.audit_count("oidc.client.list", "denied").await >= 1, "the refused look is recorded");
}

/// A relying party's back-channel logout endpoint: records the form bodies it receives.
async fn backchannel_receiver() -> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let store = seen.clone();
    let app = axum::Router::new().route(
        "/backchannel",
        axum::routing::post(move |body: String| {
            let store = store.clone();
            async move {
                if let Ok(mut s) = store.lock() {
                    s.push(body);
                }
                StatusCode::OK
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}/backchannel"), seen)
}

#[tokio::test]
async fn logging_out_tells_every_system_the_session_reached_over_the_back_channel() {
    let app = TestApp::demo().await;
    let (uri, seen) = backchannel_receiver().await;
    app.sql(&format!("UPDATE oidc_clients SET backchannel_logout_uri = '{uri}' WHERE client_id = 'legacy-oa'")).await;
    let d = app.client().get("/realms/staff/.well-known/openid-configuration").await.json();
    assert_eq!(d["backchannel_logout_supported"], true);
    let (mut browser, code) = code_for(&app, &authorize_url("legacy-oa", OA_REDIRECT, "openid", "")).await;
    let mut oa = app.client();
    let t = token(
        &mut oa,
        Some(&basic("legacy-oa", OA_SECRET)),
        &[("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", OA_REDIRECT)],
    )
    .await
    .json();
    let sid = payload(t["id_token"].as_str().unwrap_or_default())["sid"].clone();
    let r = browser.post_form("/workbench", "/logout", &[]).await;
    assert_eq!(r.location(), "/login");
    let runner = tongban::boot::job_runner(&app.opened);
    for _ in 0..5 {
        if runner.run_once().await.expect("job") == tongban_platform::jobs::RunOutcome::Idle {
            break;
        }
    }
    let bodies = seen.lock().map(|s| s.clone()).unwrap_or_default();
    assert_eq!(bodies.len(), 1, "one logout token for the one system reached: {bodies:?}");
    let form: std::collections::HashMap<String, String> = serde_urlencoded::from_str(&bodies[0]).unwrap_or_default();
    let jwt = form.get("logout_token").cloned().unwrap_or_default();
    assert_eq!(header(&jwt)["typ"], "logout+jwt");
    let claims = payload(&jwt);
    assert_eq!((claims["sid"].clone(), claims["aud"].as_str(), claims["iss"].as_str()), (sid, Some("legacy-oa"), Some(ISSUER)));
    assert_eq!(claims["sub"], app.user_id("zhoujun").await.to_string());
    assert!(claims["events"].get("http://schemas.openid.net/event/backchannel-logout").is_some() && claims.get("nonce").is_none());
    assert!(verify_against_jwks(&mut oa, &jwt).await, "signed with the realm's published key");
}

#[tokio::test]
async fn concurrent_token_requests_each_get_a_committed_audit_record_in_one_unbroken_chain() {
    let app = TestApp::demo().await;
    let auth = basic("data-exchange", tongban_oidc::demo::EXCHANGE_SECRET);
    let mut tasks = Vec::new();
    for _ in 0..40 {
        let mut c = app.client();
        let auth = auth.clone();
        tasks.push(tokio::spawn(async move {
            token(&mut c, Some(&auth), &[("grant_type", "client_credentials"), ("scope", "unit")]).await.status
        }));
    }
    for t in tasks {
        assert_eq!(t.await.expect("task"), StatusCode::OK);
    }
    assert_eq!(app.audit_count("oidc.token.client_credentials", "success").await, 40, "one record per token, none lost");
    assert!(app.opened.audit.verify(&app.opened.db).await.expect("verify").ok(), "records written in shared transactions keep the chain");
}

#[tokio::test]
async fn users_see_and_withdraw_the_systems_they_let_in() {
    let app = TestApp::demo().await;
    let (mut me, code) = code_for(&app, &authorize_url("legacy-oa", OA_REDIRECT, "openid profile", "")).await;
    let mut oa = app.client();
    let auth = basic("legacy-oa", OA_SECRET);
    let t =
        token(&mut oa, Some(&auth), &[("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", OA_REDIRECT)]).await.json();
    let r = me.get("/me/sessions").await;
    assert!(r.body.contains("id=\"app-grants\"") && r.body.contains("嘉禾县协同办公系统（旧OA）"), "{}", r.body);
    let mut other = app.staff("xuhui").await;
    assert!(!other.get("/me/sessions").await.body.contains("协同办公系统"), "only one's own grants");
    let r = me.post_form("/me/sessions", "/me/apps/legacy-oa/revoke", &[]).await;
    assert_eq!(r.location(), "/me/sessions?done=app_revoked");
    let r =
        token(&mut oa, Some(&auth), &[("grant_type", "refresh_token"), ("refresh_token", t["refresh_token"].as_str().unwrap_or_default())])
            .await;
    assert_eq!(r.json()["error"], "invalid_grant", "the system lost its refresh token");
    let bearer = format!("Bearer {}", t["access_token"].as_str().unwrap_or_default());
    let r = oa.request(Method::GET, "/realms/staff/userinfo", &[("authorization", &bearer)], "").await;
    assert_eq!((r.status, r.json()["error"].as_str()), (StatusCode::UNAUTHORIZED, Some("invalid_token")), "…and its access token");
    assert!(!me.get("/me/sessions").await.body.contains("协同办公系统"));
    assert_eq!(app.audit_count("oidc.grant.revoke", "success").await, 1);
}

#[tokio::test]
async fn locking_an_account_logs_it_out_of_every_system() {
    let app = TestApp::demo().await;
    let (uri, seen) = backchannel_receiver().await;
    app.sql(&format!("UPDATE oidc_clients SET backchannel_logout_uri = '{uri}' WHERE client_id = 'legacy-oa'")).await;
    let (_browser, code) = code_for(&app, &authorize_url("legacy-oa", OA_REDIRECT, "openid", "")).await;
    let mut oa = app.client();
    let auth = basic("legacy-oa", OA_SECRET);
    let t =
        token(&mut oa, Some(&auth), &[("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", OA_REDIRECT)]).await.json();
    let mut sys = app.admin("sysadmin").await;
    let id = app.user_id("zhoujun").await;
    let r = sys.post_form(&format!("/admin/users/{id}"), &format!("/admin/users/{id}/lock"), &[]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let runner = tongban::boot::job_runner(&app.opened);
    for _ in 0..5 {
        if runner.run_once().await.expect("job") == tongban_platform::jobs::RunOutcome::Idle {
            break;
        }
    }
    assert_eq!(seen.lock().map(|s| s.len()).unwrap_or(0), 1, "the OA was told over the back channel");
    let r =
        token(&mut oa, Some(&auth), &[("grant_type", "refresh_token"), ("refresh_token", t["refresh_token"].as_str().unwrap_or_default())])
            .await;
    assert_eq!(r.json()["error"], "invalid_grant");
    let r = sys.post_form(&format!("/admin/users/{id}"), &format!("/admin/users/{id}/unlock"), &[]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(app.scalar("SELECT COUNT(*) FROM jobs WHERE kind = 'oidc.backchannel'").await, 1, "told once, not again on the next action");
}

#[tokio::test]
async fn browser_clients_may_call_the_token_endpoint_from_their_own_origin_only() {
    let app = TestApp::demo().await;
    let mut c = app.client();
    let pre = |origin: &'static str| [("origin", origin), ("access-control-request-method", "POST")];
    let r = c.request(Method::OPTIONS, "/realms/staff/token", &pre("http://127.0.0.1:9102"), "").await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(
        r.headers.get("access-control-allow-origin").and_then(|v| v.to_str().ok()),
        Some("http://127.0.0.1:9102"),
        "the 12345 system's origin"
    );
    let r = c.request(Method::OPTIONS, "/realms/staff/token", &pre("http://127.0.0.1:9101"), "").await;
    assert!(r.headers.get("access-control-allow-origin").is_none(), "a confidential client's origin is not a browser client");
    let r = c.request(Method::OPTIONS, "/realms/staff/token", &pre("https://evil.example"), "").await;
    assert!(r.headers.get("access-control-allow-origin").is_none());
    let form = "grant_type=refresh_token&client_id=hotline-12345&refresh_token=x";
    let r = c
        .request(
            Method::POST,
            "/realms/staff/token",
            &[("origin", "http://127.0.0.1:9102"), ("content-type", "application/x-www-form-urlencoded")],
            form,
        )
        .await;
    assert_eq!(r.json()["error"], "invalid_grant");
    assert_eq!(
        r.headers.get("access-control-allow-origin").and_then(|v| v.to_str().ok()),
        Some("http://127.0.0.1:9102"),
        "errors are readable too"
    );
}

#[tokio::test]
async fn an_administrator_ends_a_users_sessions_everywhere() {
    let app = TestApp::demo().await;
    let (uri, seen) = backchannel_receiver().await;
    app.sql(&format!("UPDATE oidc_clients SET backchannel_logout_uri = '{uri}' WHERE client_id = 'legacy-oa'")).await;
    let (mut browser, _code) = code_for(&app, &authorize_url("legacy-oa", OA_REDIRECT, "openid", "")).await;
    let id = app.user_id("zhoujun").await;
    // Only someone who may write the account can; not the account itself.
    let mut peer = app.staff("xuhui").await;
    let r = peer.post_form("/me/sessions", &format!("/admin/users/{id}/end-sessions"), &[]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let mut sys = app.admin("sysadmin").await;
    let r = sys.post_form(&format!("/admin/users/{id}"), &format!("/admin/users/{id}/end-sessions"), &[]).await;
    assert_eq!(r.location(), format!("/admin/users/{id}?done=sessions_ended"));
    assert_eq!(browser.get("/workbench").await.location(), "/login", "the browser is logged out");
    let runner = tongban::boot::job_runner(&app.opened);
    for _ in 0..5 {
        if runner.run_once().await.expect("job") == tongban_platform::jobs::RunOutcome::Idle {
            break;
        }
    }
    assert_eq!(seen.lock().map(|s| s.len()).unwrap_or(0), 1, "the OA was told over the back channel");
    assert_eq!(app.audit_count("user.sessions.end", "success").await, 1);
}

#[tokio::test]
async fn guessing_client_secrets_gets_an_address_refused() {
    let app = TestApp::demo().await;
    let mut guesser = app.client();
    guesser.ip = "203.0.113.66".into();
    let form = [("grant_type", "client_credentials")];
    for i in 0..tongban_oidc::throttle::MAX_FAILURES {
        let r = token(&mut guesser, Some(&basic("data-exchange", &format!("guess-{i}"))), &form).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    }
    // Blocked now: even the right secret is refused from there, before it is compared.
    let good = basic("data-exchange", tongban_oidc::demo::EXCHANGE_SECRET);
    let r = token(&mut guesser, Some(&good), &form).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(r.json()["error"], "invalid_client");
    assert_eq!(r.headers.get("retry-after").and_then(|v| v.to_str().ok()), Some("900"));
    let r = guesser
        .request(
            Method::POST,
            "/realms/staff/introspect",
            &[("content-type", "application/x-www-form-urlencoded"), ("authorization", &good)],
            "token=x",
        )
        .await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "introspection too");
    // Another address is not affected; every failure is on record.
    let mut system = app.client();
    assert_eq!(token(&mut system, Some(&good), &form).await.status, StatusCode::OK);
    let failures = app.scalar("SELECT COUNT(*) FROM audit_log WHERE action = 'oidc.client.authenticate' AND result = 'failure'").await;
    assert_eq!(failures, i64::from(tongban_oidc::throttle::MAX_FAILURES));
}

/// Attack test (issue 13, finding 16): a client replays an authorization code. The access token
/// issued from the first use stops working too (RFC 6749 §4.1.2): userinfo refuses it and
/// introspection calls it inactive. Userinfo also takes the token the ways RFC 6750 allows:
/// a lower-case `bearer` scheme and a form body (what pyoidc sends).
#[tokio::test]
async fn a_replayed_code_revokes_the_access_token_it_gave_and_userinfo_takes_every_bearer_form() {
    let app = TestApp::demo().await;
    let url = authorize_url("legacy-oa", OA_REDIRECT, "openid profile", &format!("&code_challenge={CHALLENGE}&code_challenge_method=S256"));
    let (_browser, code) = code_for(&app, &url).await;
    let mut oa = app.client();
    let auth = basic("legacy-oa", OA_SECRET);
    let exchange = [("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", OA_REDIRECT), ("code_verifier", VERIFIER)];
    let r = token(&mut oa, Some(&auth), &exchange).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let access = r.json()["access_token"].as_str().unwrap_or_default().to_string();
    let ct = ("content-type", "application/x-www-form-urlencoded");
    let body = serde_urlencoded::to_string([("access_token", access.as_str())]).unwrap_or_default();

    // Every way of presenting the token works while it is live.
    for scheme in ["Bearer", "bearer", "BEARER"] {
        let r = oa.request(Method::GET, "/realms/staff/userinfo", &[("authorization", &format!("{scheme} {access}"))], "").await;
        assert_eq!((r.status, r.json()["name"].as_str()), (StatusCode::OK, Some("周军")), "{scheme}: {}", r.body);
    }
    let r = oa.request(Method::POST, "/realms/staff/userinfo", &[ct], &body).await;
    assert_eq!((r.status, r.json()["name"].as_str()), (StatusCode::OK, Some("周军")), "form body: {}", r.body);
    let both = format!("Bearer {access}");
    let r = oa.request(Method::POST, "/realms/staff/userinfo", &[ct, ("authorization", &both)], &body).await;
    assert_eq!((r.status, r.json()["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_request")), "one method at a time");
    let introspect = serde_urlencoded::to_string([("token", access.as_str())]).unwrap_or_default();
    let r = oa.request(Method::POST, "/realms/staff/introspect", &[ct, ("authorization", &auth)], &introspect).await;
    assert_eq!(r.json()["active"], true, "{}", r.body);

    // The replay.
    let r = token(&mut oa, Some(&auth), &exchange).await;
    assert_eq!((r.status, r.json()["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_grant")));

    for scheme in ["Bearer", "bearer"] {
        let r = oa.request(Method::GET, "/realms/staff/userinfo", &[("authorization", &format!("{scheme} {access}"))], "").await;
        assert_eq!((r.status, r.json()["error"].as_str()), (StatusCode::UNAUTHORIZED, Some("invalid_token")), "{}", r.body);
    }
    let r = oa.request(Method::POST, "/realms/staff/userinfo", &[ct], &body).await;
    assert_eq!((r.status, r.json()["error"].as_str()), (StatusCode::UNAUTHORIZED, Some("invalid_token")), "{}", r.body);
    let r = oa.request(Method::POST, "/realms/staff/introspect", &[ct, ("authorization", &auth)], &introspect).await;
    assert_eq!(r.json(), serde_json::json!({"active": false}), "the replayed code's access token is inactive");
    assert_eq!(app.audit_count("oidc.code.reuse", "failure").await, 1);
}
