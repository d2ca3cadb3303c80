//! Log-in: lock-out and unlock, IP blocking, TOTP enrolment and use, forced password change,
//! CSRF, idle expiry, log-out, API tokens.

use axum::http::{Method, StatusCode};
use serde_json::json;

use crate::support::{DEMO_PASSWORD, TestApp, totp_code};

#[tokio::test]
async fn five_failures_lock_the_account_until_unlocked() {
    let app = TestApp::demo().await;
    let mut c = app.client();
    for _ in 0..4 {
        let r = c.login("huangli", "Wrong#pass1").await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
        assert!(r.body.contains("用户名或密码不正确"), "{}", r.body);
    }
    let r = c.login("huangli", "Wrong#pass1").await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "fifth failure locks");
    let r = c.login("huangli", DEMO_PASSWORD).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "the right password is refused while locked");
    assert!(r.body.contains("已被锁定"));
    assert_eq!(app.audit_count("auth.login", "failure").await, 6);
    assert_eq!(app.audit_count("user.lockout", "success").await, 1);

    // The system administrator unlocks the account from its page.
    let mut admin = app.admin("sysadmin").await;
    let id = app.user_id("huangli").await;
    let page = format!("/admin/users/{id}");
    let r = admin.post_form(&page, &format!("/admin/users/{id}/unlock"), &[]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert_eq!(app.audit_count("user.unlock", "success").await, 1);
    let r = c.login("huangli", DEMO_PASSWORD).await;
    assert_eq!(r.location(), "/workbench");
}

#[tokio::test]
async fn cli_unlock_clears_a_lock_out() {
    let app = TestApp::with(|c| c.security.lockout_threshold = 2, true).await;
    let mut c = app.client();
    c.login("xuhui", "Wrong#pass1").await;
    c.login("xuhui", "Wrong#pass1").await;
    assert_eq!(c.login("xuhui", DEMO_PASSWORD).await.status, StatusCode::TOO_MANY_REQUESTS);
    app.opened.identity.cli_set_locked("xuhui", false).await.unwrap();
    assert_eq!(c.login("xuhui", DEMO_PASSWORD).await.location(), "/workbench");
}

#[tokio::test]
async fn one_source_address_is_blocked_after_many_failures() {
    let app = TestApp::with(|c| c.security.ip_lockout_threshold = 3, true).await;
    let mut attacker = app.client();
    attacker.ip = "203.0.113.9".into();
    for name in ["nobody1", "nobody2", "nobody3"] {
        assert_eq!(attacker.login(name, "Guess#123").await.status, StatusCode::UNAUTHORIZED);
    }
    let r = attacker.login("zhangwei", DEMO_PASSWORD).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "blocked address");
    let mut other = app.client();
    assert_eq!(other.login("zhangwei", DEMO_PASSWORD).await.location(), "/workbench", "other addresses still log in");
}

#[tokio::test]
async fn administrators_must_enrol_totp_and_then_use_it() {
    let app = TestApp::demo().await;
    let mut c = app.client();
    let r = c.login("auditor", DEMO_PASSWORD).await;
    assert_eq!(r.location(), "/login/enrol");
    // Nothing else is reachable before enrolment.
    let r = c.get("/audit").await;
    assert_eq!(r.location(), "/login");
    assert_eq!(c.get("/login").await.location(), "/login/enrol");
    let api = c.get("/api/v1/me").await;
    assert_eq!(api.status, StatusCode::UNAUTHORIZED);
    // A wrong first code is refused.
    let r = c.post_form("/login/enrol", "/login/enrol", &[("totp_code", "000000")]).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let page = c.get("/login/enrol").await;
    let secret = page.element_text("totp-secret");
    let enrol_code = totp_code(&secret, -30);
    let r = c.post_form("/login/enrol", "/login/enrol", &[("totp_code", &enrol_code)]).await;
    let recovery = r.body.split("<li><code>").skip(1).map(|s| s[..14].to_string()).collect::<Vec<_>>();
    assert_eq!(recovery.len(), 10);
    assert_eq!(c.get("/audit").await.status, StatusCode::OK);
    assert_eq!(app.audit_count("auth.totp_enrol", "success").await, 1);

    // Next log-in asks for a code; the one used at enrolment cannot be replayed.
    c.post_form("/workbench", "/logout", &[]).await;
    let r = c.login("auditor", DEMO_PASSWORD).await;
    assert_eq!(r.location(), "/login/totp");
    assert_eq!(c.get("/workbench").await.location(), "/login");
    let r = c.post_form("/login/totp", "/login/totp", &[("totp_code", &enrol_code)]).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "replayed code refused");
    let r = c.post_form("/login/totp", "/login/totp", &[("totp_code", &totp_code(&secret, 0))]).await;
    assert_eq!(r.location(), "/workbench");

    // A recovery code works once.
    c.post_form("/workbench", "/logout", &[]).await;
    c.login("auditor", DEMO_PASSWORD).await;
    let r = c.post_form("/login/totp", "/login/totp", &[("totp_code", &recovery[0])]).await;
    assert_eq!(r.location(), "/workbench");
    c.post_form("/workbench", "/logout", &[]).await;
    c.login("auditor", DEMO_PASSWORD).await;
    let r = c.post_form("/login/totp", "/login/totp", &[("totp_code", &recovery[0])]).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "used recovery code refused");
    assert!(app.audit_count("auth.login", "failure").await >= 2);
}

#[tokio::test]
async fn a_new_account_must_change_its_one_time_password() {
    let app = TestApp::demo().await;
    let mut admin = app.admin("sysadmin").await;
    let unit = app.unit_id("教育局").await.to_string();
    let r = admin
        .post_form(
            "/admin/users/new",
            "/admin/users",
            &[("username", "tangjing"), ("display_name", "唐静"), ("unit_id", &unit), ("position", "科员")],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let one_time = r.element_text("one-time-password");

    let mut c = app.client();
    assert_eq!(c.login("tangjing", &one_time).await.location(), "/login/password");
    assert_eq!(c.get("/workbench").await.location(), "/login");
    let change = |new: &'static str| {
        vec![("current_password", one_time.clone()), ("new_password", new.to_string()), ("confirm_password", new.to_string())]
    };
    for (weak, message) in [("short1A", "至少 8 个字符"), ("alllowercase1", "至少 3 类")] {
        let fields = change(weak);
        let refs: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let r = c.post_form("/login/password", "/login/password", &refs).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(r.body.contains("新密码") && r.body.contains(message), "names the field: {}", r.body);
    }
    let reuse = change("");
    let mut refs: Vec<(&str, &str)> = reuse.iter().map(|(k, v)| (*k, v.as_str())).collect();
    refs[1].1 = &one_time;
    refs[2].1 = &one_time;
    let r = c.post_form("/login/password", "/login/password", &refs).await;
    assert!(r.body.contains("最近用过"), "no reuse: {}", r.body);
    let good = change("Jiahe#Edu2026");
    let refs: Vec<(&str, &str)> = good.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let r = c.post_form("/login/password", "/login/password", &refs).await;
    assert_eq!(r.location(), "/workbench");
    assert_eq!(app.audit_count("auth.password_change", "success").await, 1);
}

#[tokio::test]
async fn forms_without_the_csrf_token_are_refused() {
    let app = TestApp::demo().await;
    let mut anon = app.client();
    anon.get("/login").await;
    let r = anon.post_raw_form("/login", &[("username", "zhangwei"), ("password", DEMO_PASSWORD)]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(r.body.contains("CSRF"));

    let mut admin = app.admin("sysadmin").await;
    let before = app.scalar("SELECT COUNT(*) FROM units").await;
    let parent = app.unit_id("嘉禾县人民政府").await.to_string();
    let fields = [("name", "假单位"), ("parent_id", parent.as_str()), ("kind", "department")];
    let r = admin.post_raw_form("/admin/units", &fields).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "no token");
    let mut with_wrong = vec![("_csrf", "x".repeat(43))];
    with_wrong.extend(fields.iter().map(|(k, v)| (*k, v.to_string())));
    let refs: Vec<(&str, &str)> = with_wrong.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let r = admin.post_raw_form("/admin/units", &refs).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "wrong token");
    assert_eq!(app.scalar("SELECT COUNT(*) FROM units").await, before, "nothing written");
    // The JSON API with a session cookie needs the header too.
    let r = admin
        .send(
            axum::http::Request::post("/api/v1/units")
                .header("host", "localhost")
                .header("cookie", admin.cookies.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; "))
                .header("content-type", "application/json")
                .body(axum::body::Body::from(json!({"name": "x", "kind": "department", "parent_id": 1}).to_string()))
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(r.json()["code"], "forbidden");
}

#[tokio::test]
async fn idle_sessions_expire() {
    let app = TestApp::demo().await;
    let mut c = app.staff("zhangwei").await;
    assert_eq!(c.get("/workbench").await.status, StatusCode::OK);
    app.sql("UPDATE sessions SET last_seen_at = last_seen_at - 29 * 60000").await;
    assert_eq!(c.get("/workbench").await.status, StatusCode::OK, "29 idle minutes are fine");
    app.sql("UPDATE sessions SET last_seen_at = last_seen_at - 31 * 60000").await;
    assert_eq!(c.get("/workbench").await.location(), "/login", "31 idle minutes end the session");
}

#[tokio::test]
async fn log_out_ends_the_session_and_other_sessions_can_be_revoked() {
    let app = TestApp::demo().await;
    let mut phone = app.staff("zhoujun").await;
    let mut desk = app.staff("zhoujun").await;
    let sessions = desk.get("/api/v1/sessions").await.json();
    assert_eq!(sessions.as_array().unwrap().len(), 2);
    let other = sessions.as_array().unwrap().iter().find(|s| s["current"] == false).unwrap()["id"].as_i64().unwrap();
    let r = desk.post_form("/me/sessions", &format!("/me/sessions/{other}/revoke"), &[]).await;
    assert_eq!(r.location(), "/me/sessions?done=session_revoked");
    assert_eq!(phone.get("/workbench").await.location(), "/login", "revoked session is gone");
    let cookie = desk.cookies.clone();
    desk.post_form("/workbench", "/logout", &[]).await;
    desk.cookies = cookie;
    assert_eq!(desk.get("/workbench").await.location(), "/login", "old cookie no longer works");
    assert_eq!(app.audit_count("session.revoke", "success").await, 1);
    assert_eq!(app.audit_count("auth.logout", "success").await, 1);
}

#[tokio::test]
async fn api_tokens_are_scoped_expiring_and_revocable() {
    let app = TestApp::demo().await;
    let mut c = app.staff("zhaomin").await;
    let r = c.json(Method::POST, "/api/v1/tokens", json!({"name": "脚本", "days": 30})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let token = r.json()["token"].as_str().unwrap().to_string();
    let id = r.json()["id"].as_i64().unwrap();
    let stored = app.scalar(&format!("SELECT COUNT(*) FROM api_tokens WHERE token_hash = '{token}'")).await;
    assert_eq!(stored, 0, "only the hash is stored");

    let mut bot = app.client();
    let bearer = |method: Method, path: &str, body: Option<serde_json::Value>| {
        let mut b = axum::http::Request::builder().method(method).uri(path).header("authorization", format!("Bearer {token}"));
        if body.is_some() {
            b = b.header("content-type", "application/json");
        }
        b.body(axum::body::Body::from(body.map(|v| v.to_string()).unwrap_or_default())).unwrap()
    };
    let r = bot.send(bearer(Method::GET, "/api/v1/me", None)).await;
    assert_eq!(r.json()["username"], "zhaomin");
    let lower = format!("bearer {token}");
    let r = bot.request(Method::GET, "/api/v1/me", &[("authorization", &lower)], "").await;
    assert_eq!((r.status, r.json()["username"].as_str()), (StatusCode::OK, Some("zhaomin")), "the scheme is case-insensitive: {}", r.body);
    let r = bot.send(bearer(Method::POST, "/api/v1/tokens", Some(json!({"name": "x", "days": 1})))).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "read-only token cannot write");
    assert_eq!(r.json()["code"], "forbidden");
    let r = c.json(Method::POST, "/api/v1/tokens", json!({"name": "x", "days": 400})).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.json()["field"], "days");
    let r = c.json(Method::DELETE, &format!("/api/v1/tokens/{id}"), json!({})).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let r = bot.send(bearer(Method::GET, "/api/v1/me", None)).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    app.sql("UPDATE api_tokens SET expires_at = 0").await;
    assert_eq!(app.audit_count("token.create", "success").await, 1);
    assert_eq!(app.audit_count("token.revoke", "success").await, 1);
}
