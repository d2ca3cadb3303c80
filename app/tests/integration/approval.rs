//! The service catalogue: public guides (search, print), item administration with refusals that
//! name the field, permission checks, and the API.

use axum::http::{Method, StatusCode, header};
use serde_json::json;

use crate::support::TestApp;

const MATERIALS: &str = "[[material]]\nname = \"户口簿\"\nrequired = true\nform = \"copy\"\n";
const FIELDS: &str = "[[field]]\nname = \"child_name\"\nlabel = \"新生儿姓名\"\nkind = \"text\"\nrequired = true\n";

#[tokio::test]
async fn citizens_find_and_print_service_guides_without_logging_in() {
    let app = TestApp::demo().await;
    let mut anon = app.client();
    let r = anon.get("/guide").await;
    assert_eq!(r.status, StatusCode::OK);
    for name in ["建设工程规划许可证核发", "食品经营许可", "个体工商户设立登记", "医疗机构执业登记", "城乡居民基本养老保险参保登记"]
    {
        assert!(r.body.contains(name), "{name} listed");
    }
    let r = anon.get("/guide?event=开办企业").await;
    assert!(r.body.contains("食品经营许可") && r.body.contains("个体工商户设立登记") && !r.body.contains("医疗机构执业登记"));
    let market = app.unit_id("市场监督管理局").await;
    let r = anon.get(&format!("/guide?unit={market}&q=食品")).await;
    assert!(r.body.contains("食品经营许可") && !r.body.contains("个体工商户设立登记"));
    let id = app.scalar("SELECT id FROM approval_items WHERE code = '431024-XK-ZR-001'").await;
    let r = anon.get(&format!("/guide/{id}")).await;
    for text in [
        "《中华人民共和国城乡规划法》第四十条",
        "住房和城乡建设局、消防救援大队",
        "不动产权证书或建设用地批准文件",
        "消防设计审查",
        "10 个工作日",
    ] {
        assert!(r.body.contains(text), "guide shows {text}");
    }
    assert_eq!(anon.get(&format!("/guide/{id}/print")).await.status, StatusCode::OK);
    assert_eq!(anon.get("/guide/99999").await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn administrators_maintain_items_and_others_cannot() {
    let app = TestApp::demo().await;
    let mut sys = app.admin("sysadmin").await;
    let health = app.unit_id("卫生健康局").await.to_string();
    let mut fields: Vec<(&str, &str)> = vec![
        ("code", "431024-GG-WJ-009"),
        ("name", "出生医学证明首次签发"),
        ("kind", "public_service"),
        ("audience", "person"),
        ("lead_unit_id", &health),
        ("legal_basis", "《中华人民共和国母婴保健法》第二十三条"),
        ("legal_days", "5"),
        ("promised_days", "8"),
        ("fee", "不收费"),
        ("process_key", "pension_enrolment"),
        ("visits", "0"),
        ("life_events", "出生"),
        ("materials", MATERIALS),
        ("form", FIELDS),
    ];
    let r = sys.post_form("/admin/catalogue/new", "/admin/catalogue", &fields).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body.contains("承诺时限须大于0且不超过法定时限"), "names the problem");
    fields[7] = ("promised_days", "3");
    fields[9] = ("process_key", "no_such_process");
    let r = sys.post_form("/admin/catalogue/new", "/admin/catalogue", &fields).await;
    assert!(r.body.contains("没有这个流程"), "unknown process refused");
    fields[9] = ("process_key", "pension_enrolment");
    fields[12] = ("materials", "[[material]]\nname = 3");
    let r = sys.post_form("/admin/catalogue/new", "/admin/catalogue", &fields).await;
    assert!(r.body.contains("TOML"), "bad TOML named");
    fields[12] = ("materials", MATERIALS);
    let before = app.scalar("SELECT COUNT(*) FROM approval_items").await;
    let r = sys.post_form("/admin/catalogue/new", "/admin/catalogue", &fields).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert_eq!(app.scalar("SELECT COUNT(*) FROM approval_items").await, before + 1);
    let id = app.scalar("SELECT id FROM approval_items WHERE code = '431024-GG-WJ-009'").await;
    let mut anon = app.client();
    assert!(anon.get("/guide?event=出生").await.body.contains("出生医学证明首次签发"));
    let r = sys.post_form("/admin/catalogue", &format!("/admin/catalogue/{id}/disable"), &[]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(anon.get(&format!("/guide/{id}")).await.status, StatusCode::NOT_FOUND, "withdrawn items are not public");
    assert_eq!(app.audit_count("approval.item.create", "success").await, 6);
    assert_eq!(app.audit_count("approval.item.disable", "success").await, 1);

    let mut staff = app.staff("zhangwei").await;
    assert_eq!(staff.get("/admin/catalogue").await.status, StatusCode::FORBIDDEN);
    let r = staff.json(Method::PUT, &format!("/api/v1/catalogue/{id}"), json!({})).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "the body is checked first: {}", r.body);
    let r = sys.get(&format!("/api/v1/catalogue/{id}")).await;
    let mut spec = r.json()["spec"].clone();
    spec["name"] = json!("出生医学证明签发");
    let r = staff.json(Method::PUT, &format!("/api/v1/catalogue/{id}"), spec.clone()).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(app.audit_count("approval.item.update", "denied").await, 1);
    let r = sys.json(Method::PUT, &format!("/api/v1/catalogue/{id}"), spec.clone()).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    spec["lead_unit_id"] = json!("x");
    let r = sys.json(Method::PUT, &format!("/api/v1/catalogue/{id}"), spec).await;
    assert_eq!((r.status, r.json()["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("lead_unit_id")));
    let r = staff.get("/api/v1/catalogue?life_event=开办企业").await;
    assert_eq!(r.json().as_array().map(Vec::len), Some(2));
}

#[tokio::test]
async fn citizens_register_with_checked_numbers_and_stay_out_of_staff_pages() {
    let app = TestApp::demo().await;
    let mut c = app.client();
    let form = |cert: &'static str, phone: &'static str| {
        vec![
            ("kind", "person"),
            ("name", "李小龙"),
            ("cert_no", cert),
            ("phone", phone),
            ("email", ""),
            ("password", "Citizen#2026"),
            ("password_again", "Citizen#2026"),
        ]
    };
    let r = c.post_form("/public/register", "/public/register", &form("110105194912310021", "13800000001")).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body.contains("校验位不符"), "the check digit is named");
    assert_eq!(app.scalar("SELECT COUNT(*) FROM public_accounts").await, 0);
    let r = c.post_form("/public/register", "/public/register", &form("11010519491231002X", "13800000001")).await;
    assert_eq!(r.location(), "/public?done=registered", "{}", r.body);
    let r = c.get("/public").await;
    assert!(r.body.contains("李小龙") && r.body.contains("1101**********002X"), "masked number: {}", r.body);
    assert_eq!(c.get("/workbench").await.location(), "/login", "a citizen is not staff");
    assert_eq!(c.get("/api/v1/me").await.status, StatusCode::UNAUTHORIZED);

    let mut other = app.client();
    let r = other.post_form("/public/register", "/public/register", &form("11010519491231002X", "13800000002")).await;
    assert!(r.body.contains("已注册"), "one account per certificate");
    let r = other.post_form("/public/login", "/public/login", &[("login", "13800000001"), ("password", "wrong-password")]).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let r = other.post_form("/public/login", "/public/login", &[("login", "11010519491231002x"), ("password", "Citizen#2026")]).await;
    assert_eq!(r.location(), "/public");
    let r = other.post_form("/public", "/public/logout", &[]).await;
    assert_eq!(r.location(), "/public/login");
    assert_eq!(other.get("/public").await.location(), "/public/login");
    assert_eq!(app.audit_count("public.register", "success").await, 1);
    assert_eq!(app.audit_count("public.login", "failure").await, 1);
    let mut anon = app.client();
    assert_eq!(anon.get("/public").await.location(), "/public/login");
}

/// A valid credit code for the demo enterprise (GB 32100 check character computed).
pub(crate) fn credit_code() -> String {
    let prefix = "91431024MA4L0TB2X";
    format!("{prefix}{}", tongban_identity::idcheck::credit_code_check(prefix).unwrap_or('0'))
}

pub(crate) async fn citizen(app: &TestApp, cert: &str, phone: &str, kind: &str) -> crate::support::Client {
    let mut c = app.client();
    let fields = [
        ("kind", kind),
        ("name", "嘉禾县好味道餐饮有限公司"),
        ("cert_no", cert),
        ("phone", phone),
        ("email", ""),
        ("password", "Citizen#2026"),
        ("password_again", "Citizen#2026"),
    ];
    let r = c.post_form("/public/register", "/public/register", &fields).await;
    assert_eq!(r.location(), "/public?done=registered", "{}", r.body);
    c
}

#[tokio::test]
async fn a_citizen_applies_online_gets_a_receipt_and_follows_the_status() {
    let app = TestApp::demo().await;
    let code = credit_code();
    let mut ent = citizen(&app, &code, "13900000001", "enterprise").await;
    let item = app.scalar("SELECT id FROM approval_items WHERE code = '431024-XK-SJ-001'").await.to_string();
    let person_item = app.scalar("SELECT id FROM approval_items WHERE code = '431024-GG-RS-001'").await.to_string();
    let r = ent.post_form(&format!("/guide/{person_item}"), "/public/applications", &[("item_id", &person_item)]).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "pension enrolment is for persons only");
    let r = ent.post_form(&format!("/guide/{item}"), "/public/applications", &[("item_id", &item)]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let page = r.location().to_string();

    let form = [
        ("f.business_name", "嘉禾县好味道餐饮有限公司"),
        ("f.credit_code", "91431024MA4L0TB2X0"),
        ("f.category", "餐饮服务"),
        ("f.area", "120"),
        ("f.contact_phone", "13900000001"),
    ];
    let r = ent.post_form(&page, &page, &form).await;
    assert_eq!(r.location(), format!("{page}?done=draft_saved"), "drafts save unchecked");
    let mut submit = form.to_vec();
    submit.push(("submit", "1"));
    let r = ent.post_form(&page, &page, &submit).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body.contains("校验码不符"), "the credit code is checked on submit");
    submit[1] = ("f.credit_code", &code);
    let r = ent.post_form(&page, &page, &submit).await;
    assert!(r.body.contains("缺少必需的申请材料"), "materials are required");

    let uploads = format!("{page}/materials");
    let r = ent.post_multipart(&page, &uploads, &[("material_index", "0")], ("file", "申请书.exe", "MZ\u{90}")).await;
    assert!(r.body.contains("不接受此类文件"));
    let r = ent.post_multipart(&page, &uploads, &[("material_index", "0")], ("file", "申请书.jpg", "%PDF-1.7 fake")).await;
    assert!(r.body.contains("文件内容与扩展名不符"), "declared vs sniffed type");
    for i in 0..4 {
        let r = ent.post_multipart(&page, &uploads, &[("material_index", &i.to_string())], ("file", "材料.pdf", "%PDF-1.7 material")).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    }
    let r = ent.post_form(&page, &page, &submit).await;
    assert_eq!(r.location(), format!("{page}/receipt"), "{}", r.body);
    let r = ent.get(&format!("{page}/receipt")).await;
    let number = r.element_text("receipt-number");
    let qcode = r.element_text("receipt-code");
    assert!(number.starts_with("JH") && number.len() == 15, "{number}");
    assert_eq!(qcode.len(), 8);
    assert_eq!(app.scalar("SELECT COUNT(*) FROM outbox WHERE topic = 'zone.to_internal'").await, 1, "the submission crosses as a message");

    let mut anon = app.client();
    let r = anon.get(&format!("/status?number={number}&code={qcode}")).await;
    assert!(r.body.contains("已提交，待受理") && r.body.contains("食品经营许可"), "{}", r.body);
    assert_eq!(anon.get(&format!("/status?number={number}&code=WRONG123")).await.status, StatusCode::NOT_FOUND);
    let r = anon.get(&format!("/api/v1/applications/status?number={number}&code={qcode}")).await;
    assert_eq!((r.status, r.json()["status"].as_str()), (StatusCode::OK, Some("submitted")), "{}", r.body);
    let r = anon.get(&format!("/api/v1/applications/status?number={number}&code=WRONG123")).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "a wrong code is an unknown number");
    let mut other = citizen(&app, "11010519491231002X", "13900000002", "person").await;
    assert_eq!(other.get(&page).await.status, StatusCode::NOT_FOUND, "only the applicant sees it");
    let r = ent.post_form(&page, &page, &submit).await;
    assert!(r.status == StatusCode::UNPROCESSABLE_ENTITY && r.body.contains("不能再修改"), "submitted applications cannot be edited");

    // Internal processing answers through the zone channel.
    let msg = tongban_approval::zone::ZoneMessage::StatusChanged {
        number: number.clone(),
        status: "processing".into(),
        note: "已受理".into(),
        due_on: Some("2026-12-14".into()),
        at: tongban_platform::clock::now_millis(),
    };
    let mut tx = app.opened.db.begin_write().await.expect("tx");
    tongban_approval::zone::send(&mut tx, &msg).await.expect("send");
    tx.commit().await.expect("commit");
    let dispatcher = tongban_platform::outbox::Dispatcher::new(app.opened.db.clone(), tongban::boot::outbox_handlers(&app.opened));
    dispatcher.dispatch_once(100).await.expect("dispatch");
    let r = ent.get("/public").await;
    assert!(r.body.contains("办理中") && r.body.contains(&number), "{}", r.body);
    let r = ent.post_form(&page, &format!("{page}/withdraw"), &[]).await;
    assert!(r.body.contains("只有待受理的申请可以撤回"), "no withdrawal after acceptance");
    assert_eq!(app.audit_count("approval.application.submit", "success").await, 1);
    assert_eq!(app.audit_count("approval.application.upload", "success").await, 4);
}

#[tokio::test]
async fn a_submitted_application_can_be_withdrawn_before_acceptance() {
    let app = TestApp::demo().await;
    let mut p = citizen(&app, "11010519491231002X", "13900000003", "person").await;
    let item = app.scalar("SELECT id FROM approval_items WHERE code = '431024-GG-RS-001'").await.to_string();
    let r = p.post_form(&format!("/guide/{item}"), "/public/applications", &[("item_id", &item)]).await;
    let page = r.location().to_string();
    let uploads = format!("{page}/materials");
    for i in 0..2 {
        let r = p.post_multipart(&page, &uploads, &[("material_index", &i.to_string())], ("file", "证件.pdf", "%PDF-1.4 scan")).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    }
    let form = [
        ("f.full_name", "李小龙"),
        ("f.id_number", "11010519491231002X"),
        ("f.contribution_level", "500"),
        ("f.contact_phone", "13900000003"),
        ("submit", "1"),
    ];
    let r = p.post_form(&page, &page, &form).await;
    assert_eq!(r.location(), format!("{page}/receipt"), "{}", r.body);
    let r = p.post_form(&page, &format!("{page}/withdraw"), &[]).await;
    assert_eq!(r.location(), format!("{page}?done=withdrawn"));
    assert!(p.get(&page).await.body.contains("已撤回"));
    assert_eq!(app.scalar("SELECT COUNT(*) FROM outbox WHERE topic = 'zone.to_internal'").await, 2, "submission and withdrawal");
}

/// Delivers outbox events until none are left (zone messages, process completion …).
pub(crate) async fn settle(app: &TestApp) {
    let dispatcher = tongban_platform::outbox::Dispatcher::new(app.opened.db.clone(), tongban::boot::outbox_handlers(&app.opened));
    for _ in 0..10 {
        if dispatcher.dispatch_once(100).await.expect("dispatch") == 0 {
            return;
        }
    }
}

pub(crate) async fn task_for(c: &mut crate::support::Client, title_part: &str, step: &str) -> i64 {
    let r = c.get("/api/v1/workflow/tasks").await;
    let list = r.json().as_array().cloned().unwrap_or_default();
    list.iter()
        .find(|t| t["title"].as_str().is_some_and(|s| s.contains(title_part)) && t["step"] == step)
        .and_then(|t| t["id"].as_i64())
        .unwrap_or_else(|| panic!("no {step} task: {list:?}"))
}

/// An enterprise registers and submits a building permit application with every material;
/// answers (its client, the application page, the application number).
pub(crate) async fn submitted_permit(app: &TestApp, phone: &str) -> (crate::support::Client, String, String) {
    submitted_permit_as(app, phone, &credit_code()).await
}

/// The same for the enterprise with credit code `code` (a prefix of 17 characters is completed
/// with its check character).
async fn submitted_permit_as(app: &TestApp, phone: &str, code: &str) -> (crate::support::Client, String, String) {
    let code = match code.len() {
        17 => format!("{code}{}", tongban_identity::idcheck::credit_code_check(code).unwrap_or('0')),
        _ => code[..17].to_string() + &tongban_identity::idcheck::credit_code_check(&code[..17]).unwrap_or('0').to_string(),
    };
    let mut ent = citizen(app, &code, phone, "enterprise").await;
    let item = app.scalar("SELECT id FROM approval_items WHERE code = '431024-XK-ZR-001'").await.to_string();
    let r = ent.post_form(&format!("/guide/{item}"), "/public/applications", &[("item_id", &item)]).await;
    let page = r.location().to_string();
    for i in 0..4 {
        let r = ent
            .post_multipart(&page, &format!("{page}/materials"), &[("material_index", &i.to_string())], ("file", "材料.pdf", "%PDF-1.7 m"))
            .await;
        assert_eq!(r.status, StatusCode::SEE_OTHER);
    }
    let form = [
        ("f.project_name", "嘉禾县城南商住楼"),
        ("f.applicant_name", "嘉禾县好味道餐饮有限公司"),
        ("f.credit_code", code.as_str()),
        ("f.land_area", "3200"),
        ("f.building_area", "12800"),
        ("f.contact_phone", phone),
        ("submit", "1"),
    ];
    let r = ent.post_form(&page, &page, &form).await;
    assert_eq!(r.location(), format!("{page}/receipt"), "{}", r.body);
    let number = ent.get(&format!("{page}/receipt")).await.element_text("receipt-number");
    (ent, page, number)
}

pub(crate) async fn complete_task(app: &TestApp, user: &str, number: &str, step: &str, opinion: &str, approved: Option<bool>) {
    let mut c = app.staff(user).await;
    let t = task_for(&mut c, number, step).await;
    assert_eq!(c.json(Method::POST, &format!("/api/v1/workflow/tasks/{t}/claim"), json!({})).await.status, StatusCode::NO_CONTENT);
    let vars = approved.map(|a| json!({"approved": a})).unwrap_or(json!({}));
    let r = c.json(Method::POST, &format!("/api/v1/workflow/tasks/{t}/complete"), json!({"opinion": opinion, "variables": vars})).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
}

#[tokio::test]
async fn a_co_department_disagrees_and_the_lead_denies() {
    let app = TestApp::demo().await;
    let (mut ent, page, number) = submitted_permit(&app, "13900000021").await;
    settle(&app).await;
    let case = app.scalar(&format!("SELECT id FROM approval_cases WHERE number = '{number}'")).await;
    let mut clerk = app.staff("liuyang").await;
    assert_eq!(clerk.post_form(&format!("/cases/{case}"), &format!("/cases/{case}/accept"), &[]).await.status, StatusCode::SEE_OTHER);
    complete_task(&app, "zhoujun", &number, "review_land", "符合规划条件", None).await;
    complete_task(&app, "fangyuan", &number, "review_fire", "消防车道宽度不足4米，不同意", None).await;
    complete_task(&app, "xuhui", &number, "review_housing", "同意", None).await;
    let mut land = app.staff("zhoujun").await;
    let t = task_for(&mut land, &number, "decide").await;
    let r = land.get("/api/v1/workflow/tasks?list=todo").await;
    assert!(r.body.contains("审批决定"));
    let instance = app.scalar(&format!("SELECT instance_id FROM approval_cases WHERE id = {case}")).await;
    let r = land.get(&format!("/api/v1/workflow/instances/{instance}")).await;
    assert!(r.body.contains("消防车道宽度不足4米"), "the lead sees every opinion before deciding");
    land.json(Method::POST, &format!("/api/v1/workflow/tasks/{t}/claim"), json!({})).await;
    let r = land
        .json(
            Method::POST,
            &format!("/api/v1/workflow/tasks/{t}/complete"),
            json!({"opinion": "消防审查不通过，不予许可", "variables": {"approved": false}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    settle(&app).await;
    assert!(ent.get(&page).await.body.contains("已办结（不予）"));
    let r = clerk.get(&format!("/cases/{case}/notice/decision")).await;
    assert!(r.body.contains("不予行政许可决定书") && r.body.contains("行政复议"), "the denial notice names the appeal rights");
    let r = ent.get(&format!("{page}/result")).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(
        r.body.contains("不予行政许可决定书") && r.body.contains("理由：消防审查不通过，不予许可") && r.body.contains(&number),
        "the delivered denial gives the deciding opinion as its reason: {}",
        r.body
    );
}

#[tokio::test]
async fn the_whole_story_supplement_acceptance_three_departments_and_the_result() {
    let app = TestApp::demo().await;
    let (mut ent, page, number) = submitted_permit(&app, "13900000009").await;
    settle(&app).await;

    let mut clerk = app.staff("liuyang").await;
    let r = clerk.get("/cases").await;
    assert!(r.body.contains(&number), "the case reached the window");
    let case = app.scalar(&format!("SELECT id FROM approval_cases WHERE number = '{number}'")).await;
    let r = clerk.get(&format!("/cases/{case}")).await;
    assert!(r.body.contains("嘉禾县城南商住楼") && r.body.contains("材料.pdf"));
    let mid = app.scalar(&format!("SELECT MIN(id) FROM case_materials WHERE case_id = {case}")).await;
    let r = clerk.get(&format!("/cases/{case}/materials/{mid}")).await;
    assert_eq!(r.body, "%PDF-1.7 m", "the clerk downloads the file");
    let mut outsider = app.staff("heping").await;
    assert_eq!(outsider.get(&format!("/cases/{case}")).await.status, StatusCode::NOT_FOUND, "others do not see the case");
    assert_eq!(outsider.post_form("/me/tokens", &format!("/cases/{case}/accept"), &[]).await.status, StatusCode::FORBIDDEN);

    let r = clerk
        .post_form(
            &format!("/cases/{case}"),
            &format!("/cases/{case}/supplement"),
            &[("items", "建设工程设计方案缺少建筑立面图\n授权委托书未签字")],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    settle(&app).await;
    let r = ent.get(&page).await;
    assert!(r.body.contains("待补正") && r.body.contains("建筑立面图"), "one notice lists every missing item");
    let r = ent
        .post_multipart(&page, &format!("{page}/materials"), &[("material_index", "3")], ("file", "立面图.pdf", "%PDF-1.7 elevation"))
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "uploads are open while supplementing");
    let r = ent.post_form(&page, &format!("{page}/supplement"), &[]).await;
    assert_eq!(r.location(), format!("{page}?done=supplement_sent"));
    settle(&app).await;
    assert_eq!(app.scalar(&format!("SELECT COUNT(*) FROM case_materials WHERE case_id = {case}")).await, 5);

    let r = clerk.post_form(&format!("/cases/{case}"), &format!("/cases/{case}/accept"), &[]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let r = clerk.post_form(&format!("/cases/{case}"), &format!("/cases/{case}/accept"), &[]).await;
    assert!(r.body.contains("不在待受理状态"), "accepting twice is refused");
    let r = clerk.get(&format!("/cases/{case}/notice/acceptance")).await;
    assert!(r.body.contains("受理通知书") && r.body.contains("决定予以受理") && r.body.contains("10个工作日"), "{}", r.body);
    let r = clerk.get(&format!("/cases/{case}/notice/supplement")).await;
    assert!(r.body.contains("建筑立面图") && r.body.contains("授权委托书未签字"));
    assert_eq!(clerk.get(&format!("/cases/{case}/notice/decision")).await.status, StatusCode::NOT_FOUND, "no decision yet");
    settle(&app).await;
    assert!(ent.get(&page).await.body.contains("办理中"));

    for (user, step) in [("zhoujun", "review_land"), ("xuhui", "review_housing"), ("fangyuan", "review_fire")] {
        let mut c = app.staff(user).await;
        let t = task_for(&mut c, &number, step).await;
        assert_eq!(c.json(Method::POST, &format!("/api/v1/workflow/tasks/{t}/claim"), json!({})).await.status, StatusCode::NO_CONTENT);
        let r = c.json(Method::POST, &format!("/api/v1/workflow/tasks/{t}/complete"), json!({"opinion": "同意"})).await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
        if user == "xuhui" {
            assert_eq!(c.get(&format!("/cases/{case}")).await.status, StatusCode::OK, "a handler sees the case and its materials");
        }
    }
    let mut land = app.staff("zhoujun").await;
    let t = task_for(&mut land, &number, "decide").await;
    // Supervision: the decision is overdue; the supervisor sees it by department and urges.
    app.sql(&format!("UPDATE wf_tasks SET due_on = '2000-01-04' WHERE id = {t}")).await;
    let mut sup = app.staff("jiangwei").await;
    let r = sup.get("/supervision").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.body.contains("自然资源局") && r.body.contains("审批决定") && r.body.contains(&number), "overdue list: {}", r.body);
    let r = sup.post_form("/supervision", &format!("/supervision/tasks/{t}/urge"), &[("note", "请于今日办结")]).await;
    assert_eq!(r.location(), "/supervision?done=urged");
    assert_eq!(app.scalar("SELECT COUNT(*) FROM outbox WHERE topic = 'supervision.urge'").await, 1);
    let r = sup.get("/supervision/export.csv").await;
    assert!(r.body.contains("审批决定") && r.body.contains("超期"), "CSV: {}", r.body);
    let mut office = app.staff("zhangwei").await;
    assert_eq!(office.get("/supervision").await.status, StatusCode::FORBIDDEN, "only supervisors");
    assert_eq!(app.audit_count("supervision.read", "denied").await, 1);
    land.json(Method::POST, &format!("/api/v1/workflow/tasks/{t}/claim"), json!({})).await;
    let r = land
        .json(
            Method::POST,
            &format!("/api/v1/workflow/tasks/{t}/complete"),
            json!({"opinion": "准予许可", "variables": {"approved": true}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    settle(&app).await;
    let r = ent.get(&page).await;
    assert!(r.body.contains("已办结（准予）") && r.body.contains("嘉审批〔"), "the applicant sees the result: {}", r.body);
    assert_eq!(app.audit_count("approval.case.accept", "success").await, 1);
    assert_eq!(app.audit_count("approval.case.supplement", "success").await, 1);
    let r = clerk.get(&format!("/cases/{case}/notice/decision")).await;
    assert!(r.body.contains("准予行政许可决定书") && r.body.contains("嘉审批〔"), "{}", r.body);

    // The result document reaches the applicant's account (电子送达); opening it is the receipt.
    let result_no = app.scalar_text(&format!("SELECT result_no FROM approval_cases WHERE id = {case}")).await;
    let r = ent.get(&page).await;
    assert!(r.body.contains(&format!("{page}/result")) && r.body.contains("打开即视为签收"), "{}", r.body);
    assert!(!clerk.get(&format!("/cases/{case}")).await.body.contains("id=\"delivered\""), "not delivered before it is opened");
    let mut stranger = citizen(&app, "11010519491231002X", "13900000031", "person").await;
    assert_eq!(stranger.get(&format!("{page}/result")).await.status, StatusCode::NOT_FOUND, "only the applicant");
    let r = ent.get(&format!("{page}/result")).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.headers[header::CONTENT_TYPE].to_str().is_ok_and(|t| t.starts_with("text/html")));
    assert!(
        r.headers[header::CONTENT_SECURITY_POLICY].to_str().is_ok_and(|c| c.starts_with("default-src 'none'")),
        "a document runs no script"
    );
    assert!(r.body.contains("准予行政许可决定书") && r.body.contains(&result_no) && r.body.contains("嘉禾县自然资源局"), "{}", r.body);
    ent.get(&format!("{page}/result")).await;
    assert_eq!(app.audit_count("approval.application.result_received", "success").await, 1, "the first opening is the receipt");
    settle(&app).await;
    let r = clerk.get(&format!("/cases/{case}")).await;
    assert!(r.body.contains("id=\"delivered\"") && r.body.contains("申请人已在线签收"), "the case file shows the delivery: {}", r.body);
    let sm3 = app.scalar_text(&format!("SELECT result_sm3 FROM approval_cases WHERE id = {case}")).await;
    assert_eq!(tongban_crypto::sm3_hex(clerk.get(&format!("/cases/{case}/result")).await.body.as_bytes()), sm3, "stored under its SM3");
    let r = sup.get("/supervision").await;
    assert_eq!(r.element_text("fig-completed"), "1");
    assert_eq!(r.element_text("fig-rate"), "100.0%", "completed within the promised days");

    // 好差评: a bad rating needs a reason and opens a follow-up for the supervisor.
    let r = ent.post_form(&page, &format!("{page}/rate"), &[("level", "5"), ("comment", "")]).await;
    assert!(r.body.contains("不满意时请写明原因"));
    let r = ent.post_form(&page, &format!("{page}/rate"), &[("level", "5"), ("comment", "补正要求反复，跑了两次")]).await;
    assert_eq!(r.location(), format!("{page}?done=rated"));
    let r = ent.post_form(&page, &format!("{page}/rate"), &[("level", "1"), ("comment", "")]).await;
    assert!(r.body.contains("已经评价过了"), "rated once");
    settle(&app).await;
    let r = sup.get("/supervision").await;
    assert!(r.body.contains("补正要求反复"), "the follow-up is listed");
    let f = app.scalar("SELECT id FROM rating_followups").await;
    let r = sup
        .post_form("/supervision", &format!("/supervision/followups/{f}/close"), &[("resolution", "已回访，约谈窗口负责人，优化补正告知")])
        .await;
    assert_eq!(r.location(), "/supervision?done=followup_closed");
    assert!(!sup.get("/supervision").await.body.contains("补正要求反复"));
}

#[tokio::test]
async fn demo_applications_fill_the_window_the_to_do_lists_and_the_dashboard() {
    let app = TestApp::demo().await;
    assert_eq!(tongban::boot::load_demo_applications(&app.opened).await.expect("demo applications"), 4);
    assert_eq!(tongban::boot::load_demo_applications(&app.opened).await.expect("again"), 0, "loaded once");
    let mut clerk = app.staff("liuyang").await;
    assert!(clerk.get("/cases").await.body.contains("个体工商户设立登记"), "one waits at the window");
    let r = clerk.get("/api/v1/cases").await;
    let pending = r.json().as_array().cloned().unwrap_or_default();
    assert_eq!(pending.len(), 1, "{}", r.body);
    let id = pending[0]["id"].as_i64().unwrap_or_default();
    let r = clerk.json(Method::POST, &format!("/api/v1/cases/{id}/refuse"), json!({})).await;
    assert_eq!((r.status, r.json()["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("reason")));
    let r = clerk.json(Method::POST, &format!("/api/v1/cases/{id}/refuse"), json!({"reason": "经营场所位于规划道路红线内"})).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    let r = clerk.json(Method::POST, &format!("/api/v1/cases/{id}/accept"), json!({})).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "a refused case cannot be accepted");
    let mut office = app.staff("zhangwei").await;
    assert_eq!(office.get("/api/v1/cases").await.status, StatusCode::FORBIDDEN);
    assert_eq!(office.get("/api/v1/supervision").await.status, StatusCode::FORBIDDEN);
    let mut fire = app.staff("fangyuan").await;
    assert!(fire.get("/tasks").await.body.contains("消防设计审查"), "the fire brigade's review is open");
    let mut sup = app.staff("jiangwei").await;
    let r = sup.get("/supervision").await;
    assert_eq!(
        (r.element_text("fig-pending"), r.element_text("fig-open"), r.element_text("fig-completed")),
        ("1".into(), "1".into(), "1".into())
    );
    let r = sup.get("/api/v1/supervision").await;
    assert_eq!(r.json()["cases"]["completed"], 1);
    assert!(r.json()["open_tasks"].as_array().is_some_and(|t| !t.is_empty()));
    let mut citizen = app.client();
    let r = citizen
        .post_form(
            "/public/login",
            "/public/login",
            &[("login", "13807351234"), ("password", tongban_approval::demo::DEMO_CITIZEN_PASSWORD)],
        )
        .await;
    assert_eq!(r.location(), "/public");
    let r = citizen.get("/public").await;
    assert!(r.body.contains("待补正") && r.body.contains("已提交，待受理"), "{}", r.body);
}

#[tokio::test]
async fn a_supplement_during_processing_pauses_the_clock_and_the_answer_resumes_it() {
    let app = TestApp::demo().await;
    let mut p = citizen(&app, "11010519491231002X", "13900000007", "person").await;
    let item = app.scalar("SELECT id FROM approval_items WHERE code = '431024-QT-SJ-002'").await.to_string();
    let r = p.post_form(&format!("/guide/{item}"), "/public/applications", &[("item_id", &item)]).await;
    let page = r.location().to_string();
    for i in 0..3 {
        p.post_multipart(&page, &format!("{page}/materials"), &[("material_index", &i.to_string())], ("file", "a.pdf", "%PDF-1.4 a")).await;
    }
    let form = [
        ("f.operator_name", "李小龙"),
        ("f.id_number", "11010519491231002X"),
        ("f.address", "嘉禾县珠泉镇"),
        ("f.contact_phone", "13900000007"),
        ("submit", "1"),
    ];
    assert_eq!(p.post_form(&page, &page, &form).await.location(), format!("{page}/receipt"));
    settle(&app).await;
    let case = app.scalar("SELECT id FROM approval_cases").await;
    let mut clerk = app.staff("liuyang").await;
    clerk.post_form(&format!("/cases/{case}"), &format!("/cases/{case}/accept"), &[]).await;
    settle(&app).await;
    let due: String = app.scalar_text(&format!("SELECT due_on FROM approval_cases WHERE id = {case}")).await;
    let r = clerk
        .post_form(&format!("/cases/{case}"), &format!("/cases/{case}/supplement"), &[("items", "经营场所使用证明需加盖出租方印章")])
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    settle(&app).await;
    let r = p.get(&page).await;
    assert!(r.body.contains("待补正") && r.body.contains("暂停计算"), "{}", r.body);
    let clock = app.scalar_text(&format!("SELECT clock FROM approval_cases WHERE id = {case}")).await;
    assert!(clock.contains("补正"), "the clock holds the pause: {clock}");
    p.post_multipart(&page, &format!("{page}/materials"), &[("material_index", "2")], ("file", "b.pdf", "%PDF-1.4 b")).await;
    assert_eq!(p.post_form(&page, &format!("{page}/supplement"), &[]).await.location(), format!("{page}?done=supplement_sent"));
    settle(&app).await;
    assert_eq!(app.scalar_text(&format!("SELECT status FROM approval_cases WHERE id = {case}")).await, "processing");
    assert_eq!(
        app.scalar_text(&format!("SELECT due_on FROM approval_cases WHERE id = {case}")).await,
        due,
        "paused and resumed on the same day: no shift"
    );
    assert!(p.get(&page).await.body.contains("继续办理"));
}

/// A local SMS gateway: records every request body.
async fn sms_gateway() -> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let store = seen.clone();
    let app = axum::Router::new().route(
        "/sms",
        axum::routing::post(move |headers: axum::http::HeaderMap, body: String| {
            let store = store.clone();
            async move {
                let auth = headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
                if let Ok(mut s) = store.lock() {
                    s.push(format!("{auth} {body}"));
                }
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}/sms"), seen)
}

/// A local SMTP relay that accepts any mail and records the DATA part.
async fn smtp_relay() -> (u16, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let store = seen.clone();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let store = store.clone();
            tokio::spawn(async move {
                let (r, mut w) = socket.into_split();
                let mut lines = BufReader::new(r).lines();
                let _ = w.write_all(b"220 test ESMTP\r\n").await;
                let mut data = String::new();
                let mut in_data = false;
                while let Ok(Some(line)) = lines.next_line().await {
                    if in_data {
                        if line == "." {
                            in_data = false;
                            if let Ok(mut s) = store.lock() {
                                s.push(std::mem::take(&mut data));
                            }
                            let _ = w.write_all(b"250 queued\r\n").await;
                        } else {
                            data.push_str(&line);
                            data.push('\n');
                        }
                        continue;
                    }
                    let reply: &[u8] = match line.get(..4).unwrap_or("").to_ascii_uppercase().as_str() {
                        "EHLO" | "HELO" => b"250 test\r\n",
                        "DATA" => {
                            in_data = true;
                            b"354 go ahead\r\n"
                        }
                        "QUIT" => {
                            let _ = w.write_all(b"221 bye\r\n").await;
                            break;
                        }
                        _ => b"250 ok\r\n",
                    };
                    let _ = w.write_all(reply).await;
                }
            });
        }
    });
    (port, seen)
}

#[tokio::test]
async fn applicants_are_told_by_sms_email_and_in_app_and_staff_in_app() {
    let (sms_url, sms) = sms_gateway().await;
    let (smtp_port, mails) = smtp_relay().await;
    let app = TestApp::with(
        |c| {
            c.notify.sms_gateway_url = sms_url.clone();
            c.notify.sms_gateway_token = "gw-token".into();
            c.notify.sms_sign = "嘉禾政务".into();
            c.notify.smtp_host = "127.0.0.1".into();
            c.notify.smtp_port = smtp_port;
            c.notify.smtp_tls = "none".into();
            c.notify.smtp_from = "noreply@jiahe.gov.cn".into();
        },
        true,
    )
    .await;
    let code = credit_code();
    let mut ent = app.client();
    let fields = [
        ("kind", "enterprise"),
        ("name", "嘉禾县好味道餐饮有限公司"),
        ("cert_no", code.as_str()),
        ("phone", "13900000011"),
        ("email", "boss@haoweidao.cn"),
        ("password", "Citizen#2026"),
        ("password_again", "Citizen#2026"),
    ];
    assert_eq!(ent.post_form("/public/register", "/public/register", &fields).await.location(), "/public?done=registered");
    let item = app.scalar("SELECT id FROM approval_items WHERE code = '431024-XK-SJ-001'").await.to_string();
    let page = ent.post_form(&format!("/guide/{item}"), "/public/applications", &[("item_id", &item)]).await.location().to_string();
    for i in 0..4 {
        ent.post_multipart(&page, &format!("{page}/materials"), &[("material_index", &i.to_string())], ("file", "m.pdf", "%PDF-1.7 m"))
            .await;
    }
    let form = [
        ("f.business_name", "好味道"),
        ("f.credit_code", code.as_str()),
        ("f.category", "餐饮服务"),
        ("f.area", "80"),
        ("f.contact_phone", "13900000011"),
        ("submit", "1"),
    ];
    assert_eq!(ent.post_form(&page, &page, &form).await.location(), format!("{page}/receipt"));
    settle(&app).await;
    let case = app.scalar("SELECT id FROM approval_cases").await;
    let mut clerk = app.staff("liuyang").await;
    clerk.post_form(&format!("/cases/{case}"), &format!("/cases/{case}/accept"), &[]).await;
    settle(&app).await;
    let runner = tongban::boot::job_runner(&app.opened);
    for _ in 0..10 {
        if runner.run_once().await.expect("job") == tongban_platform::jobs::RunOutcome::Idle {
            break;
        }
    }
    let texts = sms.lock().map(|s| s.clone()).unwrap_or_default();
    assert!(
        texts
            .iter()
            .any(|t| t.starts_with("Bearer gw-token") && t.contains("13900000011") && t.contains("【嘉禾政务】") && t.contains("已受理")),
        "SMS: {texts:?}"
    );
    let sent = mails.lock().map(|s| s.clone()).unwrap_or_default();
    assert!(sent.iter().any(|m| m.contains("boss@haoweidao.cn")), "e-mail: {sent:?}");
    assert_eq!(app.scalar("SELECT COUNT(*) FROM notify_messages WHERE status = 'sent'").await, 2);
    assert!(ent.get("/public").await.body.contains("已受理，正在办理"), "in-app for the applicant");
    let mut market = app.staff("huangli").await;
    let r = market.get("/me/notifications").await;
    assert!(r.body.contains("待签收任务") && r.body.contains("材料审查"), "the department learns of the queue task: {}", r.body);

    // An urge reaches the holder in-app and on the mobile on file.
    app.sql("UPDATE users SET phone = '13700000001' WHERE username = 'huangli'").await;
    let t = task_for(&mut market, "食品经营许可", "review").await;
    assert_eq!(market.json(Method::POST, &format!("/api/v1/workflow/tasks/{t}/claim"), json!({})).await.status, StatusCode::NO_CONTENT);
    let mut sup = app.staff("jiangwei").await;
    let r = sup.post_form("/me/tokens", &format!("/supervision/tasks/{t}/urge"), &[("note", "请今日办结")]).await;
    assert_eq!(r.location(), "/supervision?done=urged");
    settle(&app).await;
    for _ in 0..10 {
        if runner.run_once().await.expect("job") == tongban_platform::jobs::RunOutcome::Idle {
            break;
        }
    }
    let texts = sms.lock().map(|s| s.clone()).unwrap_or_default();
    assert!(texts.iter().any(|t| t.contains("13700000001") && t.contains("请今日办结")), "SMS to the holder: {texts:?}");
    assert!(market.get("/me/notifications").await.body.contains("催办"));
}

/// 2026-09-28 10:00 China Standard Time, a Monday before the National Day holiday.
fn monday_before_national_day() -> i64 {
    tongban_platform::clock::parse_local_date("2026-09-28").unwrap_or_default() + 10 * 3_600_000
}

#[tokio::test]
async fn a_deadline_accepted_before_national_day_skips_the_holiday_and_counts_the_make_up_day() {
    let app = TestApp::demo().await;
    let (_ent, _page, number) = submitted_permit(&app, "13900000031").await;
    settle(&app).await;
    let case = app.scalar(&format!("SELECT id FROM approval_cases WHERE number = '{number}'")).await;
    let clerk = app.opened.identity.user_by_username("liuyang").await.ok().flatten().map(|u| u.id).unwrap_or_default();
    let principal = app.opened.identity.authz().principal(clerk).await.ok().flatten().expect("clerk principal");
    let actor = tongban_audit::Actor::system("test");
    app.opened.cases.clone().with_clock(monday_before_national_day).accept(&principal, &actor, case).await.expect("accept");
    // 10 working days from Mon 2026-09-28 (not counted): 9/29, 9/30, [10/1–10/7 National Day],
    // 10/8, 10/9, 10/10 (Saturday, make-up working day), 10/12, 10/13, 10/14, 10/15, 10/16.
    assert_eq!(app.scalar_text(&format!("SELECT due_on FROM approval_cases WHERE id = {case}")).await, "2026-10-16");
}

/// Accepts the application `number` at the window (liuyang); answers the case id.
pub(crate) async fn accepted(app: &TestApp, number: &str) -> i64 {
    settle(app).await;
    let case = app.scalar(&format!("SELECT id FROM approval_cases WHERE number = '{number}'")).await;
    let mut clerk = app.staff("liuyang").await;
    let r = clerk.json(Method::POST, &format!("/api/v1/cases/{case}/accept"), json!({})).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    case
}

/// The building-permit process without the fire review: a county's new version of the item.
fn permit_without_fire_review() -> String {
    let xml = include_str!("../../../crates/approval/data/processes/building_permit.bpmn");
    let start = xml.find("<bpmn:userTask id=\"review_fire\"").unwrap_or_default();
    let end = xml[start..].find("</bpmn:userTask>").map(|e| start + e + "</bpmn:userTask>".len()).unwrap_or_default();
    let xml = format!("{}{}", &xml[..start], &xml[end..]);
    let gone = [">f4<", ">f7<", "id=\"f4\"", "id=\"f7\"", "bpmnElement=\"f4\"", "bpmnElement=\"f7\"", "bpmnElement=\"review_fire\""];
    xml.lines().filter(|l| !gone.iter().any(|g| l.contains(g))).collect::<Vec<_>>().join("\n")
}

#[tokio::test]
async fn steps_are_sent_back_and_withdrawn_and_old_applications_finish_on_their_process_version() {
    let app = TestApp::demo().await;
    let (mut ent, page, old) = submitted_permit(&app, "13900000041").await;
    let old_case = accepted(&app, &old).await;

    // The county drops the fire review from the item's process while the old case runs.
    let mut sys = app.admin("sysadmin").await;
    let r = sys.raw(Method::POST, "/api/v1/workflow/definitions", "application/xml", &permit_without_fire_review()).await;
    assert_eq!((r.status, r.json()["version"].as_i64()), (StatusCode::CREATED, Some(2)), "{}", r.body);
    let (_, _, new) = submitted_permit_as(&app, "13900000042", "91431024MA4L0TB3XX").await;
    let new_case = accepted(&app, &new).await;
    let process_of = |case: i64| {
        format!(
            "SELECT d.version FROM approval_cases c JOIN wf_instances i ON i.id = c.instance_id JOIN wf_definitions d ON d.id = i.definition_id WHERE c.id = {case}"
        )
    };
    assert_eq!(app.scalar(&process_of(old_case)).await, 1, "the old case stays on version 1");
    assert_eq!(app.scalar(&process_of(new_case)).await, 2, "a case accepted now runs version 2");

    // Withdraw (撤回): the housing reviewer takes back an opinion given too early.
    let mut housing = app.staff("xuhui").await;
    let t = task_for(&mut housing, &old, "review_housing").await;
    housing.json(Method::POST, &format!("/api/v1/workflow/tasks/{t}/claim"), json!({})).await;
    let r = housing.json(Method::POST, &format!("/api/v1/workflow/tasks/{t}/complete"), json!({"opinion": "同意"})).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let r = housing.json(Method::POST, &format!("/api/v1/workflow/tasks/{t}/withdraw"), json!({})).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    let again = task_for(&mut housing, &old, "review_housing").await;
    let r = housing
        .json(Method::POST, &format!("/api/v1/workflow/tasks/{again}/complete"), json!({"opinion": "同意，附条件：按审定方案施工"}))
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "the withdrawn step is back with its doer: {}", r.body);
    complete_task(&app, "zhoujun", &old, "review_land", "符合规划条件", None).await;
    complete_task(&app, "fangyuan", &old, "review_fire", "同意", None).await;

    // Send back (退回): the lead sends the fire review back for a fuller opinion.
    let mut land = app.staff("zhoujun").await;
    let decide = task_for(&mut land, &old, "decide").await;
    land.json(Method::POST, &format!("/api/v1/workflow/tasks/{decide}/claim"), json!({})).await;
    let r = land
        .json(
            Method::POST,
            &format!("/api/v1/workflow/tasks/{decide}/send-back"),
            json!({"target": "review_fire", "reason": "请补充疏散宽度核算意见"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    let mut fire = app.staff("fangyuan").await;
    let back = task_for(&mut fire, &old, "review_fire").await;
    let r = fire.json(Method::POST, &format!("/api/v1/workflow/tasks/{back}/complete"), json!({"opinion": "疏散宽度满足规范，同意"})).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "back to the same person: {}", r.body);
    complete_task(&app, "zhoujun", &old, "decide", "准予许可", Some(true)).await;
    settle(&app).await;
    assert!(ent.get(&page).await.body.contains("已办结（准予）"), "the old case finished on version 1");
    assert_eq!(app.scalar_text(&format!("SELECT status FROM approval_cases WHERE id = {old_case}")).await, "approved");

    // The new case needs no fire review.
    let mut fire = app.staff("fangyuan").await;
    let r = fire.get("/api/v1/workflow/tasks").await;
    assert!(!r.body.contains(&new), "no fire task on version 2: {}", r.body);
    complete_task(&app, "zhoujun", &new, "review_land", "同意", None).await;
    complete_task(&app, "xuhui", &new, "review_housing", "同意", None).await;
    complete_task(&app, "zhoujun", &new, "decide", "准予许可", Some(true)).await;
    settle(&app).await;
    assert_eq!(app.scalar_text(&format!("SELECT status FROM approval_cases WHERE id = {new_case}")).await, "approved");
    assert_eq!(app.audit_count("workflow.task.send_back", "success").await, 1);
    assert_eq!(app.audit_count("workflow.task.withdraw", "success").await, 1);
}

/// Issue 13, finding 14: a decision step completed without an explicit `approved` granted the
/// permit, and a reviewer could set the lead's decision. Now only the decision step decides, it
/// must choose, and its page chooses nothing by default.
#[tokio::test]
async fn a_decision_needs_an_explicit_choice_that_only_the_decision_step_makes() {
    let app = TestApp::demo().await;
    let (mut ent, page, number) = submitted_permit(&app, "13900000031").await;
    settle(&app).await;
    let case = app.scalar(&format!("SELECT id FROM approval_cases WHERE number = '{number}'")).await;
    let mut clerk = app.staff("liuyang").await;
    assert_eq!(clerk.post_form(&format!("/cases/{case}"), &format!("/cases/{case}/accept"), &[]).await.status, StatusCode::SEE_OTHER);
    let instance = app.scalar(&format!("SELECT instance_id FROM approval_cases WHERE id = {case}")).await;
    let instance_page = format!("/workflow/instances/{instance}");

    // A reviewer's opinion cannot carry the decision, neither on the API nor on the page.
    let mut fire = app.staff("fangyuan").await;
    let t = task_for(&mut fire, &number, "review_fire").await;
    assert_eq!(fire.json(Method::POST, &format!("/api/v1/workflow/tasks/{t}/claim"), json!({})).await.status, StatusCode::NO_CONTENT);
    assert!(!fire.get(&instance_page).await.body.contains("name=\"decision\""), "a reviewer's form has no decision");
    let r = fire
        .json(Method::POST, &format!("/api/v1/workflow/tasks/{t}/complete"), json!({"opinion": "同意", "variables": {"approved": true}}))
        .await;
    assert_eq!((r.status, r.json()["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("variables.approved")), "{}", r.body);
    let r = fire
        .post_form(
            &instance_page,
            &format!("/workflow/tasks/{t}/complete"),
            &[("instance_id", &instance.to_string()), ("decision", "approve")],
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body.contains("只有决定环节可以作出决定"), "{}", r.body);
    complete_task(&app, "zhoujun", &number, "review_land", "同意", None).await;
    complete_task(&app, "xuhui", &number, "review_housing", "同意", None).await;
    let r = fire.json(Method::POST, &format!("/api/v1/workflow/tasks/{t}/complete"), json!({"opinion": "消防设计不合格，不同意"})).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    let vars = app.scalar_text(&format!("SELECT state FROM wf_instances WHERE id = {instance}")).await;
    assert!(!vars.contains("\"approved\""), "no reviewer set a decision: {vars}");

    // The decision step: no choice is made for the lead, and none is refused with the field's label.
    let mut land = app.staff("zhoujun").await;
    let t = task_for(&mut land, &number, "decide").await;
    assert_eq!(land.json(Method::POST, &format!("/api/v1/workflow/tasks/{t}/claim"), json!({})).await.status, StatusCode::NO_CONTENT);
    let r = land.get(&instance_page).await;
    assert!(r.body.contains(&format!("id=\"decision-{t}\"")) && r.body.contains("name=\"decision\""), "the decision step asks: {}", r.body);
    let fieldset = r.body.split(&format!("id=\"decision-{t}\"")).nth(1).and_then(|f| f.split("</fieldset>").next()).unwrap_or_default();
    assert!(fieldset.contains("value=\"deny\"") && !fieldset.contains("checked"), "no decision is chosen by default: {fieldset}");
    let r = land
        .post_form(&instance_page, &format!("/workflow/tasks/{t}/complete"), &[("instance_id", &instance.to_string()), ("opinion", "同意")])
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body.contains("办理结果") && r.body.contains("请选择同意或不同意"), "{}", r.body);
    let r = land.json(Method::POST, &format!("/api/v1/workflow/tasks/{t}/complete"), json!({"opinion": "准予许可"})).await;
    assert_eq!((r.status, r.json()["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("approved")), "{}", r.body);
    assert!(r.json()["message"].as_str().is_some_and(|m| m.starts_with("办理结果")), "{}", r.body);
    let r = land
        .json(
            Method::POST,
            &format!("/api/v1/workflow/tasks/{t}/complete"),
            json!({"opinion": "准予许可", "variables": {"approved": null}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "null is no choice");
    settle(&app).await;
    assert_eq!(app.scalar_text(&format!("SELECT status FROM approval_cases WHERE id = {case}")).await, "processing", "nothing granted");

    let r = land
        .post_form(
            &instance_page,
            &format!("/workflow/tasks/{t}/complete"),
            &[("instance_id", &instance.to_string()), ("opinion", "消防设计不合格，不予许可"), ("decision", "deny")],
        )
        .await;
    assert_eq!(r.location(), "/tasks?done=task_done", "{}", r.body);
    settle(&app).await;
    assert_eq!(app.scalar_text(&format!("SELECT status FROM approval_cases WHERE id = {case}")).await, "denied");
    assert!(ent.get(&page).await.body.contains("已办结（不予）"));
}

/// Issue 13, finding 12: queues matched units by name, and a new town unit named like a county
/// bureau received the bureau's queue and its case file. Queues now hold unit ids (the demo's
/// processes resolved their unit names once, at upload), and sibling units cannot share a name.
#[tokio::test]
async fn a_town_unit_named_like_a_county_bureau_gets_neither_its_queue_nor_its_cases() {
    let app = TestApp::demo().await;
    let mut sys = app.admin("sysadmin").await;
    let town = app.unit_id("珠泉镇").await.to_string();
    let fields = [("name", "市场监督管理局"), ("parent_id", town.as_str()), ("kind", "sub_unit")];
    let r = sys.post_form("/admin/units/new", "/admin/units", &fields).await;
    assert_eq!(r.location(), "/admin/units?done=unit_saved", "{}", r.body);
    let town_bureau = app.scalar(&format!("SELECT id FROM units WHERE name = '市场监督管理局' AND parent_id = {town}")).await;
    let county_bureau = app.scalar(&format!("SELECT id FROM units WHERE name = '市场监督管理局' AND id <> {town_bureau}")).await;
    // A town official works in the new unit (how accounts move is another slice's business).
    app.sql(&format!("UPDATE users SET unit_id = {town_bureau} WHERE username = 'sunqiang'")).await;

    // The demo's application for an individual business goes to the county bureau's review step.
    assert_eq!(tongban::boot::load_demo_applications(&app.opened).await.expect("demo applications"), 4);
    let case = app
        .scalar(
            "SELECT c.id FROM approval_cases c JOIN approval_items i ON i.id = c.item_id WHERE i.code = '431024-QT-SJ-002' AND c.status = 'pending'",
        )
        .await;
    let number = app.scalar_text(&format!("SELECT number FROM approval_cases WHERE id = {case}")).await;
    let mut clerk = app.staff("liuyang").await;
    assert_eq!(clerk.post_form(&format!("/cases/{case}"), &format!("/cases/{case}/accept"), &[]).await.status, StatusCode::SEE_OTHER);
    let instance = app.scalar(&format!("SELECT instance_id FROM approval_cases WHERE id = {case}")).await;
    let task = app.scalar(&format!("SELECT id FROM wf_tasks WHERE instance_id = {instance} AND node_id = 'register'")).await;
    let queue = app.scalar_text(&format!("SELECT value FROM wf_task_candidates WHERE task_id = {task} AND kind = 'unit'")).await;
    assert_eq!(queue, county_bureau.to_string(), "the queue is the county bureau's, by id");

    let mut town_user = app.staff("sunqiang").await;
    let r = town_user.get("/api/v1/workflow/tasks").await;
    assert!(r.status == StatusCode::OK && !r.body.contains(&number), "not in the town unit's to-do list: {}", r.body);
    assert!(!town_user.get("/tasks").await.body.contains(&number), "not on the to-do page");
    assert!(!town_user.get("/workbench").await.body.contains(&number), "not on the workbench");
    assert_eq!(town_user.get(&format!("/cases/{case}")).await.status, StatusCode::NOT_FOUND, "the case file stays hidden");
    let material = app.scalar(&format!("SELECT MIN(id) FROM case_materials WHERE case_id = {case}")).await;
    assert_eq!(town_user.get(&format!("/cases/{case}/materials/{material}")).await.status, StatusCode::NOT_FOUND);
    assert_eq!(town_user.get(&format!("/workflow/instances/{instance}")).await.status, StatusCode::NOT_FOUND);
    let r = town_user.json(Method::POST, &format!("/api/v1/workflow/tasks/{task}/claim"), json!({})).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "nor can it claim the task");

    // The county bureau still has it.
    let mut bureau = app.staff("huangli").await;
    assert_eq!(task_for(&mut bureau, &number, "register").await, task);
    assert_eq!(bureau.get(&format!("/cases/{case}")).await.status, StatusCode::OK);
    complete_task(&app, "huangli", &number, "register", "材料齐全，准予登记", None).await;
    settle(&app).await;
    assert_eq!(app.scalar_text(&format!("SELECT status FROM approval_cases WHERE id = {case}")).await, "approved");

    // Names are unique among siblings: on create, edit and move.
    let r = sys.post_form("/admin/units/new", "/admin/units", &fields).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body.contains("名称") && r.body.contains("同一上级单位下已有同名单位"), "{}", r.body);
    let root = app.unit_id("嘉禾县人民政府").await.to_string();
    let r = sys
        .post_form(
            &format!("/admin/units/{town_bureau}/edit"),
            &format!("/admin/units/{town_bureau}"),
            &[("name", "市场监督管理局"), ("parent_id", &root), ("kind", "department")],
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "moving it beside the county bureau is refused");
    assert!(r.body.contains("同一上级单位下已有同名单位"));
    let health = app.unit_id("卫生健康局").await;
    let r = sys
        .post_form(
            &format!("/admin/units/{health}/edit"),
            &format!("/admin/units/{health}"),
            &[("name", "市场监督管理局"), ("parent_id", &root), ("kind", "department")],
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "renaming a sibling to the same name is refused");
    let r = sys
        .json(
            Method::POST,
            "/api/v1/units",
            json!({"name": "市场监督管理局", "kind": "sub_unit", "parent_id": town.parse::<i64>().unwrap_or_default()}),
        )
        .await;
    assert_eq!((r.status, r.json()["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("name")), "{}", r.body);
}

/// A process whose decision step ends another way (its time limit runs out) grants nothing.
#[tokio::test]
async fn a_decision_step_that_times_out_does_not_grant() {
    let app = TestApp::demo().await;
    let mut sys = app.admin("sysadmin").await;
    let late = r#"<bpmn:boundaryEvent id="decide_late" attachedToRef="decide"><bpmn:timerEventDefinition><bpmn:timeDuration>P1D</bpmn:timeDuration></bpmn:timerEventDefinition></bpmn:boundaryEvent>
    <bpmn:sequenceFlow id="f_late" sourceRef="decide_late" targetRef="end_late" />
    <bpmn:endEvent id="end_late" name="逾期未决定" />
  </bpmn:process>"#;
    let v2 = include_str!("../../../crates/approval/data/processes/building_permit.bpmn").replace("</bpmn:process>", late);
    let r = sys.raw(Method::POST, "/api/v1/workflow/definitions", "application/xml", &v2).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let (mut ent, page, number) = submitted_permit(&app, "13900000041").await;
    settle(&app).await;
    let case = app.scalar(&format!("SELECT id FROM approval_cases WHERE number = '{number}'")).await;
    let mut clerk = app.staff("liuyang").await;
    assert_eq!(clerk.post_form(&format!("/cases/{case}"), &format!("/cases/{case}/accept"), &[]).await.status, StatusCode::SEE_OTHER);
    complete_task(&app, "zhoujun", &number, "review_land", "同意", None).await;
    complete_task(&app, "xuhui", &number, "review_housing", "同意", None).await;
    complete_task(&app, "fangyuan", &number, "review_fire", "同意", None).await;
    app.sql("UPDATE wf_timers SET due_on = '2000-01-03'").await;
    let report = app.opened.workflow.tick(tongban_platform::clock::now_millis()).await.expect("tick");
    assert_eq!(report.timers_fired, 1);
    settle(&app).await;
    assert_eq!(app.scalar_text(&format!("SELECT status FROM approval_cases WHERE id = {case}")).await, "denied");
    assert!(ent.get(&page).await.body.contains("已办结（不予）"));
}
