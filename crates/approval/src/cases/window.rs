//! Window registration (窗口收件): an application handed in at a service-hall window, or pushed by
//! the county's service-hall software through the API, becomes a case directly on the internal
//! side — the applicant is present, so no public account and no public-side record exist. The
//! applicant follows it by SMS/e-mail and collects the result at the window or by post.

use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use sqlx::Row;
use tongban_audit::{Actor, Entry};
use tongban_authz::Principal;
use tongban_platform::{
    DomainError,
    clock::{local_date, now_millis},
    error::DomainResult,
    upload,
};

use super::{CHANNEL_WINDOW, CaseService, NOT_FOUND};
use crate::{
    catalogue::{Audience, ServiceItem},
    form::validate,
    idcheck::{check_credit_code, check_id_number},
    zone::{Applicant, MaterialRef, ZoneMessage},
};

/// The applicant as the window registers them.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WindowApplicant {
    /// `person` or `enterprise`.
    pub kind: String,
    /// Real name or enterprise name.
    pub name: String,
    /// Resident ID number (GB 11643) or unified social credit code (GB 32100).
    pub cert_no: String,
    /// Mobile phone, for status messages.
    pub phone: String,
    /// E-mail (optional).
    #[serde(default)]
    pub email: String,
}

/// A material handed in, scanned or uploaded by the hall software.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WindowMaterial {
    /// Position in the item's materials list.
    pub index: u32,
    /// File name.
    pub file_name: String,
    /// The file, base64-encoded.
    pub content_base64: String,
}

/// An application registered at the window (窗口收件).
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WindowApplication {
    /// Catalogue item.
    pub item_id: i64,
    /// Who applies.
    pub applicant: WindowApplicant,
    /// The form, as the item defines it.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub form: Map<String, Value>,
    /// Materials.
    #[serde(default)]
    pub materials: Vec<WindowMaterial>,
}

/// What registering answers: the case and its number (收件回执).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct WindowReceipt {
    /// Case id.
    pub case_id: i64,
    /// Application number (JC…).
    pub number: String,
    /// Received (ms).
    pub received_at: i64,
}

fn checked_applicant(a: &WindowApplicant, item: &ServiceItem, today: time::Date) -> DomainResult<Applicant> {
    let field = |f: &str| format!("applicant.{f}");
    let (kind, cert_no) = match a.kind.trim() {
        "person" => {
            ("person", check_id_number(&a.cert_no, today).map_err(|_| DomainError::invalid(&field("cert_no"), "approval.error.id_number"))?)
        }
        "enterprise" => (
            "enterprise",
            check_credit_code(&a.cert_no).map_err(|_| DomainError::invalid(&field("cert_no"), "approval.error.credit_code"))?,
        ),
        _ => return Err(DomainError::invalid(&field("kind"), "error.invalid_value")),
    };
    let fits =
        matches!((item.spec.audience, kind), (Audience::Both, _) | (Audience::Person, "person") | (Audience::Enterprise, "enterprise"));
    if !fits {
        return Err(DomainError::invalid(&field("kind"), "approval.error.audience"));
    }
    let name = a.name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(DomainError::invalid(&field("name"), "error.required"));
    }
    tongban_platform::text::check_name(&field("name"), name)?;
    let phone = a.phone.trim();
    if !(phone.len() == 11 && phone.starts_with('1') && phone.bytes().all(|b| b.is_ascii_digit())) {
        return Err(DomainError::invalid(&field("phone"), "approval.error.phone"));
    }
    let email = a.email.trim();
    if !email.is_empty() && !email.split_once('@').is_some_and(|(l, d)| !l.is_empty() && d.contains('.')) {
        return Err(DomainError::invalid(&field("email"), "approval.error.email"));
    }
    Ok(Applicant { account_id: 0, kind: kind.into(), name: name.into(), cert_no, phone: phone.into(), email: email.into() })
}

impl CaseService {
    /// Checks materials (index, encoding, size, declared vs sniffed type) and stores them;
    /// nothing is stored unless all pass.
    async fn store_materials(&self, item: &ServiceItem, materials: &[WindowMaterial]) -> DomainResult<Vec<MaterialRef>> {
        let mut decoded = Vec::with_capacity(materials.len());
        for (i, m) in materials.iter().enumerate() {
            let spec = item
                .spec
                .materials
                .get(m.index as usize)
                .ok_or_else(|| DomainError::invalid(&format!("materials[{i}].index"), "approval.error.invalid"))?;
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(m.content_base64.trim())
                .map_err(|_| DomainError::invalid(&format!("materials[{i}].content_base64"), "error.invalid_value"))?;
            let checked = upload::check(&m.file_name, &bytes, self.upload_limit)
                .map_err(|e| DomainError::invalid(&format!("materials[{i}].file_name"), e.message_key()))?;
            decoded.push((m.index, spec.name.clone(), checked, bytes));
        }
        let mut refs = Vec::with_capacity(decoded.len());
        for (index, name, checked, bytes) in decoded {
            let sm3 = self.blobs.put(&bytes).await.map_err(|e| DomainError::Internal(format!("storing upload: {e}")))?;
            refs.push(MaterialRef {
                index,
                name,
                file_name: checked.file_name,
                content_type: checked.content_type.into(),
                size: bytes.len() as u64,
                sm3,
            });
        }
        Ok(refs)
    }

    /// Registers an application handed in at the window (窗口收件): applicant, form and materials
    /// are checked like an online submission; the case waits in the acceptance queue.
    pub async fn register(&self, caller: &Principal, actor: &Actor, app: &WindowApplication) -> DomainResult<WindowReceipt> {
        self.require_window(caller, actor, "approval.case.register", 0).await?;
        let now = (self.now)();
        let today = local_date(now).ok_or_else(|| DomainError::Internal("clock".into()))?;
        let item = self.catalogue.item(app.item_id, false).await.map_err(|_| DomainError::invalid("item_id", "error.not_found"))?;
        let applicant = checked_applicant(&app.applicant, &item, today)?;
        let form = validate(&item.spec.form, &app.form, today).map_err(|problems| match problems.first() {
            Some(p) => DomainError::invalid(&format!("form.{}", p.field), p.key),
            None => DomainError::invalid("form", "approval.error.invalid"),
        })?;
        if let Some((i, _)) =
            item.spec.materials.iter().enumerate().find(|(i, m)| m.required && !app.materials.iter().any(|x| x.index as usize == *i))
        {
            return Err(DomainError::invalid(&format!("materials[{i}]"), "approval.error.material_missing"));
        }
        let materials = self.store_materials(&item, &app.materials).await?;
        let day = format!("{:04}{:02}{:02}", today.year(), u8::from(today.month()), today.day());
        let mut tx = self.db.begin_write().await?;
        let seq: i64 =
            sqlx::query("INSERT INTO case_numbers (day, last) VALUES ($1, 1) ON CONFLICT (day) DO UPDATE SET last = case_numbers.last + 1 RETURNING last")
                .bind(&day)
                .fetch_one(tx.conn())
                .await?
                .get(0);
        let number = format!("JC{day}{seq:05}");
        let applicant_json = serde_json::to_string(&applicant).map_err(|e| DomainError::Internal(e.to_string()))?;
        let form_json = serde_json::to_string(&form).map_err(|e| DomainError::Internal(e.to_string()))?;
        let id: i64 = sqlx::query(
            "INSERT INTO approval_cases (number, item_id, applicant, form, status, received_at, updated_at, channel) VALUES ($1,$2,$3,$4,'pending',$5,$5,$6) RETURNING id",
        )
        .bind(&number)
        .bind(item.id)
        .bind(applicant_json)
        .bind(form_json)
        .bind(now)
        .bind(CHANNEL_WINDOW)
        .fetch_one(tx.conn())
        .await?
        .get(0);
        self.add_materials(&mut tx, id, &materials, now).await?;
        self.event(&mut tx, id, &actor.name, "received", "窗口收件").await?;
        tongban_platform::outbox::publish(&mut tx, "approval.case.received", &json!({"case_id": id, "number": number})).await?;
        let details = json!({"number": number, "item": item.spec.name, "materials": materials.len()});
        self.audit.append(&mut tx, actor, Entry::success("approval.case.register", "approval_case", id, details)).await?;
        tx.commit().await?;
        Ok(WindowReceipt { case_id: id, number, received_at: now })
    }

    /// The applicant of a window registration brought the missing materials (补正): they are
    /// checked and stored, and the case continues as after an online answer (the clock resumes).
    pub async fn supplement_at_window(&self, caller: &Principal, actor: &Actor, id: i64, materials: &[WindowMaterial]) -> DomainResult<()> {
        self.require_window(caller, actor, "approval.case.supplement_answer", id).await?;
        let r = sqlx::query("SELECT number, item_id, status, channel FROM approval_cases WHERE id = $1")
            .bind(id)
            .fetch_optional(self.db.pool())
            .await?
            .ok_or(NOT_FOUND)?;
        let (number, item_id, status, channel): (String, i64, String, String) = (r.get(0), r.get(1), r.get(2), r.get(3));
        if channel != CHANNEL_WINDOW || status != "supplement" {
            return Err(DomainError::Conflict("approval.error.not_in_supplement"));
        }
        if materials.is_empty() {
            return Err(DomainError::invalid("materials", "error.required"));
        }
        let item = self.catalogue.item(item_id, true).await?;
        let refs = self.store_materials(&item, materials).await?;
        let mut tx = self.db.begin_write().await?;
        let msg = ZoneMessage::SupplementAnswered { number: number.clone(), materials: refs, at: now_millis() };
        self.receive(&mut tx, &msg).await.map_err(DomainError::Internal)?;
        let details = json!({"number": number, "materials": materials.len()});
        self.audit.append(&mut tx, actor, Entry::success("approval.case.supplement_answer", "approval_case", id, details)).await?;
        tx.commit().await?;
        Ok(())
    }
}
