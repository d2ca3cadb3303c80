//! The working-day calendar: API answers on the official 2026 schedule, imports refused whole,
//! single-day edits by the system administrator, refusals for everyone else, and the audit trail.

use axum::{
    body::Body,
    http::{Request, StatusCode},
};

use crate::support::{Client, Resp, TestApp};

/// Posts a TOML schedule to the import API with the session's CSRF header.
async fn post_toml(c: &mut Client, text: &str) -> Resp {
    let token = c.csrf("/me/tokens").await;
    let cookie = c.cookies.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; ");
    let req = Request::post("/api/v1/calendar/import")
        .header("host", "localhost")
        .header("cookie", cookie)
        .header("x-csrf-token", token)
        .header("x-forwarded-for", c.ip.clone())
        .header("content-type", "application/toml")
        .body(Body::from(text.to_string()))
        .unwrap();
    c.send(req).await
}

async fn day(c: &mut Client, date: &str) -> serde_json::Value {
    let r = c.get(&format!("/api/v1/calendar/is-working-day?date={date}")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.json()
}

async fn due(c: &mut Client, start: &str, days: u32) -> String {
    let r = c.get(&format!("/api/v1/calendar/deadline?start={start}&days={days}")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.json()["due"].as_str().unwrap_or_default().to_string()
}

const YEAR_2027: &str = r#"year = 2027
source = "test notice for 2027"

[[period]]
name = "元旦"
from = 2027-01-01
to = 2027-01-03

[[period]]
name = "春节"
from = 2027-02-06
to = 2027-02-13
makeup_workdays = [2027-01-31, 2027-02-20]
"#;

#[tokio::test]
async fn the_api_answers_from_the_official_schedule() {
    let app = TestApp::demo().await;
    assert_eq!(app.audit_count("calendar.seed", "success").await, 2, "2025 and 2026 stored at start-up");
    assert!(app.opened.calendar.ensure_official().await.unwrap().is_empty(), "seeding happens once");
    let mut staff = app.staff("zhaomin").await;

    // 20 working days from Tue 2026-02-10 cross the Spring Festival: Mon 2026-03-16.
    let r = staff.get("/api/v1/calendar/deadline?start=2026-02-10&days=20").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.json()["due"], "2026-03-16");
    assert_eq!(r.json()["unscheduled_years"], serde_json::json!([]));
    assert_eq!(due(&mut staff, "2026-09-18", 20).await, "2026-10-22");

    let r = staff.get("/api/v1/calendar/working-days?from=2026-09-30&to=2026-10-12").await;
    assert_eq!(r.json()["working_days"], 4, "Oct 8, 9, the make-up Saturday Oct 10, and Oct 12");
    let r = staff.get("/api/v1/calendar/working-days?from=2026-12-01&to=2027-01-31").await;
    assert_eq!(r.json()["unscheduled_years"], serde_json::json!([2027]));

    let d = day(&mut staff, "2026-02-14").await;
    assert_eq!((d["working"].as_bool(), d["kind"].as_str(), d["name"].as_str()), (Some(true), Some("makeup_workday"), Some("春节")));
    let d = day(&mut staff, "2026-10-03").await;
    assert_eq!((d["working"].as_bool(), d["kind"].as_str(), d["name"].as_str()), (Some(false), Some("holiday"), Some("国庆节")));
    let d = day(&mut staff, "2026-03-07").await;
    assert_eq!((d["kind"].as_str(), d["scheduled"].as_bool()), (Some("weekend"), Some(true)));

    let r = staff.get("/api/v1/calendar/years/2026").await;
    assert_eq!(r.status, StatusCode::OK);
    let y = r.json();
    assert!(y["source"].as_str().unwrap().contains("国务院办公厅关于2026年部分节假日安排的通知"));
    assert_eq!(y["periods"].as_array().unwrap().len(), 7);
    assert_eq!(y["working_days"], 248);
    assert_eq!(staff.get("/api/v1/calendar/years/2031").await.status, StatusCode::NOT_FOUND);

    // Bad input: 422 naming the field, localised, never 500.
    let r = staff.get("/api/v1/calendar/deadline?start=2026-02-30&days=20").await;
    assert_eq!((r.status, r.json()["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("start")));
    assert!(r.json()["message"].as_str().unwrap().starts_with("起算日期"), "{}", r.body);
    let r = staff.get("/api/v1/calendar/deadline?start=2026-02-10&days=abc").await;
    assert_eq!((r.status, r.json()["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("days")));
    assert!(r.json()["message"].as_str().unwrap().starts_with("工作日数"), "{}", r.body);
    let r = staff.get("/api/v1/calendar/deadline?start=2026-02-10&days=99999999").await;
    assert_eq!(r.json()["field"], "days");
    let r = staff.get("/api/v1/calendar/working-days?to=2026-01-01").await;
    assert_eq!((r.status, r.json()["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("from")));
    let r = staff.get("/api/v1/calendar/is-working-day?date=9999-01-01").await;
    assert_eq!(r.json()["field"], "date");
    let r = staff.get("/api/v1/calendar/years/abc").await;
    assert_eq!((r.status, r.json()["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("year")));
    // Anonymous callers are asked to log in.
    assert_eq!(app.client().get("/api/v1/calendar/is-working-day?date=2026-01-01").await.status, StatusCode::UNAUTHORIZED);
    // The OpenAPI document describes the calendar.
    let spec = staff.get("/api/openapi.json").await.json();
    assert!(spec["paths"]["/api/v1/calendar/deadline"]["get"].is_object());
}

#[tokio::test]
async fn an_import_with_overlapping_periods_is_refused_whole() {
    let app = TestApp::demo().await;
    let mut sys = app.admin("sysadmin").await;
    let days_before = app.scalar("SELECT COUNT(*) FROM calendar_days").await;

    let overlapping = YEAR_2027.replace("from = 2027-02-06", "from = 2027-01-02");
    let r = post_toml(&mut sys, &overlapping).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    assert_eq!(r.json()["field"], "period[1].from");
    let message = r.json()["message"].as_str().unwrap().to_string();
    assert!(message.contains("重叠") && message.contains("第 11 行") && message.contains("元旦"), "{message}");
    assert_eq!(app.scalar("SELECT COUNT(*) FROM calendar_years WHERE year = 2027").await, 0, "nothing stored");
    assert_eq!(app.scalar("SELECT COUNT(*) FROM calendar_days").await, days_before);
    assert_eq!(app.audit_count("calendar.import", "success").await, 0);

    // Replacing 2026 with a broken file leaves 2026 as it was.
    let broken =
        "year = 2026\nsource = \"x\"\n[[period]]\nname = \"春节\"\nfrom = 2026-02-15\nto = 2026-02-23\nmakeup_workdays = [2026-02-16]\n";
    let r = post_toml(&mut sys, broken).await;
    assert_eq!(r.json()["field"], "period[0].makeup_workdays", "{}", r.body);
    assert_eq!(app.scalar("SELECT COUNT(*) FROM calendar_days").await, days_before);
    assert_eq!(due(&mut sys, "2026-02-10", 20).await, "2026-03-16");
    let r = post_toml(&mut sys, "year = 2026\nsource = \n").await;
    assert_eq!((r.status, r.json()["code"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid")), "{}", r.body);

    // A good file is stored and answers at once.
    assert_eq!(due(&mut sys, "2027-02-05", 1).await, "2027-02-08", "weekends only before the import");
    let r = post_toml(&mut sys, YEAR_2027).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.json()["year"], 2027);
    assert_eq!(due(&mut sys, "2027-02-05", 1).await, "2027-02-15", "the first working day after the Spring Festival");
    assert_eq!(app.audit_count("calendar.import", "success").await, 1);
    let details: String =
        sqlx::query_scalar("SELECT details FROM audit_log WHERE action = 'calendar.import'").fetch_one(app.opened.db.pool()).await.unwrap();
    assert!(details.contains("test notice for 2027") && details.contains("2027-02-06"), "{details}");
}

#[tokio::test]
async fn the_administrator_changes_one_day_and_the_answers_follow() {
    let app = TestApp::demo().await;
    let mut sys = app.admin("sysadmin").await;
    let mut staff = app.staff("zhaomin").await;
    assert_eq!(day(&mut staff, "2026-03-02").await["kind"], "working");
    assert_eq!(due(&mut staff, "2026-02-27", 1).await, "2026-02-28");

    // A local holiday on Mon 2026-03-02.
    let r = sys
        .post_form("/admin/calendar?year=2026", "/admin/calendar/day", &[("date", "2026-03-02"), ("kind", "holiday"), ("name", "县庆")])
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert_eq!(r.location(), "/admin/calendar?year=2026&done=day_saved");
    let d = day(&mut staff, "2026-03-02").await;
    assert_eq!((d["kind"].as_str(), d["name"].as_str()), (Some("holiday"), Some("县庆")));
    assert_eq!(due(&mut staff, "2026-02-28", 1).await, "2026-03-03");

    // The Saturday make-up day on 2026-02-28 cleared: Friday's next working day is Tuesday.
    let r = sys.post_form("/admin/calendar", "/admin/calendar/day", &[("date", "2026-02-28"), ("kind", "clear"), ("name", "")]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert_eq!(due(&mut staff, "2026-02-27", 1).await, "2026-03-03");

    // A make-up working day must be a Saturday or Sunday; the form says so and nothing changes.
    let r = sys.post_form("/admin/calendar", "/admin/calendar/day", &[("date", "2026-03-04"), ("kind", "workday"), ("name", "x")]).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body.contains("调休上班日必须是周六或周日"), "{}", r.body);
    let r = sys.post_form("/admin/calendar", "/admin/calendar/day", &[("date", "2026-13-04"), ("kind", "holiday"), ("name", "x")]).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(app.audit_count("calendar.set_day", "success").await, 1);
    assert_eq!(app.audit_count("calendar.clear_day", "success").await, 1);
    let details: String = sqlx::query_scalar("SELECT details FROM audit_log WHERE action = 'calendar.clear_day'")
        .fetch_one(app.opened.db.pool())
        .await
        .unwrap();
    assert!(details.contains("2026-02-28") && details.contains("workday"), "the audit record holds what was there: {details}");

    // The page shows the change with its marker.
    let page = staff.get("/admin/calendar?year=2026").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("2026-03-02 县庆 放假") && page.body.contains("国务院办公厅关于2026年部分节假日安排的通知"));
    assert!(!page.body.contains("/admin/calendar/import"), "no import form for staff");
    let page = sys.get("/admin/calendar?year=2026").await;
    assert!(page.body.contains("/admin/calendar/import") && page.body.contains("[[period]]"));
    let page = staff.get("/admin/calendar?year=2031").await;
    assert!(page.body.contains("calendar-no-schedule"));
    assert_eq!(staff.get("/admin/calendar?year=abc").await.status, StatusCode::UNPROCESSABLE_ENTITY);

    // A refused import through the page keeps the text and names the problem.
    let bad = YEAR_2027.replace("2027-02-20]", "2027-02-22]");
    let r = sys.post_form("/admin/calendar", "/admin/calendar/import", &[("text", &bad)]).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body.contains("调休上班日必须是周六或周日") && r.body.contains("2027-02-22"), "{}", r.body);
    let r = sys.post_form("/admin/calendar", "/admin/calendar/import", &[("text", YEAR_2027)]).await;
    assert_eq!(r.location(), "/admin/calendar?year=2027&done=imported");
}

#[tokio::test]
async fn other_staff_may_read_but_not_change_the_calendar() {
    let app = TestApp::demo().await;
    let mut staff = app.staff("zhaomin").await;
    let days = app.scalar("SELECT COUNT(*) FROM calendar_days").await;
    let r = staff.post_form("/admin/calendar", "/admin/calendar/day", &[("date", "2026-03-02"), ("kind", "holiday"), ("name", "x")]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = staff.post_form("/admin/calendar", "/admin/calendar/day", &[("date", "2026-02-15"), ("kind", "clear")]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = post_toml(&mut staff, YEAR_2027).await;
    assert_eq!((r.status, r.json()["code"].as_str()), (StatusCode::FORBIDDEN, Some("forbidden")));
    // Also the other administrators: the security administrator holds no `config.write`.
    let mut sec = app.admin("secadmin").await;
    assert_eq!(post_toml(&mut sec, YEAR_2027).await.status, StatusCode::FORBIDDEN);

    assert_eq!(app.scalar("SELECT COUNT(*) FROM calendar_days").await, days, "nothing changed");
    assert_eq!(app.scalar("SELECT COUNT(*) FROM calendar_years WHERE year = 2027").await, 0);
    assert_eq!(day(&mut staff, "2026-03-02").await["kind"], "working");
    assert_eq!(day(&mut staff, "2026-02-15").await["kind"], "holiday");
    assert_eq!(app.audit_count("calendar.set_day", "denied").await, 1);
    assert_eq!(app.audit_count("calendar.clear_day", "denied").await, 1);
    assert_eq!(app.audit_count("calendar.import", "denied").await, 2);
    assert_eq!(app.audit_count("calendar.set_day", "success").await + app.audit_count("calendar.import", "success").await, 0);
    assert!(app.opened.audit.verify(&app.opened.db).await.unwrap().ok());
}

#[tokio::test]
async fn a_schedule_file_uploads_from_the_page() {
    let app = TestApp::demo().await;
    let mut sys = app.admin("sysadmin").await;
    let r = sys.post_multipart("/admin/calendar", "/admin/calendar/import", &[("text", "")], ("file", "2027.toml", YEAR_2027)).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert!(r.location().contains("year=2027"));
    assert_eq!(app.audit_count("calendar.import", "success").await, 1);
    let broken = YEAR_2027.replace("year = 2027", "year = \"x\"");
    let r = sys.post_multipart("/admin/calendar", "/admin/calendar/import", &[], ("file", "bad.toml", &broken)).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body.contains("calendar-import-error"));
}
