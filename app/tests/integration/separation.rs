//! Three-admin separation (三员分立): each administrator × each administrative action.

use axum::http::{Method, StatusCode};
use serde_json::json;

use crate::support::{Client, TestApp};

#[derive(Clone, Copy, Debug, PartialEq)]
enum Admin {
    System,
    Security,
    Auditor,
}

async fn attempt(app: &TestApp, c: &mut Client, action: &str, n: usize) -> StatusCode {
    let root = app.unit_id("嘉禾县人民政府").await;
    let edu = app.unit_id("教育局").await;
    let staff_role = app.scalar("SELECT id FROM roles WHERE code = 'staff'").await;
    let target = app.user_id("wufang").await;
    let r = match action {
        "unit.create" => {
            c.json(Method::POST, "/api/v1/units", json!({"parent_id": root, "name": format!("新单位{n}"), "kind": "department"})).await
        }
        "unit.update" => {
            c.json(
                Method::PUT,
                &format!("/api/v1/units/{edu}"),
                json!({"parent_id": root, "name": "教育局", "kind": "department", "sort_order": 3}),
            )
            .await
        }
        "user.create" => {
            c.json(Method::POST, "/api/v1/users", json!({"username": format!("newuser{n}"), "display_name": "新人", "unit_id": edu})).await
        }
        "user.lock" => c.json(Method::POST, &format!("/api/v1/users/{target}/lock"), json!({})).await,
        "role.create" => {
            c.json(Method::POST, "/api/v1/roles", json!({"code": format!("clerk{n}"), "name": "窗口", "permissions": ["workbench.use"]}))
                .await
        }
        "grant.create" => {
            c.json(Method::POST, &format!("/api/v1/users/{target}/grants"), json!({"role_id": staff_role, "scope": "unit"})).await
        }
        "audit.read" => c.get("/api/v1/audit").await,
        other => panic!("unknown action {other}"),
    };
    r.status
}

#[tokio::test]
async fn each_administrator_can_do_only_their_own_part() {
    let app = TestApp::demo().await;
    let mut clients = [
        (Admin::System, app.admin("sysadmin").await),
        (Admin::Security, app.admin("secadmin").await),
        (Admin::Auditor, app.admin("auditor").await),
    ];
    let matrix: [(&str, Admin, StatusCode); 7] = [
        ("unit.create", Admin::System, StatusCode::CREATED),
        ("unit.update", Admin::System, StatusCode::OK),
        ("user.create", Admin::System, StatusCode::CREATED),
        ("user.lock", Admin::System, StatusCode::OK),
        ("role.create", Admin::Security, StatusCode::CREATED),
        ("grant.create", Admin::Security, StatusCode::CREATED),
        ("audit.read", Admin::Auditor, StatusCode::OK),
    ];
    let mut n = 0;
    for (action, owner, ok) in matrix {
        for (who, client) in clients.iter_mut() {
            n += 1;
            let status = attempt(&app, client, action, n).await;
            if *who == owner {
                assert_eq!(status, ok, "{who:?} may {action}");
            } else {
                assert!(status == StatusCode::FORBIDDEN || status == StatusCode::NOT_FOUND, "{who:?} must not {action}, got {status}");
            }
        }
    }
    // Every refusal is in the audit trail.
    assert!(app.audit_count("unit.create", "denied").await >= 2);
    assert!(app.audit_count("grant.create", "denied").await >= 2);
    assert!(app.audit_count("audit.read", "denied").await >= 2);
    // The auditor reads what the other two did.
    let auditor = &mut clients[2].1;
    let r = auditor.get("/api/v1/audit?actor=sysadmin&action=unit.create&result=success").await;
    assert_eq!(r.json()["total"], 1);
    let r = auditor.get("/api/v1/audit?actor=secadmin&action=grant.").await;
    assert!(r.json()["total"].as_i64().unwrap() >= 1);
}

#[tokio::test]
async fn one_account_never_holds_two_administrator_roles() {
    let app = TestApp::demo().await;
    let mut sec = app.admin("secadmin").await;
    let auditor_role = app.scalar("SELECT id FROM roles WHERE code = 'auditor'").await;
    let sys_role = app.scalar("SELECT id FROM roles WHERE code = 'sys_admin'").await;
    let sysadmin = app.user_id("sysadmin").await;
    let r = sec.json(Method::POST, &format!("/api/v1/users/{sysadmin}/grants"), json!({"role_id": auditor_role, "scope": "all"})).await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert!(r.json()["message"].as_str().unwrap().contains("三员分立"));
    // An ordinary user may become one administrator, but then not a second.
    let zhang = app.user_id("zhangwei").await;
    let r = sec.json(Method::POST, &format!("/api/v1/users/{zhang}/grants"), json!({"role_id": auditor_role, "scope": "all"})).await;
    assert_eq!(r.status, StatusCode::CREATED);
    let r = sec.json(Method::POST, &format!("/api/v1/users/{zhang}/grants"), json!({"role_id": sys_role, "scope": "all"})).await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert_eq!(app.scalar(&format!("SELECT COUNT(*) FROM grants WHERE user_id = {zhang}")).await, 2, "staff + auditor only");
    assert_eq!(app.audit_count("grant.create", "denied").await, 2);
}

#[tokio::test]
async fn nobody_changes_their_own_grants() {
    let app = TestApp::demo().await;
    let mut sec = app.admin("secadmin").await;
    let me = app.user_id("secadmin").await;
    let staff_role = app.scalar("SELECT id FROM roles WHERE code = 'staff'").await;
    let r = sec.json(Method::POST, &format!("/api/v1/users/{me}/grants"), json!({"role_id": staff_role, "scope": "all"})).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let own = app.scalar(&format!("SELECT id FROM grants WHERE user_id = {me}")).await;
    let r = sec.json(Method::DELETE, &format!("/api/v1/grants/{own}"), json!({})).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(app.scalar(&format!("SELECT COUNT(*) FROM grants WHERE user_id = {me}")).await, 1);
    // The system administrator cannot lock or reset their own account either.
    let mut sys = app.admin("sysadmin").await;
    let sys_id = app.user_id("sysadmin").await;
    let r = sys.json(Method::POST, &format!("/api/v1/users/{sys_id}/reset-password"), json!({})).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn custom_roles_cannot_carry_administrator_permissions() {
    let app = TestApp::demo().await;
    let mut sec = app.admin("secadmin").await;
    let r = sec.json(Method::POST, "/api/v1/roles", json!({"code": "sneaky", "name": "偷偷", "permissions": ["audit.read"]})).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.json()["field"], "permissions");
    let r = sec.json(Method::POST, "/api/v1/roles", json!({"code": "bad code", "name": "x"})).await;
    assert_eq!(r.json()["field"], "code");
    let builtin = app.scalar("SELECT id FROM roles WHERE code = 'staff'").await;
    let r = sec.json(Method::PUT, &format!("/api/v1/roles/{builtin}"), json!({"code": "staff", "name": "x", "permissions": []})).await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    // Through the page too.
    let r = sec
        .post_form(
            "/admin/roles/new",
            "/admin/roles",
            &[("code", "clerk"), ("name", "窗口人员"), ("permissions", "workbench.use"), ("permissions", "unit.read")],
        )
        .await;
    assert_eq!(r.location(), "/admin/roles?done=role_saved");
    let perms = app.scalar("SELECT COUNT(*) FROM role_permissions rp JOIN roles r ON r.id = rp.role_id WHERE r.code = 'clerk'").await;
    assert_eq!(perms, 2);
    assert_eq!(app.audit_count("role.create", "success").await, 1);
}
