//! Data scopes (数据范围): a unit administrator sees and edits only their unit subtree.

use axum::http::{Method, StatusCode};
use serde_json::json;

use crate::support::TestApp;

#[tokio::test]
async fn a_unit_administrator_stays_inside_their_subtree() {
    let app = TestApp::demo().await;
    let mut unit_admin = app.staff("zhaomin").await; // 行政审批服务局, subtree
    let users = unit_admin.get("/api/v1/users").await.json();
    let names: Vec<&str> = users.as_array().unwrap().iter().map(|u| u["username"].as_str().unwrap()).collect();
    assert!(names.contains(&"zhaomin") && names.contains(&"liuyang"), "own unit and the window below it: {names:?}");
    assert!(!names.contains(&"huangli") && !names.contains(&"sysadmin"), "nobody from other units: {names:?}");

    let outsider = app.user_id("huangli").await; // 市场监督管理局
    let r = unit_admin.get(&format!("/api/v1/users/{outsider}")).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "other units' accounts are not even shown to exist");
    let r = unit_admin.get(&format!("/admin/users/{outsider}")).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let market = app.unit_id("市场监督管理局").await;
    let r = unit_admin.json(Method::PUT, &format!("/api/v1/users/{outsider}"), json!({"display_name": "改名", "unit_id": market})).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = unit_admin.json(Method::POST, &format!("/api/v1/users/{outsider}/disable"), json!({})).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(app.scalar(&format!("SELECT enabled FROM users WHERE id = {outsider}")).await, 1, "unchanged");

    let r = unit_admin.json(Method::POST, "/api/v1/users", json!({"username": "intruder", "display_name": "x", "unit_id": market})).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.json()["field"], "unit_id");
    let window = app.unit_id("综合受理窗口").await;
    let r = unit_admin
        .json(
            Method::POST,
            "/api/v1/users",
            json!({"username": "chenxin", "display_name": "陈欣", "unit_id": window, "position": "窗口受理员"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    // Moving an own account into another unit is refused.
    let mine = r.json()["user_id"].as_i64().unwrap_or_default();
    let r = unit_admin.json(Method::PUT, &format!("/api/v1/users/{mine}"), json!({"display_name": "陈欣", "unit_id": market})).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);

    assert!(app.scalar("SELECT COUNT(*) FROM audit_log WHERE result = 'denied' AND actor_name = 'zhaomin'").await >= 4);
    // Units: only the subtree is listed.
    let units = unit_admin.get("/api/v1/units").await.json();
    assert_eq!(units.as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn ordinary_staff_cannot_list_accounts() {
    let app = TestApp::demo().await;
    let mut staff = app.staff("liuyang").await;
    let r = staff.get("/api/v1/users").await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(r.json()["code"], "forbidden");
    assert_eq!(staff.get("/admin/users").await.status, StatusCode::FORBIDDEN);
    assert_eq!(staff.get("/audit").await.status, StatusCode::FORBIDDEN);
    let me = staff.get("/api/v1/me").await.json();
    assert_eq!(me["permissions"]["workbench.use"], "self");
}

#[tokio::test]
async fn unit_administrators_grant_only_the_roles_opened_to_them_and_only_inside_their_scope() {
    let app = TestApp::demo().await;
    let role = |code: &str| format!("SELECT id FROM roles WHERE code = '{code}'");
    let (staff, supervisor, sys_admin) =
        (app.scalar(&role("staff")).await, app.scalar(&role("supervisor")).await, app.scalar(&role("sys_admin")).await);
    let (liuyang, zhoujun) = (app.user_id("liuyang").await, app.user_id("zhoujun").await);
    let mut unit_admin = app.staff("zhaomin").await;
    let grant = |user: i64, role: i64, scope: &'static str| {
        (format!("/admin/users/{user}"), format!("/admin/users/{user}/grants"), role.to_string(), scope)
    };

    let (page, path, r, s) = grant(liuyang, staff, "self");
    let first = unit_admin.get(&page).await;
    assert_eq!(first.status, StatusCode::OK, "{page}: {}", first.body);
    let resp = unit_admin.post_form(&page, &path, &[("role_id", &r), ("scope", s)]).await;
    assert_eq!(resp.status, StatusCode::FORBIDDEN, "not opened yet");
    let refused = unit_admin.post_form("/me/sessions", &format!("/admin/roles/{staff}/assignable"), &[]).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "only the security administrator opens roles");
    let mut sec = app.admin("secadmin").await;
    let resp = sec.post_form("/admin/roles", &format!("/admin/roles/{staff}/assignable"), &[]).await;
    assert_eq!(resp.location(), "/admin/roles?done=role_saved");
    let resp = sec.post_form("/admin/roles", &format!("/admin/roles/{sys_admin}/assignable"), &[]).await;
    assert_eq!(resp.status, StatusCode::CONFLICT, "the three administrator roles never");
    let listed = unit_admin.get(&format!("/admin/users/{liuyang}")).await;
    assert!(
        listed.body.contains(&format!("<option value=\"{staff}\"")) && !listed.body.contains(&format!("<option value=\"{supervisor}\"")),
        "only opened roles are offered"
    );

    let resp = unit_admin.post_form(&page, &path, &[("role_id", &r), ("scope", "all")]).await;
    assert_eq!(resp.status, StatusCode::CONFLICT, "wider than her own subtree: {}", resp.body);
    assert!(resp.body.contains("不能超过"));
    let resp = unit_admin.post_form(&page, &path, &[("role_id", &r), ("scope", "self")]).await;
    assert_eq!(resp.location(), format!("/admin/users/{liuyang}?done=grant_saved"), "{}", resp.body);
    let (page2, path2, r2, s2) = grant(liuyang, supervisor, "self");
    assert_eq!(unit_admin.post_form(&page2, &path2, &[("role_id", &r2), ("scope", s2)]).await.status, StatusCode::FORBIDDEN, "not opened");
    let (_, path3, r3, s3) = grant(zhoujun, staff, "self");
    assert_eq!(
        unit_admin.post_form(&page, &path3, &[("role_id", &r3), ("scope", s3)]).await.status,
        StatusCode::NOT_FOUND,
        "outside her tree"
    );

    let g = app.scalar(&format!("SELECT id FROM grants WHERE user_id = {liuyang} AND role_id = {staff}")).await;
    let resp = unit_admin.post_form(&page, &format!("/admin/grants/{g}/revoke"), &[]).await;
    assert_eq!(resp.location(), format!("/admin/users/{liuyang}?done=grant_saved"));
    let window = app
        .scalar(&format!("SELECT id FROM grants WHERE user_id = {liuyang} AND role_id = {}", app.scalar(&role("window_clerk")).await))
        .await;
    assert_eq!(
        unit_admin.post_form(&page, &format!("/admin/grants/{window}/revoke"), &[]).await.status,
        StatusCode::FORBIDDEN,
        "a role not opened cannot be taken either"
    );
    assert_eq!(app.audit_count("role.assignable", "success").await, 1);
    assert_eq!(app.audit_count("role.assignable", "denied").await, 1);
    assert!(app.audit_count("grant.create", "denied").await >= 2);
}
