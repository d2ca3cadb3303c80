//! Units and accounts through the admin pages.

use axum::http::StatusCode;

use crate::support::TestApp;

#[tokio::test]
async fn the_system_administrator_builds_the_units_tree() {
    let app = TestApp::demo().await;
    let mut sys = app.admin("sysadmin").await;
    let page = sys.get("/admin/units").await;
    assert_eq!(page.status, StatusCode::OK);
    for town in ["珠泉镇", "普满乡", "综合受理窗口", "12345政务服务便民热线中心"] {
        assert!(page.body.contains(town), "{town} listed");
    }
    let root = app.unit_id("嘉禾县人民政府").await.to_string();
    let r = sys.post_form("/admin/units/new", "/admin/units", &[("name", ""), ("parent_id", &root), ("kind", "department")]).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body.contains("名称") && r.body.contains("必填"), "names the field");
    let r = sys
        .post_form(
            "/admin/units/new",
            "/admin/units",
            &[("name", "数据局"), ("parent_id", &root), ("kind", "department"), ("region_code", "12345")],
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body.contains("GB/T 2260"));
    let r = sys
        .post_form(
            "/admin/units/new",
            "/admin/units",
            &[("name", "数据局"), ("parent_id", &root), ("kind", "department"), ("sort_order", "abc")],
        )
        .await;
    assert!(r.body.contains("排序"), "names sort_order");
    let r = sys
        .post_form(
            "/admin/units/new",
            "/admin/units",
            &[("name", "数据局"), ("parent_id", &root), ("kind", "department"), ("region_code", "431024")],
        )
        .await;
    assert_eq!(r.location(), "/admin/units?done=unit_saved");
    let data = app.unit_id("数据局").await;

    // Moving 行政审批服务局 under 数据局 moves its window too.
    let approval = app.unit_id("行政审批服务局（政务服务中心）").await;
    let r = sys
        .post_form(
            &format!("/admin/units/{approval}/edit"),
            &format!("/admin/units/{approval}"),
            &[("name", "行政审批服务局（政务服务中心）"), ("parent_id", &data.to_string()), ("kind", "department")],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let path: String =
        sqlx::query_scalar("SELECT path FROM units WHERE name = '综合受理窗口'").fetch_one(app.opened.db.pool()).await.unwrap();
    assert!(path.contains(&format!("/{data}/{approval}/")), "subtree moved: {path}");
    // A unit cannot move below itself.
    let window = app.unit_id("综合受理窗口").await.to_string();
    let r = sys
        .post_form(
            &format!("/admin/units/{data}/edit"),
            &format!("/admin/units/{data}"),
            &[("name", "数据局"), ("parent_id", &window), ("kind", "department")],
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    // Disable and enable.
    let r = sys.post_form("/admin/units", &format!("/admin/units/{data}/disable"), &[]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(app.scalar(&format!("SELECT enabled FROM units WHERE id = {data}")).await, 0);
    assert_eq!(app.audit_count("unit.create", "success").await, 1);
    assert_eq!(app.audit_count("unit.update", "success").await, 1);
    assert_eq!(app.audit_count("unit.disable", "success").await, 1);
}

#[tokio::test]
async fn the_system_administrator_manages_accounts() {
    let app = TestApp::demo().await;
    let mut sys = app.admin("sysadmin").await;
    let police = app.unit_id("公安局").await.to_string();
    let r = sys.post_form("/admin/users/new", "/admin/users", &[("username", "a b"), ("display_name", "x"), ("unit_id", &police)]).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body.contains("用户名须为"));
    let r = sys
        .post_form("/admin/users/new", "/admin/users", &[("username", "zhangwei"), ("display_name", "重名"), ("unit_id", &police)])
        .await;
    assert!(r.body.contains("已存在"), "duplicate user name");
    let r = sys
        .post_form(
            "/admin/users/new",
            "/admin/users",
            &[("username", "lijun"), ("display_name", "李军"), ("unit_id", &police), ("email", "bad")],
        )
        .await;
    assert!(r.body.contains("电子邮箱"), "names email");
    let r = sys
        .post_form(
            "/admin/users/new",
            "/admin/users",
            &[("username", "lijun"), ("display_name", "李军"), ("unit_id", &police), ("position", "民警")],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let id = app.user_id("lijun").await;
    let list = sys.get(&format!("/admin/users?unit={police}")).await;
    assert!(list.body.contains("lijun") && !list.body.contains("zhangwei"));
    let r = sys
        .post_form(
            &format!("/admin/users/{id}/edit"),
            &format!("/admin/users/{id}"),
            &[("display_name", "李俊"), ("unit_id", &police), ("position", "副所长")],
        )
        .await;
    assert_eq!(r.location(), format!("/admin/users/{id}?done=user_saved"));
    let r = sys.post_form(&format!("/admin/users/{id}"), &format!("/admin/users/{id}/disable"), &[]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let detail = sys.get(&format!("/admin/users/{id}")).await;
    assert!(detail.body.contains("李俊") && detail.body.contains("已停用"));
    let mut c = app.client();
    // A disabled account cannot log in, whatever the password.
    assert_eq!(c.login("lijun", "Anything#1").await.status, StatusCode::UNAUTHORIZED);
    let r = sys.get("/admin/users?unit=abc").await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn the_security_administrator_grants_with_a_scope_on_the_account_page() {
    let app = TestApp::demo().await;
    let mut sec = app.admin("secadmin").await;
    let id = app.user_id("zhoujun").await;
    let unit_admin = app.scalar("SELECT id FROM roles WHERE code = 'unit_admin'").await.to_string();
    let page = format!("/admin/users/{id}");
    let r = sec.post_form(&page, &format!("/admin/users/{id}/grants"), &[("role_id", &unit_admin), ("scope", "subtree")]).await;
    assert_eq!(r.location(), format!("/admin/users/{id}?done=grant_saved"));
    let r = sec.post_form(&page, &format!("/admin/users/{id}/grants"), &[("role_id", &unit_admin), ("scope", "galaxy")]).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    // zhoujun now manages 自然资源局's accounts.
    let mut zhou = app.staff("zhoujun").await;
    assert_eq!(zhou.get("/admin/users").await.status, StatusCode::OK);
    let grant = app
        .scalar(&format!("SELECT g.id FROM grants g JOIN roles r ON r.id = g.role_id WHERE g.user_id = {id} AND r.code = 'unit_admin'"))
        .await;
    let r = sec.post_form(&page, &format!("/admin/grants/{grant}/revoke"), &[]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let r = zhou.get("/admin/users").await;
    assert_eq!((r.status, r.location()), (StatusCode::SEE_OTHER, "/login"), "revocation applies at once: the session ends");
    assert_eq!(app.audit_count("grant.revoke", "success").await, 1);
}

#[tokio::test]
async fn regions_follow_gbt_2260() {
    let app = TestApp::demo().await;
    let mut sys = app.admin("sysadmin").await;
    let list = sys.get("/api/v1/regions").await.json();
    assert_eq!(list.as_array().unwrap().len(), 13, "province, city, county and ten towns");
    let r = sys
        .json(axum::http::Method::POST, "/api/v1/regions", serde_json::json!({"code": "431021", "name": "桂阳县", "parent_code": "4310"}))
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let r = sys
        .json(axum::http::Method::POST, "/api/v1/regions", serde_json::json!({"code": "431021", "name": "重复", "parent_code": "4310"}))
        .await;
    assert_eq!(r.json()["field"], "code");
    let r = sys
        .json(axum::http::Method::POST, "/api/v1/regions", serde_json::json!({"code": "441021", "name": "错误上级", "parent_code": "4310"}))
        .await;
    assert_eq!(r.json()["field"], "parent_code");
    let r = sys.post_form("/admin/regions", "/admin/regions", &[("code", "12a"), ("name", "x")]).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body.contains("GB/T 2260"));
    let mut sec = app.admin("secadmin").await;
    let r = sec
        .json(axum::http::Method::POST, "/api/v1/regions", serde_json::json!({"code": "431022", "name": "宜章县", "parent_code": "4310"}))
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(app.audit_count("region.create", "success").await, 1);
}
