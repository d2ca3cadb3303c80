//! CSV exports: one writer for all of them, neutralising cells that a spreadsheet would run as
//! formulas (CSV 公式注入).

use axum::http::{Method, StatusCode};
use serde_json::json;

use crate::{
    approval::{accepted, submitted_permit, task_for},
    support::TestApp,
};

#[tokio::test]
async fn a_display_name_that_is_a_formula_is_exported_as_text() {
    let app = TestApp::demo().await;
    let (_ent, _page, number) = submitted_permit(&app, "13900000091").await;
    accepted(&app, &number).await;
    let formula = r#"=HYPERLINK("http://x","y")"#;
    app.sql(&format!("UPDATE users SET display_name = '{formula}' WHERE username = 'zhoujun'")).await;
    let mut land = app.staff("zhoujun").await;
    let t = task_for(&mut land, &number, "review_land").await;
    assert_eq!(land.json(Method::POST, &format!("/api/v1/workflow/tasks/{t}/claim"), json!({})).await.status, StatusCode::NO_CONTENT);

    let mut sup = app.staff("jiangwei").await;
    let r = sup.get("/supervision/export.csv").await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body.starts_with('\u{feff}'), "BOM for spreadsheets");
    assert!(r.body.contains(r#""'=HYPERLINK(""http://x"",""y"")""#), "the name is text: {}", r.body);
    assert!(!r.body.contains(r#","=HYPERLINK"#) && !r.body.contains("\"=HYPERLINK"), "no cell starts with =: {}", r.body);

    // The audit export goes through the same writer.
    app.sql("UPDATE users SET display_name = '刘洋' WHERE username = 'zhoujun'").await;
    let mut auditor = app.admin("auditor").await;
    let mut c = app.client();
    c.login("=1+1", "x").await;
    let r = auditor.get("/audit/export.csv?action=auth.").await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body.contains(",'=1+1,"), "{}", r.body);
}
