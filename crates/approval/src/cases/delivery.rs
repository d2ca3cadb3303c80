//! The end of a case (办结): the decision becomes a result document (结果文书), kept in the blob
//! store, and reaches the applicant — through the zone channel for online applications, by
//! SMS/e-mail and the window for window registrations — and the first time the applicant opens
//! it is recorded as delivery (送达).

use serde_json::{Map, Value, json};
use sqlx::Row;
use tongban_audit::Actor;
use tongban_authz::Principal;
use tongban_platform::{
    DomainError, WriteTx,
    clock::{local_date, now_millis},
    error::DomainResult,
};

use super::{CHANNEL_WINDOW, CaseService, NOT_FOUND};
use crate::{
    intake::{applicant_message, status},
    result::{DecisionDocument, chinese_date},
    zone::{self, Applicant, MaterialRef, ZoneMessage},
};

/// The case row a decision is written from.
struct Decided {
    id: i64,
    number: String,
    item_id: i64,
    applicant: Applicant,
    accepted_at: Option<i64>,
}

impl CaseService {
    /// Passes a status change or a result to the applicant: across the zone boundary for online
    /// applications; for window registrations, which have no public-side record, straight to the
    /// phone and e-mail the window took (the result itself is handed over at the window).
    pub(super) async fn tell(&self, tx: &mut WriteTx, case_id: i64, msg: ZoneMessage) -> Result<(), sqlx::Error> {
        let r = sqlx::query(
            "SELECT c.channel, c.applicant, i.name FROM approval_cases c JOIN approval_items i ON i.id = c.item_id WHERE c.id = $1",
        )
        .bind(case_id)
        .fetch_one(tx.conn())
        .await?;
        if r.get::<String, _>(0) != CHANNEL_WINDOW {
            return zone::send(tx, &msg).await;
        }
        let ZoneMessage::StatusChanged { number, status, note, .. } = &msg else { return Ok(()) };
        let applicant: Applicant = serde_json::from_str(&r.get::<String, _>(1)).map_err(|e| sqlx::Error::Decode(Box::new(e)))?;
        let item: String = r.get(2);
        let (label, text) = applicant_message(&item, number, status, note);
        tongban_notify::send_later(tx, tongban_notify::Channel::Sms, &applicant.phone, label, &text).await?;
        tongban_notify::send_later(tx, tongban_notify::Channel::Email, &applicant.email, &format!("{item}：{label}"), &text).await?;
        Ok(())
    }

    /// Closes the case of a finished process (办结): `approved` from the process data (absent
    /// means granted for a process without a decision step, and refused for one with a decision
    /// step that ended without deciding, e.g. through a timer); a result number for approvals; the
    /// decision document written, stored and sent. `last_opinion` (the deciding step's opinion)
    /// is a denial's reason.
    pub async fn complete_from_process(
        &self,
        tx: &mut WriteTx,
        instance_id: i64,
        variables: &Map<String, Value>,
        last_opinion: Option<&str>,
        has_decision: bool,
    ) -> Result<(), String> {
        let db = |e: sqlx::Error| e.to_string();
        let row = sqlx::query(
            "SELECT id, number, item_id, applicant, accepted_at FROM approval_cases WHERE instance_id = $1 AND status = 'processing'",
        )
        .bind(instance_id)
        .fetch_optional(tx.conn())
        .await
        .map_err(db)?;
        let Some(r) = row else { return Ok(()) };
        let case = Decided {
            id: r.get(0),
            number: r.get(1),
            item_id: r.get(2),
            applicant: serde_json::from_str(&r.get::<String, _>(3)).map_err(|e| e.to_string())?,
            accepted_at: r.get(4),
        };
        let approved = variables.get("approved").and_then(Value::as_bool).unwrap_or(!has_decision);
        let now = now_millis();
        let year = local_date(now).map(|d| i64::from(d.year())).unwrap_or(0);
        let reason = if approved { String::new() } else { last_opinion.unwrap_or("").trim().to_string() };
        let (status_name, public_status, result_no, note) = if approved {
            let seq: i64 = sqlx::query(
                "INSERT INTO result_numbers (year, last) VALUES ($1, 1) ON CONFLICT (year) DO UPDATE SET last = result_numbers.last + 1 RETURNING last",
            )
            .bind(year)
            .fetch_one(tx.conn())
            .await
            .map_err(db)?
            .get(0);
            let no = format!("嘉审批〔{year}〕{seq}号");
            let note = format!("准予许可，决定书文号 {no}");
            ("approved", status::APPROVED, Some(no), note)
        } else if reason.is_empty() {
            ("denied", status::DENIED, None, "不予许可".to_string())
        } else {
            ("denied", status::DENIED, None, format!("不予许可：{reason}"))
        };
        let document = self.write_decision(&case, approved, result_no.as_deref(), &reason, now).await?;
        sqlx::query(
            "UPDATE approval_cases SET status = $1, decision = $1, result_no = $2, note = $3, completed_at = $4, updated_at = $4, \
             result_name = $5, result_sm3 = $6 WHERE id = $7",
        )
        .bind(status_name)
        .bind(&result_no)
        .bind(&note)
        .bind(now)
        .bind(&document.file_name)
        .bind(&document.sm3)
        .bind(case.id)
        .execute(tx.conn())
        .await
        .map_err(db)?;
        self.event(tx, case.id, "workflow", status_name, &note).await.map_err(db)?;
        self.event(tx, case.id, "workflow", "result_issued", &format!("{} SM3 {}", document.file_name, document.sm3)).await.map_err(db)?;
        let number = case.number.clone();
        self.tell(
            tx,
            case.id,
            ZoneMessage::StatusChanged { number: number.clone(), status: public_status.into(), note, due_on: None, at: now },
        )
        .await
        .map_err(db)?;
        self.tell(tx, case.id, ZoneMessage::ResultIssued { number, approved, result_no, document, at: now }).await.map_err(db)?;
        Ok(())
    }

    /// Writes the decision document from the case's data and stores it; the blob store is
    /// content-addressed, so a rolled-back transaction leaves at most an unreferenced file.
    async fn write_decision(
        &self,
        case: &Decided,
        approved: bool,
        result_no: Option<&str>,
        reason: &str,
        now: i64,
    ) -> Result<MaterialRef, String> {
        let item = self.catalogue.item(case.item_id, true).await.map_err(|e| e.to_string())?;
        let day = |ms: i64| local_date(ms).map(chinese_date).unwrap_or_default();
        let doc = DecisionDocument {
            unit: format!("嘉禾县{}", item.lead_unit_name),
            approved,
            doc_no: result_no.map_or_else(|| case.number.clone(), str::to_string),
            number: case.number.clone(),
            applicant: case.applicant.name.clone(),
            item_name: item.spec.name.clone(),
            legal_basis: item.spec.legal_basis.clone(),
            accepted_on: case.accepted_at.map(day).unwrap_or_default(),
            decided_on: day(now),
            reason: reason.to_string(),
        };
        let html = doc.to_html().map_err(|e| format!("writing the decision document: {e}"))?;
        let sm3 = self.blobs.put(html.as_bytes()).await.map_err(|e| format!("storing the decision document: {e}"))?;
        Ok(MaterialRef {
            index: 0,
            name: doc.title().to_string(),
            file_name: doc.file_name(),
            content_type: "text/html; charset=utf-8".into(),
            size: html.len() as u64,
            sm3,
        })
    }

    /// Records the applicant's first opening of the result document (送达回证).
    pub(super) async fn result_received(&self, tx: &mut WriteTx, number: &str, at: i64) -> Result<(), sqlx::Error> {
        let row = sqlx::query("SELECT id FROM approval_cases WHERE number = $1 AND delivered_at IS NULL")
            .bind(number)
            .fetch_optional(tx.conn())
            .await?;
        let Some(r) = row else { return Ok(()) };
        let id: i64 = r.get(0);
        sqlx::query("UPDATE approval_cases SET delivered_at = $1 WHERE id = $2").bind(at).bind(id).execute(tx.conn()).await?;
        self.event(tx, id, "applicant", "delivered", "申请人已在线签收结果文书（电子送达）").await
    }

    /// The result document of a case (name and blob key), for those who may see the case;
    /// recorded as a read (`approval.result.read`).
    pub async fn result_document(&self, caller: &Principal, actor: &Actor, id: i64) -> DomainResult<(String, String)> {
        let view = self.visible_case(caller, actor, id).await?;
        let (Some(name), Some(sm3)) = (view.result_name, view.result_sm3) else { return Err(NOT_FOUND) };
        self.audit.record_read(&self.db, actor, "approval.result.read", "approval_case", id).await?;
        Ok((name, sm3))
    }

    /// Records that the window handed the result of a window registration to the applicant or
    /// posted it (窗口领取 / 邮寄送达): `how` is `window` or `post`, `note` the receiver or the
    /// tracking number. Online applications are delivered to the applicant's account instead.
    pub async fn deliver(&self, caller: &Principal, actor: &Actor, id: i64, how: &str, note: &str) -> DomainResult<()> {
        self.require_window(caller, actor, "approval.case.deliver", id).await?;
        let how_text = match how {
            "window" => "窗口领取",
            "post" => "邮寄送达",
            _ => return Err(DomainError::invalid("method", "error.invalid_value")),
        };
        let note = note.trim();
        tongban_platform::text::check_line("note", note)?;
        if note.is_empty() || note.chars().count() > 200 {
            return Err(DomainError::invalid("note", "error.required"));
        }
        let mut tx = self.db.begin_write().await?;
        let r = sqlx::query("SELECT number, channel, result_sm3, delivered_at FROM approval_cases WHERE id = $1")
            .bind(id)
            .fetch_optional(tx.conn())
            .await?
            .ok_or(NOT_FOUND)?;
        let (number, channel): (String, String) = (r.get(0), r.get(1));
        if channel != CHANNEL_WINDOW || r.get::<Option<String>, _>(2).is_none() || r.get::<Option<i64>, _>(3).is_some() {
            return Err(DomainError::Conflict("approval.error.not_deliverable"));
        }
        let now = now_millis();
        sqlx::query("UPDATE approval_cases SET delivered_at = $1, updated_at = $1 WHERE id = $2")
            .bind(now)
            .bind(id)
            .execute(tx.conn())
            .await?;
        self.event(&mut tx, id, &actor.name, "delivered", &format!("{how_text}：{note}")).await?;
        let details = json!({"number": number, "method": how, "note": note});
        self.audit.append(&mut tx, actor, tongban_audit::Entry::success("approval.case.deliver", "approval_case", id, details)).await?;
        tx.commit().await?;
        Ok(())
    }
}
