//! Workflow through the API: upload a modeler file, run a parallel approval across departments,
//! refusals that store nothing, task permissions, concurrent completion, send back and withdraw,
//! and the timer job (boundary timers, deadline warnings).

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::{Client, TestApp};

const PARALLEL: &str = include_str!("../../../crates/workflow/tests/fixtures/parallel_approval.bpmn");

/// The bpmn.io fixture with the lead department named as in the demo county.
fn approval_bpmn() -> String {
    PARALLEL.replace("tongban:candidateUnit=\"行政审批服务局\"", "tongban:candidateUnit=\"行政审批服务局（政务服务中心）\"")
}

async fn upload(c: &mut Client, xml: &str) -> crate::support::Resp {
    c.raw(Method::POST, "/api/v1/workflow/definitions", "application/xml", xml).await
}

async fn start(c: &mut Client, title: &str) -> i64 {
    let r = c
        .json(
            Method::POST,
            "/api/v1/workflow/instances",
            json!({"process": "parallel_approval", "title": title, "business_key": "JH-2026-0001"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    r.json()["id"].as_i64().unwrap_or_default()
}

async fn todo(c: &mut Client) -> Vec<Value> {
    let r = c.get("/api/v1/workflow/tasks").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.json().as_array().cloned().unwrap_or_default()
}

async fn task_at(c: &mut Client, instance: i64, step: &str) -> i64 {
    let list = todo(c).await;
    let t = list.iter().find(|t| t["instance_id"] == instance && t["step"] == step);
    t.and_then(|t| t["id"].as_i64()).unwrap_or_else(|| panic!("no {step} in to-do: {list:?}"))
}

async fn act(c: &mut Client, task: i64, action: &str, body: Value) -> crate::support::Resp {
    c.json(Method::POST, &format!("/api/v1/workflow/tasks/{task}/{action}"), body).await
}

async fn claim_and_complete(c: &mut Client, task: i64, body: Value) {
    let r = act(c, task, "claim", json!({})).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    let r = act(c, task, "complete", body).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
}

#[tokio::test]
async fn a_modeler_file_uploads_and_runs_a_parallel_approval() {
    let app = TestApp::demo().await;
    let mut sys = app.admin("sysadmin").await;
    let r = upload(&mut sys, &approval_bpmn()).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.json()["version"], 1);
    let def_id = r.json()["id"].as_i64().unwrap_or_default();
    let r = sys.get(&format!("/api/v1/workflow/definitions/{def_id}")).await;
    let steps = r.json()["steps"].as_array().cloned().unwrap_or_default();
    assert!(steps.iter().any(|s| s["name"] == "自然资源局审查" && s["due_working_days"] == 5), "{steps:?}");
    assert_eq!(upload(&mut sys, &approval_bpmn()).await.status, StatusCode::CONFLICT, "the same file twice is not a new version");

    let mut clerk = app.staff("liuyang").await;
    let id = start(&mut clerk, "某公司建设项目并联审批").await;
    let mut land = app.staff("zhoujun").await;
    let mut housing = app.staff("xuhui").await;
    let mut market = app.staff("huangli").await;
    let mut outsider = app.staff("heping").await;

    let t_land = task_at(&mut land, id, "Task_land").await;
    let listed = todo(&mut land).await;
    assert!(listed[0]["due_on"].as_str().is_some_and(|d| d.len() == 10), "deadline from the calendar: {listed:?}");
    assert!(todo(&mut outsider).await.is_empty(), "other units do not see the queue");
    let r = act(&mut outsider, t_land, "claim", json!({})).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "a non-candidate cannot claim");
    let r = act(&mut land, t_land, "complete", json!({"opinion": "同意"})).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "claim first: {}", r.body);
    claim_and_complete(&mut land, t_land, json!({"opinion": "用地符合规划，同意"})).await;
    let r = act(&mut land, t_land, "complete", json!({})).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "a done task cannot be done twice");

    let t = task_at(&mut housing, id, "Task_housing").await;
    claim_and_complete(&mut housing, t, json!({"opinion": "同意"})).await;
    let mut lead = app.staff("zhaomin").await;
    assert!(todo(&mut lead).await.iter().all(|t| t["instance_id"] != id), "the join waits for the third department");
    let t = task_at(&mut market, id, "Task_market").await;
    claim_and_complete(&mut market, t, json!({"opinion": "同意"})).await;

    let t = task_at(&mut lead, id, "Task_decide").await;
    let r = act(&mut lead, t, "claim", json!({})).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let r = act(&mut lead, t, "complete", json!({"opinion": "准予许可", "variables": {"approved": "yes"}})).await;
    assert_eq!((r.status, r.json()["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("variables.approved")), "type-checked data");
    let r = act(&mut lead, t, "complete", json!({"opinion": "准予许可", "variables": {"approved": true}})).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);

    let r = clerk.get(&format!("/api/v1/workflow/instances/{id}")).await;
    assert_eq!(r.json()["status"], "completed", "{}", r.body);
    assert_eq!(r.json()["tasks"].as_array().map(Vec::len), Some(4));
    assert_eq!(outsider.get(&format!("/api/v1/workflow/instances/{id}")).await.status, StatusCode::NOT_FOUND);
    let r = land.get("/api/v1/workflow/tasks?list=done").await;
    assert_eq!(r.json()[0]["opinion"], "用地符合规划，同意");
    assert_eq!(app.audit_count("workflow.task.complete", "success").await, 4);
    assert_eq!(app.scalar("SELECT COUNT(*) FROM outbox WHERE topic = 'workflow.instance.completed'").await, 1);
}

#[tokio::test]
async fn bad_files_and_missing_permissions_store_nothing() {
    let app = TestApp::demo().await;
    let mut sys = app.admin("sysadmin").await;
    let demo_definitions = app.scalar("SELECT COUNT(*) FROM wf_definitions").await;
    let r = upload(&mut sys, "<bpmn:definitions xmlns:bpmn='http://www.omg.org/spec/BPMN/20100524/MODEL'><oops").await;
    assert_eq!((r.status, r.json()["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("file")));
    let bad = approval_bpmn()
        .replace("<bpmn:userTask id=\"Task_market\"", "<bpmn:scriptTask id=\"Task_market\"")
        .replace("</bpmn:userTask>\n    <bpmn:sequenceFlow id=\"Flow_a2\"", "</bpmn:scriptTask>\n    <bpmn:sequenceFlow id=\"Flow_a2\"");
    let r = upload(&mut sys, &bad).await;
    let msg = r.json()["message"].as_str().unwrap_or_default().to_string();
    assert!(msg.contains("Task_market") && msg.contains("line 28") && msg.contains("scriptTask"), "names the element and line: {msg}");
    let no_fork =
        approval_bpmn().replace("<bpmn:parallelGateway id=\"Fork_1\">", "<bpmn:exclusiveGateway id=\"Fork_1\" default=\"Flow_a\">");
    let no_fork = no_fork.replacen("</bpmn:parallelGateway>", "</bpmn:exclusiveGateway>", 1);
    let r = upload(&mut sys, &no_fork).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    let r = sys.raw(Method::POST, "/api/v1/workflow/definitions", "text/plain", &approval_bpmn()).await;
    assert_eq!((r.status, r.json()["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("content-type")));
    let mut staff = app.staff("zhangwei").await;
    assert_eq!(upload(&mut staff, &approval_bpmn()).await.status, StatusCode::FORBIDDEN);
    assert_eq!(app.audit_count("workflow.definition.upload", "denied").await, 1);
    assert_eq!(app.scalar("SELECT COUNT(*) FROM wf_definitions").await, demo_definitions, "nothing half-stored");
    let r = staff.json(Method::POST, "/api/v1/workflow/instances", json!({"process": "parallel_approval", "title": "x"})).await;
    assert_eq!((r.status, r.json()["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("key")));
    let mut auditor = app.admin("auditor").await;
    let r = auditor.json(Method::POST, "/api/v1/workflow/instances", json!({"process": "parallel_approval", "title": "x"})).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "the auditor cannot start processes");
}

#[tokio::test]
async fn two_concurrent_completions_of_one_task_one_wins() {
    let app = TestApp::demo().await;
    let mut sys = app.admin("sysadmin").await;
    assert_eq!(upload(&mut sys, &approval_bpmn()).await.status, StatusCode::CREATED);
    let mut clerk = app.staff("liuyang").await;
    let id = start(&mut clerk, "并发测试").await;
    let mut a = app.staff("zhoujun").await;
    let t = task_at(&mut a, id, "Task_land").await;
    assert_eq!(act(&mut a, t, "claim", json!({})).await.status, StatusCode::NO_CONTENT);
    let mut b = a.clone_session();
    let (ra, rb) = tokio::join!(act(&mut a, t, "complete", json!({"opinion": "一"})), act(&mut b, t, "complete", json!({"opinion": "二"})));
    let mut statuses = [ra.status, rb.status];
    statuses.sort();
    assert_eq!(statuses, [StatusCode::NO_CONTENT, StatusCode::CONFLICT], "{} / {}", ra.body, rb.body);
    assert_eq!(app.audit_count("workflow.task.complete", "success").await, 1);
}

#[tokio::test]
async fn send_back_and_withdraw_through_the_api() {
    let app = TestApp::demo().await;
    let mut sys = app.admin("sysadmin").await;
    assert_eq!(upload(&mut sys, &approval_bpmn()).await.status, StatusCode::CREATED);
    let mut clerk = app.staff("liuyang").await;
    let id = start(&mut clerk, "退回与撤回").await;
    let mut land = app.staff("zhoujun").await;
    let mut housing = app.staff("xuhui").await;
    let mut market = app.staff("huangli").await;
    let mut lead = app.staff("zhaomin").await;
    let t = task_at(&mut housing, id, "Task_housing").await;
    claim_and_complete(&mut housing, t, json!({})).await;
    let r = act(&mut housing, t, "withdraw", json!({})).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    let again = task_at(&mut housing, id, "Task_housing").await;
    assert_eq!(
        act(&mut housing, again, "complete", json!({})).await.status,
        StatusCode::NO_CONTENT,
        "a withdrawn step returns to its doer"
    );
    let t = task_at(&mut land, id, "Task_land").await;
    claim_and_complete(&mut land, t, json!({})).await;
    let t = task_at(&mut market, id, "Task_market").await;
    claim_and_complete(&mut market, t, json!({})).await;
    let r = act(&mut market, t, "withdraw", json!({})).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "the decision has not started: {}", r.body);
    let t = task_at(&mut market, id, "Task_market").await;
    assert_eq!(act(&mut market, t, "complete", json!({})).await.status, StatusCode::NO_CONTENT);
    let decide = task_at(&mut lead, id, "Task_decide").await;
    assert_eq!(act(&mut lead, decide, "claim", json!({})).await.status, StatusCode::NO_CONTENT);
    let r = act(&mut market, t, "withdraw", json!({})).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "the decision started: no withdraw");
    let r = act(&mut lead, decide, "send-back", json!({"target": "StartEvent_1"})).await;
    assert_eq!((r.status, r.json()["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("target")));
    let r = act(&mut lead, decide, "send-back", json!({"target": "Task_land", "reason": "用地红线图不清晰"})).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    let back = task_at(&mut land, id, "Task_land").await;
    let listed = todo(&mut land).await;
    assert_eq!(listed.iter().find(|t| t["id"] == back).map(|t| t["assignee_id"].clone()), Some(json!(app.user_id("zhoujun").await)));
    assert_eq!(act(&mut land, back, "complete", json!({})).await.status, StatusCode::NO_CONTENT, "back to the same person, no claim");
    let decide = task_at(&mut lead, id, "Task_decide").await;
    let zhang = app.user_id("zhangwei").await;
    assert_eq!(act(&mut lead, decide, "claim", json!({})).await.status, StatusCode::NO_CONTENT);
    assert_eq!(act(&mut lead, decide, "add-cosigner", json!({"user_id": zhang})).await.status, StatusCode::NO_CONTENT);
    assert_eq!(act(&mut lead, decide, "complete", json!({"variables": {"approved": false}})).await.status, StatusCode::NO_CONTENT);
    let mut office = app.staff("zhangwei").await;
    let co = task_at(&mut office, id, "Task_decide").await;
    assert_eq!(act(&mut office, co, "complete", json!({"opinion": "会签同意"})).await.status, StatusCode::NO_CONTENT);
    let r = clerk.get(&format!("/api/v1/workflow/instances/{id}")).await;
    assert_eq!(r.json()["status"], "completed");
    assert_eq!(app.audit_count("workflow.task.send_back", "success").await, 1);
    assert_eq!(app.audit_count("workflow.task.withdraw", "success").await, 2);
}

const TIMED: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:tongban="http://tongban.org/schema/bpmn/1.0" id="d">
<bpmn:process id="timed" name="限时办理" isExecutable="true">
<bpmn:startEvent id="s"/><bpmn:sequenceFlow id="f1" sourceRef="s" targetRef="a"/>
<bpmn:userTask id="a" name="初审" tongban:candidateUnit="自然资源局" tongban:dueWorkingDays="3"/><bpmn:sequenceFlow id="f2" sourceRef="a" targetRef="e"/>
<bpmn:boundaryEvent id="t" attachedToRef="a"><bpmn:timerEventDefinition><bpmn:timeDuration>P5D</bpmn:timeDuration></bpmn:timerEventDefinition></bpmn:boundaryEvent>
<bpmn:sequenceFlow id="f3" sourceRef="t" targetRef="b"/>
<bpmn:userTask id="b" name="超时督办" tongban:candidateUnit="县政府办公室"/><bpmn:sequenceFlow id="f4" sourceRef="b" targetRef="e"/>
<bpmn:endEvent id="e"/>
</bpmn:process>
</bpmn:definitions>"#;

#[tokio::test]
async fn the_timer_job_warns_marks_overdue_and_fires_boundary_timers() {
    let app = TestApp::demo().await;
    let mut sys = app.admin("sysadmin").await;
    assert_eq!(upload(&mut sys, TIMED).await.status, StatusCode::CREATED);
    let mut clerk = app.staff("liuyang").await;
    let r = clerk.json(Method::POST, "/api/v1/workflow/instances", json!({"process": "timed", "title": "限时"})).await;
    let id = r.json()["id"].as_i64().unwrap_or_default();
    let mut land = app.staff("zhoujun").await;
    let listed = todo(&mut land).await;
    assert_eq!(listed[0]["alert"], "normal");
    let wf = &app.opened.workflow;
    let now = tongban_platform::clock::now_millis();
    let report = wf.tick(now).await.expect("tick");
    assert_eq!((report.timers_fired, report.warned, report.overdue), (0, 0, 0));
    // Time passes: the deadline is tomorrow's working day, then yesterday.
    app.sql("UPDATE wf_tasks SET due_on = '2000-01-03' WHERE node_id = 'a'").await;
    let report = wf.tick(now).await.expect("tick");
    assert_eq!(report.overdue, 1);
    assert_eq!(todo(&mut land).await[0]["alert"], "overdue");
    assert_eq!(app.scalar("SELECT COUNT(*) FROM outbox WHERE topic = 'workflow.task.overdue'").await, 1);
    assert_eq!(wf.tick(now).await.expect("tick").overdue, 0, "notified once");
    app.sql("UPDATE wf_timers SET due_on = '2000-01-03'").await;
    let report = wf.tick(now).await.expect("tick");
    assert_eq!(report.timers_fired, 1);
    let r = clerk.get(&format!("/api/v1/workflow/instances/{id}")).await;
    let tasks = r.json()["tasks"].as_array().cloned().unwrap_or_default();
    assert_eq!(
        tasks.iter().map(|t| (t["step"].as_str().unwrap_or(""), t["status"].as_str().unwrap_or(""))).collect::<Vec<_>>(),
        vec![("a", "timed_out"), ("b", "open")]
    );
    assert_eq!(app.scalar("SELECT COUNT(*) FROM wf_timers").await, 0);
}

#[tokio::test]
async fn pages_upload_a_file_start_and_handle_a_task() {
    let app = TestApp::demo().await;
    let mut sys = app.admin("sysadmin").await;
    let r = sys
        .post_multipart("/admin/workflows", "/admin/workflows", &[], ("file", "approval.bpmn", "<bpmn:definitions xmlns:bpmn='x'/>"))
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body.contains("upload-error"), "the page shows why");
    let r = sys.post_multipart("/admin/workflows", "/admin/workflows", &[], ("file", "approval.bpmn", &approval_bpmn())).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let page = r.location().split('?').next().unwrap_or_default().to_string();
    let r = sys.get(&page).await;
    assert!(r.body.contains("<svg") && r.body.contains("自然资源局审查") && r.body.contains("5 个工作日"), "diagram and steps");
    let no_csrf = sys.post_raw_form(&format!("{page}/start"), &[("title", "x")]).await;
    assert_eq!(no_csrf.status, StatusCode::FORBIDDEN);

    let mut clerk = app.staff("liuyang").await;
    let r = clerk
        .post_form(&page, &format!("{page}/start"), &[("title", "页面发起的审批"), ("business_key", "JH-1"), ("f.approved", "on")])
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let instance_page = r.location().split('?').next().unwrap_or_default().to_string();

    let mut land = app.staff("zhoujun").await;
    let r = land.get("/tasks").await;
    assert!(r.body.contains("自然资源局审查") && r.body.contains("页面发起的审批"), "to-do list");
    let r = land.get(&instance_page).await;
    assert!(r.body.contains("/claim"), "a claim button for the queue task");
    let t = task_at(&mut land, instance_page.rsplit('/').next().and_then(|s| s.parse().ok()).unwrap_or_default(), "Task_land").await;
    let iid = instance_page.rsplit('/').next().unwrap_or_default().to_string();
    let r = land.post_form(&instance_page, &format!("/workflow/tasks/{t}/claim"), &[("instance_id", &iid)]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let r = land.post_form(&instance_page, &format!("/workflow/tasks/{t}/complete"), &[("instance_id", &iid), ("opinion", "同意")]).await;
    assert_eq!(r.location(), "/tasks?done=task_done");
    let r = land.get("/tasks?list=done").await;
    assert!(r.body.contains("同意"));
    let r = land.post_form(&instance_page, &format!("/workflow/tasks/{t}/complete"), &[("instance_id", &iid)]).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "done twice: the page says why");
    let mut outsider = app.staff("heping").await;
    assert_eq!(outsider.get(&instance_page).await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn running_instances_stay_on_their_version() {
    let app = TestApp::demo().await;
    let mut sys = app.admin("sysadmin").await;
    assert_eq!(upload(&mut sys, &approval_bpmn()).await.status, StatusCode::CREATED);
    let mut clerk = app.staff("liuyang").await;
    let old = start(&mut clerk, "按第一版办理").await;
    // Version 2 drops the housing review.
    let v2 = approval_bpmn()
        .replace("<bpmn:outgoing>Flow_b</bpmn:outgoing>", "")
        .replace("<bpmn:sequenceFlow id=\"Flow_b\" sourceRef=\"Fork_1\" targetRef=\"Task_housing\" />", "")
        .replace("<bpmn:incoming>Flow_b2</bpmn:incoming>", "")
        .replace("<bpmn:sequenceFlow id=\"Flow_b2\" sourceRef=\"Task_housing\" targetRef=\"Join_1\" />", "");
    let start_of_task = v2.find("<bpmn:userTask id=\"Task_housing\"").unwrap_or_default();
    let end_of_task =
        v2[start_of_task..].find("</bpmn:userTask>").map(|e| start_of_task + e + "</bpmn:userTask>".len()).unwrap_or_default();
    let v2 = format!("{}{}", &v2[..start_of_task], &v2[end_of_task..]);
    let r = upload(&mut sys, &v2).await;
    assert_eq!((r.status, r.json()["version"].as_i64()), (StatusCode::CREATED, Some(2)), "{}", r.body);
    let new = start(&mut clerk, "按第二版办理").await;
    let r = clerk.get(&format!("/api/v1/workflow/instances/{old}")).await;
    assert!(r.json()["process"].as_str().is_some_and(|p| p.ends_with("v1")));
    assert_eq!(r.json()["tasks"].as_array().map(Vec::len), Some(3), "v1: three departments");
    let r = clerk.get(&format!("/api/v1/workflow/instances/{new}")).await;
    assert!(r.json()["process"].as_str().is_some_and(|p| p.ends_with("v2")));
    assert_eq!(r.json()["tasks"].as_array().map(Vec::len), Some(2), "v2: two departments");
    let mut housing = app.staff("xuhui").await;
    let t = task_at(&mut housing, old, "Task_housing").await;
    claim_and_complete(&mut housing, t, json!({})).await;
}

#[tokio::test]
async fn opinions_carry_attachments_for_the_instance_participants_only() {
    let app = TestApp::demo().await;
    let mut sys = app.admin("sysadmin").await;
    assert_eq!(upload(&mut sys, &approval_bpmn()).await.status, StatusCode::CREATED);
    let mut clerk = app.staff("liuyang").await;
    let id = start(&mut clerk, "附件测试").await;
    let mut land = app.staff("zhoujun").await;
    let t = task_at(&mut land, id, "Task_land").await;
    let page = format!("/workflow/instances/{id}");
    let iid = id.to_string();
    let r = land
        .post_multipart(
            &page,
            &format!("/workflow/tasks/{t}/attachments"),
            &[("instance_id", &iid)],
            ("file", "意见.pdf", "%PDF-1.7 opinion"),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "only the holder attaches: claim first");
    assert_eq!(act(&mut land, t, "claim", json!({})).await.status, StatusCode::NO_CONTENT);
    let r =
        land.post_multipart(&page, &format!("/workflow/tasks/{t}/attachments"), &[("instance_id", &iid)], ("file", "意见.exe", "MZ")).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "type checked");
    let r = land
        .post_multipart(
            &page,
            &format!("/workflow/tasks/{t}/attachments"),
            &[("instance_id", &iid)],
            ("file", "用地审查意见.pdf", "%PDF-1.7 opinion"),
        )
        .await;
    assert_eq!(r.location(), format!("{page}?done=attached"), "{}", r.body);
    assert_eq!(act(&mut land, t, "complete", json!({"opinion": "见附件"})).await.status, StatusCode::NO_CONTENT);
    let r = clerk.get(&page).await;
    assert!(r.body.contains("用地审查意见.pdf"), "the starter sees the attachment");
    let aid = app.scalar("SELECT id FROM wf_task_attachments").await;
    assert_eq!(clerk.get(&format!("{page}/attachments/{aid}")).await.body, "%PDF-1.7 opinion");
    let mut outsider = app.staff("heping").await;
    assert_eq!(outsider.get(&format!("{page}/attachments/{aid}")).await.status, StatusCode::NOT_FOUND);
    assert_eq!(app.audit_count("workflow.task.attach", "success").await, 1);
}

#[tokio::test]
async fn long_to_do_lists_page_by_deadline_and_every_instance_stays_actionable() {
    let app = TestApp::demo().await;
    let mut clerk = app.staff("liuyang").await;
    let mut last = 0;
    for i in 0..201 {
        let r = clerk
            .json(
                Method::POST,
                "/api/v1/workflow/instances",
                json!({"process": "individual_business", "title": format!("个体户登记 {i:03}")}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        last = r.json()["id"].as_i64().unwrap_or_default();
    }
    let mut market = app.staff("huangli").await;
    let r = market.get("/api/v1/workflow/tasks").await;
    assert_eq!(r.json().as_array().map(Vec::len), Some(200), "a page holds 200");
    assert_eq!(r.headers.get("x-next-page").and_then(|v| v.to_str().ok()), Some("2"));
    assert!(!r.body.contains(&format!("\"instance_id\":{last},")), "the newest of equal deadlines comes last");
    let r = market.get("/api/v1/workflow/tasks?page=2").await;
    let rest = r.json().as_array().cloned().unwrap_or_default();
    assert_eq!((rest.len(), rest.first().map(|t| t["instance_id"].clone())), (1, Some(json!(last))), "{}", r.body);
    assert!(r.headers.get("x-next-page").is_none(), "the last page");
    let r = market.get("/api/v1/workflow/tasks?page=0").await;
    assert_eq!((r.status, r.json()["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("page")));
    let r = market.get("/tasks?page=2").await;
    assert_eq!(r.element_text("page-number"), "2");
    assert!(r.body.contains("rel=\"prev\"") && !r.body.contains("rel=\"next\"") && r.body.contains("个体户登记 200"), "{}", r.body);
    let r = market.get(&format!("/workflow/instances/{last}")).await;
    assert!(r.body.contains("/claim\""), "the task beyond the first page can still be claimed from its instance: {}", r.body);
}

/// Issue 13, finding 4: a 28 KB file nested 4,000 elements deep overflowed the worker's stack and
/// aborted the process. It is now refused with a 422 naming the element and line, on the API and
/// on the page, and the server goes on serving.
#[tokio::test]
async fn a_file_nested_thousands_deep_is_refused_and_the_server_keeps_serving() {
    let app = TestApp::demo().await;
    let mut sys = app.admin("sysadmin").await;
    let head = "<?xml version=\"1.0\"?>\n<bpmn:definitions xmlns:bpmn=\"http://www.omg.org/spec/BPMN/20100524/MODEL\">\n<bpmn:process id=\"deep\">\n";
    let xml = format!("{head}{}{}</bpmn:process></bpmn:definitions>", "<x>".repeat(4000), "</x>".repeat(4000));
    assert!((27_000..30_000).contains(&xml.len()), "about 28 KB: {}", xml.len());
    let r = upload(&mut sys, &xml).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    assert_eq!(r.json()["field"], "file");
    let message = r.json()["message"].as_str().unwrap_or_default().to_string();
    assert!(message.contains("元素嵌套层数过深") && message.contains("x, line 4"), "{message}");
    let r = sys.post_multipart("/admin/workflows", "/admin/workflows", &[], ("file", "deep.bpmn", &xml)).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body.contains("upload-error") && r.body.contains("元素嵌套层数过深") && r.body.contains("line 4"), "{}", r.body);
    let mut en = sys.clone_session();
    assert_eq!(en.get("/lang/en").await.status, StatusCode::SEE_OTHER);
    let r = upload(&mut en, &xml).await;
    assert!(r.body.contains("nested too deep"), "English: {}", r.body);
    assert_eq!(app.scalar("SELECT COUNT(*) FROM wf_definitions WHERE process_key = 'deep'").await, 0, "nothing stored");
    assert_eq!(upload(&mut sys, &approval_bpmn()).await.status, StatusCode::CREATED, "the server still serves");
}

/// Issue 13, finding 12: a process names its units by name, region code or id; they are resolved
/// to unit ids once, at upload, and a name that several units share (or none has) is refused
/// with the task and its line. Versions uploaded before keep their units.
#[tokio::test]
async fn units_a_process_names_resolve_to_ids_at_upload_and_shared_names_are_refused() {
    let app = TestApp::demo().await;
    let mut sys = app.admin("sysadmin").await;
    let r = upload(&mut sys, &approval_bpmn()).await;
    assert_eq!(r.status, StatusCode::CREATED);
    let v1 = r.json()["id"].as_i64().unwrap_or_default();
    let town = app.unit_id("珠泉镇").await.to_string();
    let r =
        sys.post_form("/admin/units/new", "/admin/units", &[("name", "市场监督管理局"), ("parent_id", &town), ("kind", "sub_unit")]).await;
    assert_eq!(r.location(), "/admin/units?done=unit_saved");
    let line = approval_bpmn().lines().position(|l| l.contains("id=\"Task_market\"")).unwrap_or_default() + 1;
    let v2 = approval_bpmn().replace("name=\"自然资源局审查\"", "name=\"自然资源局审查（二）\"");
    let r = upload(&mut sys, &v2).await;
    assert_eq!((r.status, r.json()["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("file")), "{}", r.body);
    let message = r.json()["message"].as_str().unwrap_or_default().to_string();
    assert!(message.contains("有多个单位同名") && message.contains(&format!("Task_market, line {line}: 市场监督管理局")), "{message}");
    let unknown = approval_bpmn().replace("tongban:candidateUnit=\"自然资源局\"", "tongban:candidateUnit=\"不存在局\"");
    let r = upload(&mut sys, &unknown).await;
    assert!(r.json()["message"].as_str().is_some_and(|m| m.contains("没有这个单位") && m.contains("不存在局")), "{}", r.body);
    // Named by id, the process uploads. Steps show units as the file names them, not by id.
    let r = sys.get(&format!("/admin/workflows/{v1}")).await;
    assert!(r.body.contains("行政审批服务局（政务服务中心）"), "{}", r.body);
    let county = app.scalar(&format!("SELECT id FROM units WHERE name = '市场监督管理局' AND parent_id <> {town}")).await;
    let by_id = v2.replace("tongban:candidateUnit=\"市场监督管理局\"", &format!("tongban:candidateUnit=\"{county}\""));
    let r = upload(&mut sys, &by_id).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);

    // Version 1 resolved 市场监督管理局 before the town unit existed: it stays with the county bureau.
    let mut clerk = app.staff("liuyang").await;
    let r = clerk
        .json(
            Method::POST,
            "/api/v1/workflow/instances",
            json!({"process": "parallel_approval", "title": "按编号派单", "business_key": "JH-9"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let instance = r.json()["id"].as_i64().unwrap_or_default();
    let mut market = app.staff("huangli").await;
    task_at(&mut market, instance, "Task_market").await;
}

/// Instances started before queues held unit ids keep working: their tasks' unit names are
/// resolved through their definition when loaded.
#[tokio::test]
async fn tasks_stored_with_unit_names_before_the_upgrade_still_reach_their_unit() {
    let app = TestApp::demo().await;
    let mut sys = app.admin("sysadmin").await;
    assert_eq!(upload(&mut sys, &approval_bpmn()).await.status, StatusCode::CREATED);
    let mut clerk = app.staff("liuyang").await;
    let instance = start(&mut clerk, "升级前的办件").await;
    let market = app.unit_id("市场监督管理局").await;
    // As stored by the previous release: no resolved units, names in the engine state.
    app.sql("UPDATE wf_definitions SET unit_ids = NULL").await;
    app.sql(&format!(
        "UPDATE wf_instances SET state = REPLACE(state, '\"candidate_units\":[\"{market}\"]', '\"candidate_units\":[\"市场监督管理局\"]') WHERE id = {instance}"
    ))
    .await;
    assert!(app.scalar_text(&format!("SELECT state FROM wf_instances WHERE id = {instance}")).await.contains("[\"市场监督管理局\"]"));
    let task = app.scalar(&format!("SELECT id FROM wf_tasks WHERE instance_id = {instance} AND node_id = 'Task_market'")).await;
    let mut bureau = app.staff("huangli").await;
    assert_eq!(bureau.get(&format!("/workflow/instances/{instance}")).await.status, StatusCode::OK);
    claim_and_complete(&mut bureau, task, json!({"opinion": "同意"})).await;
    let mut other = app.staff("heping").await;
    assert_eq!(other.get(&format!("/workflow/instances/{instance}")).await.status, StatusCode::NOT_FOUND);
}
