//! Account takeover and the three-administrator separation (issue 13's findings 1–3, 5–7, 9,
//! 10, 13, 18 and 20): each test performs an attack from the outside tester's report as it was
//! made, and checks that it now fails.

use axum::http::{Method, StatusCode};
use serde_json::json;

use crate::{
    pki::ca,
    strong_login::{P256_CERT, SM2_KEY, certificate_login, sign},
    support::{Client, DEMO_PASSWORD, TestApp, totp_code},
};

pub(crate) const SM2_CSR: &str = include_str!("../fixtures/sm2.csr");
pub(crate) const P256_CSR: &str = include_str!("../fixtures/p256.csr");

/// A staff API token made in `c`'s session.
async fn token(c: &mut Client) -> String {
    let r = c.json(Method::POST, "/api/v1/tokens", json!({"name": "脚本", "days": 30, "write": true})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    r.json()["token"].as_str().unwrap_or_default().to_string()
}

/// What a bearer token gets from `GET /api/v1/me`.
async fn with_token(app: &TestApp, token: &str, path: &str) -> StatusCode {
    let auth = format!("Bearer {token}");
    app.client().request(Method::GET, path, &[("authorization", &auth)], "").await.status
}

/// The security administrator issues a staff certificate for `username` from the fixture SM2 CSR
/// (the key is `SM2_KEY`); answers its PEM.
async fn issue(app: &TestApp, sec: &mut Client, username: &str) -> String {
    issue_from(app, sec, username, SM2_CSR).await
}

/// The security administrator issues a staff certificate for `username` from `csr`.
pub(crate) async fn issue_from(app: &TestApp, sec: &mut Client, username: &str, csr: &str) -> String {
    let r = sec.post_form("/admin/pki", "/admin/pki/staff", &[("username", username), ("csr", csr)]).await;
    assert_eq!(r.location(), "/admin/pki?done=certificate_issued", "{}", r.body);
    let serial = app.scalar_text("SELECT serial FROM pki_certificates WHERE profile = 'staff' ORDER BY id DESC LIMIT 1").await;
    app.client().get(&format!("/pki/certificates/{serial}")).await.body
}

/// The holder binds `cert` on their own page: the certificate, then the signed challenge.
pub(crate) async fn bind_own(c: &mut Client, cert: &str, key: &str) -> crate::support::Resp {
    let r = c.post_form("/me/certificates", "/me/certificates", &[("certificate", cert)]).await;
    if r.status != StatusCode::OK {
        return r;
    }
    let to_sign = html_unescape(&r.element_text("to_sign"));
    let handle = hidden(&r.body, "handle");
    let signature = sign(key, &to_sign);
    c.post_form("/me/certificates", "/me/certificates/bind", &[("handle", &handle), ("certificate", cert), ("signature", &signature)]).await
}

/// A demo member of staff logged in who enrolled TOTP in this session (a second factor proven).
pub(crate) async fn staff_with_second_factor(app: &TestApp, username: &str) -> Client {
    let mut c = app.staff(username).await;
    c.enrol_totp("/me/totp").await;
    c
}

fn hidden(body: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = body.find(&marker).unwrap_or_else(|| panic!("no hidden {name}")) + marker.len();
    body[start..].split('"').next().unwrap_or_default().to_string()
}

fn html_unescape(s: &str) -> String {
    s.replace("&#x2f;", "/").replace("&#47;", "/").replace("&#x3a;", ":").replace("&amp;", "&").replace("&quot;", "\"")
}

#[tokio::test]
async fn an_administrator_cannot_bind_a_certificate_and_log_in_as_another() {
    let app = TestApp::demo().await;
    ca(&app).await;
    let mut sys = app.admin("sysadmin").await;
    let auditor = app.user_id("auditor").await;
    // The attack: bind a self-signed certificate to the auditor, then log in with it.
    let r = sys
        .post_form(&format!("/admin/users/{auditor}"), &format!("/admin/users/{auditor}/certificates"), &[("certificate", P256_CERT)])
        .await;
    assert!(matches!(r.status, StatusCode::NOT_FOUND | StatusCode::METHOD_NOT_ALLOWED), "no administrator binds: {}", r.status);
    assert_eq!(app.scalar("SELECT COUNT(*) FROM user_certificates").await, 0);
    // Even a binding left by an earlier version logs in no more: the certificate is not the CA's.
    app.sql(&format!(
        "INSERT INTO user_certificates (user_id, fingerprint, subject, issuer, serial, algorithm, public_key, not_before, not_after, pem, created_at) \
         SELECT {auditor}, 'legacy', 'CN=x', 'CN=x', '01', 'p256', '', 0, 0, '', 0"
    ))
    .await;
    let cert = tongban_crypto::cert::parse_certificate(P256_CERT.as_bytes()).expect("fixture");
    app.sql(&format!(
        "UPDATE user_certificates SET fingerprint = '{}', public_key = '{}', not_after = 4102444800000 WHERE user_id = {auditor}",
        cert.fingerprint,
        cert.public_key.iter().map(|b| format!("{b:02x}")).collect::<String>()
    ))
    .await;
    let mut thief = app.client();
    let r = certificate_login(&mut thief, P256_CERT, crate::strong_login::P256_KEY).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.body);
    assert_eq!(thief.get("/audit").await.status, StatusCode::SEE_OTHER);
    assert!(app.scalar("SELECT COUNT(*) FROM audit_log WHERE action = 'auth.login' AND details LIKE '%untrusted%'").await >= 1);
}

#[tokio::test]
async fn issuing_a_certificate_for_another_binds_nothing_and_the_holder_binds_their_own() {
    let app = TestApp::demo().await;
    ca(&app).await;
    let mut sec = app.admin("secadmin").await;
    // The attack: a certificate for a key the security administrator holds, issued for the auditor.
    let for_auditor = issue(&app, &mut sec, "auditor").await;
    assert_eq!(app.scalar("SELECT COUNT(*) FROM user_certificates").await, 0, "issuing binds nothing");
    assert_eq!(certificate_login(&mut app.client(), &for_auditor, SM2_KEY).await.status, StatusCode::UNAUTHORIZED);
    // Nor can he bind it to himself: it was issued for another account.
    let r = bind_own(&mut sec, &for_auditor, SM2_KEY).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body.contains("不是本县 CA 签发给本账号"), "{}", r.body);

    // A member of staff binds their own, after proving a second factor in the session.
    let for_xuhui = issue(&app, &mut sec, "xuhui").await;
    let mut xuhui = app.staff("xuhui").await;
    let page = xuhui.get("/me/certificates").await;
    assert!(page.body.contains("须先用第二因素"), "says a second factor is needed first");
    assert_eq!(xuhui.post_form("/me/sessions", "/me/certificates", &[("certificate", &for_xuhui)]).await.status, StatusCode::FORBIDDEN);
    xuhui.enrol_totp("/me/totp").await;
    // A self-signed certificate, or a signature by another key, is refused.
    assert_eq!(bind_own(&mut xuhui, P256_CERT, crate::strong_login::P256_KEY).await.status, StatusCode::UNPROCESSABLE_ENTITY);
    let wrong = bind_own(&mut xuhui, &for_xuhui, crate::strong_login::P256_KEY).await;
    assert_eq!(wrong.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(wrong.body.contains("签名验证失败"), "{}", wrong.body);
    let r = bind_own(&mut xuhui, &for_xuhui, SM2_KEY).await;
    assert_eq!(r.location(), "/me/certificates?done=certificate_bound", "{}", r.body);
    assert!(xuhui.get("/me/certificates").await.body.contains("CN=徐辉"));
    assert_eq!(certificate_login(&mut app.client(), &for_xuhui, SM2_KEY).await.status, StatusCode::OK);

    // Revocation reaches the next log-in (the CRL's records are checked every time).
    let serial =
        app.scalar_text("SELECT serial FROM pki_certificates WHERE holder_id = (SELECT id FROM users WHERE username = 'xuhui')").await;
    let r = sec.post_form("/admin/pki", &format!("/admin/pki/{serial}/revoke"), &[("reason", "1")]).await;
    assert_eq!(r.location(), "/admin/pki?done=certificate_revoked", "{}", r.body);
    app.sql("UPDATE user_certificates SET revoked_at = NULL").await;
    assert_eq!(certificate_login(&mut app.client(), &for_xuhui, SM2_KEY).await.status, StatusCode::UNAUTHORIZED);
    assert!(app.scalar("SELECT COUNT(*) FROM audit_log WHERE action = 'auth.login' AND details LIKE '%revoked%'").await >= 1);
}

#[tokio::test]
async fn an_administrator_s_certificate_log_in_still_asks_for_their_second_factor() {
    let app = TestApp::demo().await;
    ca(&app).await;
    let mut sec = app.admin("secadmin").await;
    let cert = issue(&app, &mut sec, "auditor").await;
    let mut auditor = app.client();
    let r = auditor.login("auditor", DEMO_PASSWORD).await;
    assert_eq!(r.location(), "/login/enrol");
    let secret = auditor.enrol_totp("/login/enrol").await;
    assert_eq!(bind_own(&mut auditor, &cert, SM2_KEY).await.location(), "/me/certificates?done=certificate_bound");

    let mut usb = app.client();
    let r = certificate_login(&mut usb, &cert, SM2_KEY).await;
    assert_eq!((r.status, r.json()["next"].as_str()), (StatusCode::OK, Some("/login/totp")), "{}", r.body);
    assert_eq!(usb.get("/audit").await.status, StatusCode::SEE_OTHER, "no page before the second factor");
    let code = totp_code(&secret, 0);
    let r = usb.post_form("/login/totp", "/login/totp", &[("totp_code", &code)]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert_eq!(usb.get("/audit").await.status, StatusCode::OK);
}

#[tokio::test]
async fn a_new_administrator_enrols_a_second_factor_before_any_page() {
    let app = TestApp::with(|_| {}, false).await;
    let admins = app.opened.identity.init("嘉禾县").await.expect("init");
    let auditor = admins.iter().find(|a| a.username == "auditor").expect("an auditor");
    let mut c = app.client();
    let r = c.login(&auditor.username, &auditor.password).await;
    assert_eq!(r.location(), "/login/password");
    let r = c
        .post_form(
            "/login/password",
            "/login/password",
            &[("current_password", &auditor.password), ("new_password", "Jiahe#Audit2026"), ("confirm_password", "Jiahe#Audit2026")],
        )
        .await;
    assert_eq!(r.location(), "/login/enrol", "the changed password is no second factor: {}", r.body);
    for page in ["/audit", "/admin/roles", "/workbench", "/api/v1/audit"] {
        let status = c.get(page).await.status;
        assert!(matches!(status, StatusCode::SEE_OTHER | StatusCode::UNAUTHORIZED), "{page}: {status}");
    }
    c.enrol_totp("/login/enrol").await;
    assert_eq!(c.get("/audit").await.status, StatusCode::OK);
}

#[tokio::test]
async fn credential_changes_end_api_tokens_too() {
    let app = TestApp::demo().await;
    let mut sys = app.admin("sysadmin").await;
    let edu = app.unit_id("教育局").await;
    let r = sys.json(Method::POST, "/api/v1/users", json!({"username": "lilei", "display_name": "李雷", "unit_id": edu})).await;
    let (id, first) =
        (r.json()["user_id"].as_i64().unwrap_or_default(), r.json()["one_time_password"].as_str().unwrap_or_default().to_string());
    let mut lilei = app.client();
    lilei.login("lilei", &first).await;
    let form = [("current_password", first.as_str()), ("new_password", "Jiahe#Edu2026"), ("confirm_password", "Jiahe#Edu2026")];
    assert_eq!(lilei.post_form("/login/password", "/login/password", &form).await.location(), "/workbench");

    // Forced log-out (强制下线).
    let t = token(&mut lilei).await;
    assert_eq!(with_token(&app, &t, "/api/v1/me").await, StatusCode::OK);
    let r = sys.post_form(&format!("/admin/users/{id}"), &format!("/admin/users/{id}/end-sessions"), &[]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert_eq!(with_token(&app, &t, "/api/v1/me").await, StatusCode::UNAUTHORIZED, "forced log-out ends tokens");

    // A password reset by the administrator.
    let mut lilei = app.client();
    lilei.login("lilei", "Jiahe#Edu2026").await;
    let t = token(&mut lilei).await;
    let r = sys.json(Method::POST, &format!("/api/v1/users/{id}/reset-password"), json!({})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(with_token(&app, &t, "/api/v1/me").await, StatusCode::UNAUTHORIZED, "a reset ends tokens");

    // The owner's own change.
    let one_time = r.json()["one_time_password"].as_str().unwrap_or_default().to_string();
    let mut lilei = app.client();
    lilei.login("lilei", &one_time).await;
    let form = [("current_password", one_time.as_str()), ("new_password", "Jiahe#Edu2027"), ("confirm_password", "Jiahe#Edu2027")];
    assert_eq!(lilei.post_form("/login/password", "/login/password", &form).await.location(), "/workbench");
    let t = token(&mut lilei).await;
    let form = [("current_password", "Jiahe#Edu2027"), ("new_password", "Jiahe#Edu2028"), ("confirm_password", "Jiahe#Edu2028")];
    assert_eq!(lilei.post_form("/me/password", "/me/password", &form).await.status, StatusCode::SEE_OTHER);
    assert_eq!(with_token(&app, &t, "/api/v1/me").await, StatusCode::UNAUTHORIZED, "a change ends tokens");
}

#[tokio::test]
async fn a_new_administrator_role_takes_effect_only_after_a_fresh_log_in_with_the_second_factor() {
    let app = TestApp::demo().await;
    let mut zhang = app.staff("zhangwei").await;
    let t = token(&mut zhang).await;
    let mut sec = app.admin("secadmin").await;
    let zid = app.user_id("zhangwei").await;
    let auditor_role = app.scalar("SELECT id FROM roles WHERE code = 'auditor'").await;
    let r = sec.json(Method::POST, &format!("/api/v1/users/{zid}/grants"), json!({"role_id": auditor_role, "scope": "all"})).await;
    assert_eq!(r.status, StatusCode::CREATED);
    // The old session and token are gone, so they cannot read the audit trail without TOTP.
    assert_eq!(zhang.get("/audit").await.status, StatusCode::SEE_OTHER);
    assert_eq!(with_token(&app, &t, "/api/v1/audit").await, StatusCode::UNAUTHORIZED);
    let mut again = app.client();
    assert_eq!(again.login("zhangwei", DEMO_PASSWORD).await.location(), "/login/enrol");

    // Defence in depth: a token made without a second factor never acts for an administrator,
    // even if a grant reached the account some other way.
    let mut wu = app.staff("wufang").await;
    let t = token(&mut wu).await;
    let wid = app.user_id("wufang").await;
    app.sql(&format!("INSERT INTO grants (user_id, role_id, scope, granted_by, created_at) VALUES ({wid}, {auditor_role}, 'all', 1, 0)"))
        .await;
    assert_eq!(with_token(&app, &t, "/api/v1/audit").await, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn no_credential_change_for_an_account_holding_a_role_one_could_not_grant() {
    let app = TestApp::demo().await;
    // The attack: the hall's unit administrator resets the window clerk's password.
    let mut zhaomin = app.staff("zhaomin").await;
    let liuyang = app.user_id("liuyang").await;
    let r = zhaomin.json(Method::POST, &format!("/api/v1/users/{liuyang}/reset-password"), json!({})).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    assert!(r.json()["message"].as_str().unwrap_or_default().contains("无权授予"));
    let r = zhaomin
        .json(
            Method::PUT,
            &format!("/api/v1/users/{liuyang}"),
            json!({"display_name": "刘洋", "unit_id": app.unit_id("综合受理窗口").await, "phone": "13900000000"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "no profile change either: {}", r.body);
    assert_eq!(app.audit_count("user.reset_password", "denied").await, 1);
    assert!(app.scalar("SELECT COUNT(*) FROM audit_log WHERE details LIKE '%role_not_covered%'").await >= 2);
    // She may still take access away in her scope (a lost device).
    let r = zhaomin.json(Method::POST, &format!("/api/v1/users/{liuyang}/lock"), json!({})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    // Once the security administrator opens the role to unit administrators, she may.
    let window = app.scalar("SELECT id FROM roles WHERE code = 'window_clerk'").await;
    let mut sec = app.admin("secadmin").await;
    assert_eq!(sec.post_form("/admin/roles", &format!("/admin/roles/{window}/assignable"), &[]).await.status, StatusCode::SEE_OTHER);
    let r = zhaomin.json(Method::POST, &format!("/api/v1/users/{liuyang}/reset-password"), json!({})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
}

#[tokio::test]
async fn no_administrator_changes_another_administrator_account() {
    let app = TestApp::demo().await;
    let mut sys = app.admin("sysadmin").await;
    let root = app.unit_id("嘉禾县人民政府").await;
    for target in ["auditor", "secadmin"] {
        let id = app.user_id(target).await;
        for action in ["lock", "disable", "reset-password"] {
            let r = sys.json(Method::POST, &format!("/api/v1/users/{id}/{action}"), json!({})).await;
            assert_eq!(r.status, StatusCode::FORBIDDEN, "{action} {target}: {}", r.body);
            assert!(r.json()["message"].as_str().unwrap_or_default().contains("tongban user"));
        }
        let r = sys.json(Method::PUT, &format!("/api/v1/users/{id}"), json!({"display_name": "换人", "unit_id": root})).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "no edit or move of {target}");
        let r = sys.post_form(&format!("/admin/users/{id}"), &format!("/admin/users/{id}/end-sessions"), &[]).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
    }
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM users WHERE username IN ('auditor', 'secadmin') AND (enabled = 0 OR locked_until IS NOT NULL)")
            .await,
        0
    );
    assert!(app.scalar("SELECT COUNT(*) FROM audit_log WHERE result = 'denied' AND details LIKE '%admin_account%'").await >= 8);
    // The server's CLI still can, and it is audited.
    let one_time = app.opened.identity.cli_reset_password("auditor").await.expect("CLI reset");
    assert!(!one_time.is_empty());
    app.opened.identity.cli_reset_totp("auditor").await.expect("CLI TOTP reset");
    assert_eq!(app.audit_count("user.reset_totp", "success").await, 1);
}

#[tokio::test]
async fn all_staff_need_a_second_factor_unless_the_installation_says_administrators() {
    let app =
        TestApp::with(|c| c.security.second_factor_required = Some(tongban_platform::config::SecondFactorRequired::AllStaff), true).await;
    let mut c = app.client();
    assert_eq!(c.login("liuyang", DEMO_PASSWORD).await.location(), "/login/enrol");
    assert_eq!(c.get("/workbench").await.status, StatusCode::SEE_OTHER);
    c.enrol_totp("/login/enrol").await;
    assert_eq!(c.get("/workbench").await.status, StatusCode::OK);
    // A real installation's default (nothing configured) is all staff.
    assert!(tongban_platform::Config::default().security.all_staff_need_second_factor());
}

#[tokio::test]
async fn common_and_personal_passwords_are_refused() {
    let app = TestApp::demo().await;
    let mut c = app.staff("liuyang").await;
    for bad in ["Password1", "P@ssw0rd", "Aa123456", "Liuyang#2026"] {
        let form = [("current_password", DEMO_PASSWORD), ("new_password", bad), ("confirm_password", bad)];
        let r = c.post_form("/me/password", "/me/password", &form).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
        assert!(r.body.contains("最常见的密码") || r.body.contains("不能包含用户名"), "{bad}: {}", r.body);
    }
    let r = app
        .client()
        .post_form(
            "/public/register",
            "/public/register",
            &[
                ("kind", "person"),
                ("name", "韩梅梅"),
                ("cert_no", "430000199001011237"),
                ("phone", "13600001111"),
                ("password", "Mm#13600001111"),
                ("password_again", "Mm#13600001111"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "a citizen's password may not hold their phone: {}", r.body);
}

#[tokio::test]
async fn unknown_and_real_names_answer_alike_and_a_stranger_cannot_lock_a_citizen_out() {
    let app = TestApp::demo().await;
    let mut c = app.client();
    let mut answers = Vec::new();
    for name in ["xuhui", "nosuchuser"] {
        let statuses: Vec<StatusCode> = {
            let mut v = Vec::new();
            for _ in 0..6 {
                v.push(c.login(name, "Wrong#Pass1").await.status);
            }
            v
        };
        answers.push(statuses);
    }
    assert_eq!(answers[0], answers[1], "a real and an unknown name get the same answers");
    assert_eq!(answers[1][4], StatusCode::TOO_MANY_REQUESTS);

    let form = [
        ("kind", "person"),
        ("name", "李嘉禾"),
        ("cert_no", "431024199003150016"),
        ("phone", "13807351234"),
        ("password", "Citizen#2026"),
        ("password_again", "Citizen#2026"),
    ];
    assert_eq!(app.client().post_form("/public/register", "/public/register", &form).await.status, StatusCode::SEE_OTHER);
    // A stranger who knows a citizen's phone number tries from one address …
    let mut stranger = app.client();
    stranger.ip = "203.0.113.9".into();
    let mut last = StatusCode::OK;
    for _ in 0..6 {
        last = stranger.post_form("/public/login", "/public/login", &[("login", "13807351234"), ("password", "Wrong#Pass1")]).await.status;
    }
    assert_eq!(last, StatusCode::TOO_MANY_REQUESTS, "slowed down where the attempts come from");
    // … while the citizen logs in from home.
    let mut owner = app.client();
    owner.ip = "198.51.100.20".into();
    let r = owner.post_form("/public/login", "/public/login", &[("login", "13807351234"), ("password", "Citizen#2026")]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert_eq!(app.scalar("SELECT COUNT(*) FROM public_accounts WHERE locked_until IS NOT NULL").await, 0);
    // The owner is told by SMS, once.
    assert_eq!(app.scalar("SELECT COUNT(*) FROM notify_messages WHERE recipient = '13807351234' AND body LIKE '%多次登录失败%'").await, 1);
}

#[tokio::test]
async fn tokens_cannot_make_tokens_and_live_no_longer_than_allowed() {
    let app = TestApp::demo().await;
    let mut c = app.staff("xuhui").await;
    let r = c.json(Method::POST, "/api/v1/tokens", json!({"name": "长期", "days": 365, "write": true})).await;
    assert_eq!((r.status, r.json()["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("days")));
    let t = token(&mut c).await;
    let auth = format!("Bearer {t}");
    let r = app
        .client()
        .request(
            Method::POST,
            "/api/v1/tokens",
            &[("authorization", &auth), ("content-type", "application/json")],
            r#"{"name":"x","days":30,"write":true}"#,
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    assert_eq!(app.scalar("SELECT COUNT(*) FROM api_tokens").await, 1);
}
