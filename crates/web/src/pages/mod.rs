//! Server-rendered staff pages. Each module owns one area; this one holds the shared layout,
//! rendering helpers and the route table.

mod admin_clients;
mod admin_roles;
mod admin_units;
mod admin_users;
pub(crate) mod audit;
mod auth;
mod calendar;
mod cases;
mod catalogue;
mod certificates;
mod documents;
mod intake;
mod me;
mod notifications;
mod passkeys;
mod pki;
mod public;
mod public_codes;
mod regions;
mod seals;
mod supervision;
mod workbench;
mod workflow;

use askama::Template;
use axum::{
    Extension, Router,
    http::{StatusCode, header},
    response::{Html, IntoResponse, Redirect, Response},
    routing::{get, post},
};
use rust_embed::RustEmbed;
use tongban_authz::{Permission, Principal};
use tongban_identity::Realm;
use tongban_platform::DomainError;

use crate::{ctx::Ctx, error::PageError, i18n::Tr, state::AppState};

/// The result type of page handlers.
pub type PageResult = Result<Response, PageError>;

/// The navigation user shown in the header.
pub struct NavUser {
    /// Real name.
    pub display_name: String,
    /// Unit name.
    pub unit_name: String,
    /// Show the units page.
    pub can_units: bool,
    /// Show the accounts page.
    pub can_users: bool,
    /// Show the roles page.
    pub can_roles: bool,
    /// Show the audit trail.
    pub can_audit: bool,
    /// Show the working-day calendar (every logged-in staff member may read it).
    pub can_calendar: bool,
    /// Show the process definitions.
    pub can_workflows: bool,
    /// Show the catalogue administration.
    pub can_catalogue: bool,
    /// Show the window's case list.
    pub can_cases: bool,
    /// Show the supervision dashboard.
    pub can_supervise: bool,
    /// Show the relying parties (single sign-on clients).
    pub can_clients: bool,
    /// The certificate authority (证书管理).
    pub can_pki: bool,
    /// Electronic seals (用印).
    pub can_seal: bool,
}

/// What the base layout needs.
pub struct Layout {
    /// Translator.
    pub tr: Tr,
    /// CSRF token for forms.
    pub csrf: String,
    /// Logged-in user, if the log-in is complete.
    pub user: Option<NavUser>,
    /// Page title.
    pub title: String,
    /// Active navigation item.
    pub active: &'static str,
    /// A one-line status message.
    pub flash: String,
}

impl Layout {
    /// The layout for `ctx` with a translated title.
    pub fn new(ctx: &Ctx, title_key: &str, active: &'static str) -> Layout {
        let user = ctx.principal().ok().map(nav_user);
        Layout { tr: ctx.tr, csrf: ctx.csrf.clone(), user, title: ctx.tr.t(title_key).to_string(), active, flash: String::new() }
    }

    /// The same layout with a status message from a `?done=` key.
    pub fn with_flash(mut self, done: Option<&str>) -> Layout {
        if let Some(key) = done.filter(|k| k.len() < 40 && k.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')) {
            self.flash = self.tr.t(&format!("flash.{key}")).to_string();
        }
        self
    }
}

fn nav_user(p: &Principal) -> NavUser {
    NavUser {
        display_name: p.display_name.clone(),
        unit_name: p.unit_name.clone(),
        can_units: p.has(Permission::UnitRead),
        can_users: p.has(Permission::UserRead),
        can_roles: p.has(Permission::RoleRead) || p.has(Permission::GrantWrite),
        can_audit: p.has(Permission::AuditRead),
        can_calendar: true,
        can_workflows: p.has(Permission::WorkflowDefine) || p.has(Permission::WorkflowStart),
        can_catalogue: p.has(Permission::CatalogueWrite),
        can_cases: p.has(Permission::ApprovalAccept),
        can_supervise: p.has(Permission::SupervisionRead),
        can_clients: p.has(Permission::ConfigWrite),
        can_pki: p.has(Permission::PkiManage),
        can_seal: p.has(Permission::SealUse),
    }
}

/// The standalone error page.
#[derive(Template)]
#[template(path = "error.html")]
pub struct ErrorPage {
    /// Translator.
    pub tr: Tr,
    /// HTTP status.
    pub status: u16,
    /// Message.
    pub message: String,
}

/// Renders a template as a 200 page.
pub fn render<T: Template>(t: &T) -> PageResult {
    render_status(StatusCode::OK, t)
}

/// Renders a template with a status (e.g. 422 for a form with errors).
pub fn render_status<T: Template>(status: StatusCode, t: &T) -> PageResult {
    let html = t.render().map_err(|e| DomainError::Internal(format!("template: {e}")))?;
    Ok((status, [(header::CACHE_CONTROL, "no-store")], Html(html)).into_response())
}

/// A 303 redirect.
pub fn see_other(to: &str) -> PageResult {
    Ok(Redirect::to(to).into_response())
}

/// Splits a form error into (field, localised message) for re-rendering the form; other errors pass through.
pub fn form_error(tr: &Tr, e: DomainError) -> Result<(String, String), PageError> {
    match e {
        DomainError::Invalid(ref f) => Ok((f.field.clone(), crate::error::message(tr, &e))),
        DomainError::Conflict(_) => Ok((String::new(), crate::error::message(tr, &e))),
        other => Err(PageError(other)),
    }
}

/// The text fields of a form sent either url-encoded or as `multipart/form-data` (with file
/// inputs, whose contents become the field's text). Files must be UTF-8.
pub async fn form_texts(req: axum::extract::Request) -> Result<Vec<(String, String)>, DomainError> {
    use axum::extract::FromRequest;
    let multipart =
        req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|v| v.starts_with("multipart/form-data"));
    if !multipart {
        let bytes = axum::body::Bytes::from_request(req, &()).await.map_err(|_| DomainError::invalid("body", "error.malformed"))?;
        return crate::parse::form_body(&bytes);
    }
    let mut form = axum::extract::Multipart::from_request(req, &()).await.map_err(|_| DomainError::invalid("body", "error.malformed"))?;
    let mut out = Vec::new();
    while let Some(field) = form.next_field().await.map_err(|_| DomainError::invalid("body", "error.malformed"))? {
        let name = field.name().unwrap_or("").to_string();
        let bytes = field.bytes().await.map_err(|_| DomainError::invalid(&name, "error.malformed"))?;
        let text = String::from_utf8(bytes.to_vec()).map_err(|_| DomainError::invalid(&name, "workflow.error.not_utf8"))?;
        out.push((name, text));
    }
    Ok(out)
}

/// The fields of a `multipart/form-data` form as (name, file name, bytes); text fields have an
/// empty file name.
pub async fn form_texts_and_files(req: axum::extract::Request) -> Result<Vec<(String, String, Vec<u8>)>, DomainError> {
    use axum::extract::FromRequest;
    let mut form = axum::extract::Multipart::from_request(req, &()).await.map_err(|_| DomainError::invalid("file", "error.malformed"))?;
    let mut out = Vec::new();
    while let Some(field) = form.next_field().await.map_err(|_| DomainError::invalid("file", "approval.error.upload_too_large"))? {
        let name = field.name().unwrap_or("").to_string();
        let file_name = field.file_name().unwrap_or("").to_string();
        let bytes = field.bytes().await.map_err(|_| DomainError::invalid("file", "approval.error.upload_too_large"))?;
        out.push((name, file_name, bytes.to_vec()));
    }
    Ok(out)
}

/// Parses a numeric form field, naming it on failure.
pub fn parse_id(field: &str, value: &str) -> Result<i64, DomainError> {
    value.trim().parse().map_err(|_| DomainError::invalid(field, "error.invalid_value"))
}

#[derive(RustEmbed)]
#[folder = "static/"]
struct Assets;

async fn static_file(axum::extract::Path(path): axum::extract::Path<String>) -> Response {
    match Assets::get(&path) {
        Some(file) => {
            let mime = if path.ends_with(".css") {
                "text/css; charset=utf-8"
            } else if path.ends_with(".js") {
                "text/javascript; charset=utf-8"
            } else if path.ends_with(".svg") {
                "image/svg+xml"
            } else {
                "application/octet-stream"
            };
            ([(header::CONTENT_TYPE, mime), (header::CACHE_CONTROL, "public, max-age=3600")], file.data.into_owned()).into_response()
        }
        None => crate::error::not_found(axum::http::Uri::from_static("/static")).await,
    }
}

async fn home(ctx: Ctx) -> Response {
    if ctx.principal().is_ok() { Redirect::to("/workbench").into_response() } else { Redirect::to("/login").into_response() }
}

async fn set_lang(axum::extract::Path(code): axum::extract::Path<String>, headers: axum::http::HeaderMap) -> Response {
    let lang = crate::i18n::Lang::parse(&code).unwrap_or_default();
    // Only same-site paths are followed back.
    let back = headers
        .get(header::REFERER)
        .and_then(|v| v.to_str().ok())
        .and_then(|r| r.split_once("://").map(|(_, rest)| rest))
        .and_then(|rest| rest.find('/').map(|i| rest[i..].to_string()))
        .filter(|p| p.starts_with('/') && !p.starts_with("//"))
        .unwrap_or_else(|| "/".into());
    let cookie = format!("{}={}; Path=/; SameSite=Lax; Max-Age=31536000", crate::ctx::LANG_COOKIE, lang.tag());
    ([(header::SET_COOKIE, cookie)], Redirect::to(&back)).into_response()
}

/// The page routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(home))
        .route("/static/{*path}", get(static_file))
        .route("/lang/{code}", get(set_lang))
        .route("/login", get(auth::login_page).post(auth::login_submit))
        .route("/login/totp", get(auth::totp_page).post(auth::totp_submit))
        .route("/login/enrol", get(auth::enrol_page).post(auth::enrol_submit))
        .route("/login/password", get(auth::password_page).post(auth::password_submit))
        .route("/logout", post(auth::logout))
        .route("/login/certificate", get(certificates::proxy_login))
        .route("/login/certificate/challenge", post(certificates::challenge))
        .route("/login/certificate/finish", post(certificates::finish))
        .route("/login/passkey/begin", post(passkeys::login_begin).layer(Extension(Realm::Staff)))
        .route("/login/passkey/finish", post(passkeys::login_finish).layer(Extension(Realm::Staff)))
        .route("/public/login/passkey/begin", post(passkeys::login_begin).layer(Extension(Realm::Public)))
        .route("/public/login/passkey/finish", post(passkeys::login_finish).layer(Extension(Realm::Public)))
        .route("/me/passkeys/begin", post(passkeys::register_begin).layer(Extension(Realm::Staff)))
        .route("/me/passkeys/finish", post(passkeys::register_finish).layer(Extension(Realm::Staff)))
        .route("/me/passkeys/{id}/remove", post(passkeys::remove).layer(Extension(Realm::Staff)))
        .route("/public/passkeys/begin", post(passkeys::register_begin).layer(Extension(Realm::Public)))
        .route("/public/passkeys/finish", post(passkeys::register_finish).layer(Extension(Realm::Public)))
        .route("/public/passkeys/{id}/remove", post(passkeys::remove).layer(Extension(Realm::Public)))
        .route("/workbench", get(workbench::page))
        .route("/pki/ca.pem", get(pki::chain))
        .route("/pki/ca.crl", get(pki::crl))
        .route("/pki/certificates/{serial}", get(pki::certificate))
        .route("/admin/pki", get(pki::admin))
        .route("/admin/pki/staff", post(pki::issue_staff))
        .route("/admin/pki/seal", post(pki::issue_seal))
        .route("/admin/pki/{serial}/revoke", post(pki::revoke))
        .route("/admin/pki/seals", post(seals::register))
        .route("/seals", get(seals::page).post(seals::seal))
        .route("/documents", get(documents::list).post(documents::create))
        .route("/documents/new", get(documents::new_form))
        .route("/documents/groups", get(documents::groups).post(documents::create_group))
        .route("/documents/groups/{id}/delete", post(documents::delete_group))
        .route("/documents/{id}", get(documents::show))
        .route("/documents/{id}/number", post(documents::number))
        .route("/documents/{id}/pdf", get(documents::pdf))
        .route("/documents/{id}/attachments", post(documents::attach))
        .route("/documents/{id}/attachments/{aid}", get(documents::attachment))
        .route("/documents/{id}/attachments/{aid}/delete", post(documents::detach))
        .route("/documents/{id}/submit", post(documents::submit))
        .route("/documents/{id}/recall", post(documents::recall))
        .route("/documents/{id}/issue", post(documents::issue))
        .route("/documents/{id}/withdraw", post(documents::withdraw))
        .route("/inbox", get(documents::inbox))
        .route("/inbox/{id}", get(documents::delivery))
        .route("/inbox/{id}/package", get(documents::package))
        .route("/inbox/{id}/file", get(documents::delivered_file))
        .route("/inbox/{id}/sign", post(documents::sign))
        .route("/inbox/{id}/refuse", post(documents::refuse))
        .route("/inbox/{id}/register", post(documents::register))
        .route("/verify", get(seals::verify_form).post(seals::verify))
        .route("/admin/clients", get(admin_clients::list).post(admin_clients::create))
        .route("/admin/clients/new", get(admin_clients::new_form))
        .route("/admin/clients/{id}", get(admin_clients::edit_form).post(admin_clients::update))
        .route("/admin/clients/{id}/{action}", post(admin_clients::act))
        .route("/admin/units", get(admin_units::list).post(admin_units::create))
        .route("/admin/units/new", get(admin_units::new_form))
        .route("/admin/units/{id}/edit", get(admin_units::edit_form))
        .route("/admin/units/{id}", post(admin_units::update))
        .route("/admin/units/{id}/{action}", post(admin_units::toggle))
        .route("/admin/regions", get(regions::list).post(regions::create))
        .route("/admin/calendar", get(calendar::show))
        .route("/admin/calendar/day", post(calendar::set_day))
        .route("/admin/calendar/import", post(calendar::import))
        .route("/admin/users", get(admin_users::list).post(admin_users::create))
        .route("/admin/users/new", get(admin_users::new_form))
        .route("/admin/users/{id}", get(admin_users::detail).post(admin_users::update))
        .route("/admin/users/{id}/edit", get(admin_users::edit_form))
        .route("/admin/users/{id}/grants", post(admin_users::add_grant))
        .route("/admin/users/{id}/certificates/{cid}/unbind", post(admin_users::unbind_certificate))
        .route("/admin/users/{id}/{action}", post(admin_users::action))
        .route("/admin/grants/{id}/revoke", post(admin_users::revoke_grant))
        .route("/admin/roles", get(admin_roles::list).post(admin_roles::create))
        .route("/admin/roles/new", get(admin_roles::new_form))
        .route("/admin/roles/{id}/edit", get(admin_roles::edit_form))
        .route("/admin/roles/{id}", post(admin_roles::update))
        .route("/admin/roles/{id}/{action}", post(admin_roles::set_assignable))
        .route("/admin/workflows", get(workflow::definitions).post(workflow::upload))
        .route("/admin/workflows/{id}", get(workflow::definition))
        .route("/admin/workflows/{id}/start", post(workflow::start))
        .route("/tasks", get(workflow::tasks))
        .route("/workflow/instances/{id}", get(workflow::instance))
        .route("/workflow/tasks/{id}/attachments", post(workflow::attach))
        .route("/workflow/instances/{id}/attachments/{aid}", get(workflow::attachment))
        .route("/workflow/tasks/{id}/{action}", post(workflow::act))
        .route("/public", get(intake::home))
        .route("/public/applications", post(intake::start))
        .route("/public/applications/{id}", get(intake::application).post(intake::save))
        .route("/public/applications/{id}/materials", post(intake::upload))
        .route("/public/applications/{id}/materials/{mid}/remove", post(intake::remove_material))
        .route("/public/applications/{id}/withdraw", post(intake::withdraw))
        .route("/public/applications/{id}/supplement", post(intake::answer_supplement))
        .route("/public/applications/{id}/rate", post(intake::rate))
        .route("/public/applications/{id}/receipt", get(intake::receipt))
        .route("/public/applications/{id}/result", get(intake::result))
        .route("/status", get(intake::status_query))
        .route("/public/register", get(public::register_page).post(public::register))
        .route("/public/login", get(public::login_page).post(public::login))
        .route("/public/logout", post(public::logout))
        .route("/public/login/otp", get(public_codes::show).post(public_codes::verify))
        .route("/public/login/otp/send", post(public_codes::send))
        .route("/public/account/login-otp", post(public_codes::choose))
        .route("/cases", get(cases::list))
        .route("/cases/{id}", get(cases::show))
        .route("/cases/{id}/materials/{mid}", get(cases::material))
        .route("/cases/{id}/result", get(cases::result))
        .route("/cases/{id}/notice/{kind}", get(cases::notice))
        .route("/cases/{id}/{action}", post(cases::act))
        .route("/supervision", get(supervision::dashboard))
        .route("/supervision/export.csv", get(supervision::export))
        .route("/supervision/tasks/{id}/urge", post(supervision::urge))
        .route("/supervision/followups/{id}/close", post(supervision::close_followup))
        .route("/guide", get(catalogue::guide_list))
        .route("/guide/{id}", get(catalogue::guide))
        .route("/guide/{id}/print", get(catalogue::guide_print))
        .route("/admin/catalogue", get(catalogue::admin_list).post(catalogue::create))
        .route("/admin/catalogue/new", get(catalogue::new_form))
        .route("/admin/catalogue/{id}/edit", get(catalogue::edit_form))
        .route("/admin/catalogue/{id}", post(catalogue::update))
        .route("/admin/catalogue/{id}/{action}", post(catalogue::toggle))
        .route("/audit", get(audit::page))
        .route("/audit/export.csv", get(audit::export))
        .route("/me/notifications", get(notifications::list))
        .route("/me/notifications/read", post(notifications::mark_read))
        .route("/me/sessions", get(me::sessions))
        .route("/me/sessions/{id}/revoke", post(me::revoke_session))
        .route("/me/apps/{client_id}/revoke", post(me::revoke_app))
        .route("/me/tokens", get(me::tokens).post(me::create_token))
        .route("/me/tokens/{id}/revoke", post(me::revoke_token))
        .route("/me/password", get(me::password_page).post(me::password_submit))
        .route("/me/totp", get(me::totp_page).post(me::totp_submit))
        .route("/me/certificates", get(certificates::mine).post(certificates::bind_begin))
        .route("/me/certificates/bind", post(certificates::bind_finish))
}
