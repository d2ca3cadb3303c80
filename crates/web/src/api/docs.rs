//! The OpenAPI document and a browsable, script-free page generated from it.

use askama::Template;
use axum::{Json, response::Response};
use utoipa::{
    Modify, OpenApi,
    openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme},
};

use super::{calendar, cases, catalogue, documents, dto::*, handlers, workflow};
use crate::{ctx::Ctx, error::ErrorBody, pages::Layout};

struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme("bearer", SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()));
        components.add_security_scheme("session", SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::new(crate::ctx::SESSION_COOKIE))));
    }
}

/// The error answers every API operation can give, each with the `{code, message, field?}` body:
/// added to every operation under `/api/v1` that does not describe them itself.
struct ErrorResponses;

/// Status, and when it is answered.
const ERROR_RESPONSES: [(&str, &str); 5] = [
    ("401", "Not logged in, or the token is unknown, expired or revoked (`unauthenticated`)"),
    ("403", "Logged in but not allowed, or outside the caller's data scope (`forbidden`)"),
    ("404", "No such object, or one the caller may not know of (`not_found`)"),
    ("409", "The object's state does not allow this (`conflict`)"),
    ("422", "Bad input: `field` names the parameter or body field at fault (`invalid`)"),
];

impl Modify for ErrorResponses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder};
        let response = |description: &str| {
            let content = ContentBuilder::new().schema(Some(Ref::from_schema_name("ErrorBody"))).build();
            RefOr::T(ResponseBuilder::new().description(description).content("application/json", content).build())
        };
        for (path, item) in openapi.paths.paths.iter_mut() {
            if !path.starts_with("/api/v1/") {
                continue;
            }
            let operations = [&mut item.get, &mut item.put, &mut item.post, &mut item.delete, &mut item.patch];
            for op in operations.into_iter().flatten() {
                for (status, description) in ERROR_RESPONSES {
                    // Replaces a bare entry too, so that every error has the same description and body.
                    op.responses.responses.insert(status.to_string(), response(description));
                }
            }
        }
    }
}

/// The API description.
#[derive(OpenApi)]
#[openapi(
    info(title = "tongban API", description = "County e-government platform API. Errors are `{code, message, field?}`."),
    paths(
        handlers::me, handlers::list_regions, handlers::create_region, handlers::list_units, handlers::get_unit, handlers::create_unit, handlers::update_unit,
        handlers::list_users, handlers::get_user, handlers::create_user, handlers::update_user, handlers::user_action,
        handlers::list_grants, handlers::create_grant, handlers::delete_grant, handlers::list_roles, handlers::create_role,
        handlers::update_role, handlers::audit_records, handlers::list_sessions, handlers::delete_session,
        handlers::list_tokens, handlers::create_token, handlers::delete_token,
        calendar::working_days, calendar::deadline, calendar::is_working_day, calendar::year, calendar::import,
        workflow::upload, workflow::definitions, workflow::definition, workflow::start, workflow::instance, workflow::cancel,
        workflow::tasks, workflow::act,
        catalogue::list, catalogue::get, catalogue::create, catalogue::update,
        cases::list, cases::get, cases::act, cases::register, cases::result, cases::public_status, cases::supervision,
        documents::create, documents::get, documents::update, documents::number, documents::prefix, documents::issue, documents::inbox,
        documents::delivery, documents::sign, documents::refuse, documents::withdraw, documents::tracking, documents::submit, documents::recall, documents::countersigns, documents::attachments, documents::attach, documents::groups, documents::create_group, documents::delete_group, documents::register
    ),
    components(schemas(ErrorBody, MeDto, RegionDto, UnitDto, UnitBody, UserDto, NewUserBody, UserBody, OneTimePasswordDto, RoleDto, RoleBody,
        GrantDto, GrantBody, AuditRecordDto, AuditPageDto, SessionDto, TokenDto, TokenBody, NewTokenDto,
        calendar::DayKindDto, calendar::WorkingDaysDto, calendar::DeadlineDto, calendar::DayDto, calendar::PeriodDto,
        calendar::ScheduleDayDto, calendar::YearScheduleDto,
        workflow::DefinitionDto, workflow::StepDto, workflow::DefinitionDetailDto, workflow::TaskDto, workflow::InstanceDto,
        workflow::StartDto, workflow::CreatedDto, workflow::ActionDto, catalogue::ItemDto, catalogue::ItemCreatedDto, cases::CaseActionDto, tongban_approval::cases::WindowApplication, tongban_approval::cases::WindowApplicant,
        tongban_approval::cases::WindowMaterial, tongban_approval::cases::WindowReceipt, documents::DocumentCreatedDto, documents::DocumentNumberDto,
        documents::PrefixDto, documents::IssueDto, documents::GroupDto, documents::RefuseDto, documents::SubmitDto, documents::RegisterDto)),
    modifiers(&Security, &ErrorResponses),
    security(("bearer" = []), ("session" = []))
)]
pub struct ApiDoc;

pub async fn openapi_json() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}

struct Operation {
    method: String,
    path: String,
    summary: String,
    params: Vec<String>,
    body: String,
    responses: Vec<String>,
}

#[derive(Template)]
#[template(path = "api_docs.html")]
struct DocsPage {
    l: Layout,
    operations: Vec<Operation>,
}

fn operations() -> Vec<Operation> {
    let spec = serde_json::to_value(ApiDoc::openapi()).unwrap_or_default();
    let mut out = Vec::new();
    let Some(paths) = spec.get("paths").and_then(|p| p.as_object()) else {
        return out;
    };
    for (path, item) in paths {
        let Some(methods) = item.as_object() else {
            continue;
        };
        for (method, op) in methods {
            let text = |k: &str| op.get(k).and_then(|v| v.as_str()).unwrap_or("").to_string();
            let params = op
                .get("parameters")
                .and_then(|p| p.as_array())
                .map(|a| a.iter().filter_map(|p| p.get("name").and_then(|n| n.as_str()).map(String::from)).collect())
                .unwrap_or_default();
            let body = op
                .pointer("/requestBody/content/application~1json/schema/$ref")
                .and_then(|v| v.as_str())
                .map(|r| r.rsplit('/').next().unwrap_or(r).to_string())
                .unwrap_or_default();
            let responses = op.get("responses").and_then(|r| r.as_object()).map(|r| r.keys().cloned().collect()).unwrap_or_default();
            let summary = if text("summary").is_empty() { text("description") } else { text("summary") };
            out.push(Operation { method: method.to_uppercase(), path: path.clone(), summary, params, body, responses });
        }
    }
    out
}

pub async fn docs_page(ctx: Ctx) -> Result<Response, crate::error::PageError> {
    crate::pages::render(&DocsPage { l: Layout::new(&ctx, "api.title", ""), operations: operations() })
}
