//! Messages between public intake (外网受理) and internal processing (内网办理). The two sides
//! never read each other's tables: a submission, withdrawal or supplement goes in, status changes,
//! supplement requests and results come out, each as one serialised message in the outbox. In
//! zone `all` the dispatcher hands them over in-process; a gateway between zones can carry the
//! same JSON across (外网受理、内网办理、外网反馈) without touching approval code.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tongban_platform::{WriteTx, outbox};

/// Outbox topic of messages for internal processing.
pub const TO_INTERNAL: &str = "zone.to_internal";
/// Outbox topic of messages for the public side.
pub const TO_PUBLIC: &str = "zone.to_public";

/// Who applied, as the public side registered them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Applicant {
    /// Public account id (on the public side).
    pub account_id: i64,
    /// `person` or `enterprise`.
    pub kind: String,
    /// Name.
    pub name: String,
    /// Identity number or credit code.
    pub cert_no: String,
    /// Mobile number.
    pub phone: String,
    /// E-mail.
    pub email: String,
}

/// An uploaded material, by reference to the blob store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MaterialRef {
    /// Position in the item's materials list.
    pub index: u32,
    /// The material's name in the list.
    pub name: String,
    /// File name as uploaded (sanitised).
    pub file_name: String,
    /// Sniffed content type.
    pub content_type: String,
    /// Size in bytes.
    pub size: u64,
    /// SM3 digest (the blob key).
    pub sm3: String,
}

/// One message across the zone boundary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ZoneMessage {
    /// An application was submitted (申请提交).
    Submission {
        /// Application number.
        number: String,
        /// Catalogue item.
        item_id: i64,
        /// Who applied.
        applicant: Applicant,
        /// The validated form.
        form: Map<String, Value>,
        /// Materials.
        materials: Vec<MaterialRef>,
        /// When (ms).
        at: i64,
    },
    /// The applicant withdrew before acceptance (撤回申请).
    Withdrawal {
        /// Application number.
        number: String,
        /// When (ms).
        at: i64,
    },
    /// The applicant answered a supplement request (补正材料).
    SupplementAnswered {
        /// Application number.
        number: String,
        /// The new materials.
        materials: Vec<MaterialRef>,
        /// When (ms).
        at: i64,
    },
    /// The applicant rated the service (好差评): 1 very satisfied … 5 very dissatisfied.
    Rating {
        /// Application number.
        number: String,
        /// 1 非常满意, 2 满意, 3 基本满意, 4 不满意, 5 非常不满意.
        level: u8,
        /// Comment.
        comment: String,
        /// When (ms).
        at: i64,
    },
    /// The internal side changed the status (状态反馈).
    StatusChanged {
        /// Application number.
        number: String,
        /// New public status.
        status: String,
        /// Note for the applicant.
        note: String,
        /// Deadline, when running.
        due_on: Option<String>,
        /// When (ms).
        at: i64,
    },
    /// The result document (结果文书: 准予/不予许可决定书) delivered electronically to the
    /// applicant's account (电子送达).
    ResultIssued {
        /// Application number.
        number: String,
        /// Granted or not.
        approved: bool,
        /// The decision's number when granted.
        result_no: Option<String>,
        /// The document, by reference to the blob store.
        document: MaterialRef,
        /// When (ms).
        at: i64,
    },
    /// The applicant opened the result document for the first time: the proof of delivery
    /// (送达回证) for the case file.
    ResultReceived {
        /// Application number.
        number: String,
        /// When (ms).
        at: i64,
    },
}

impl ZoneMessage {
    /// The application number it concerns.
    pub fn number(&self) -> &str {
        match self {
            ZoneMessage::Submission { number, .. }
            | ZoneMessage::Withdrawal { number, .. }
            | ZoneMessage::SupplementAnswered { number, .. }
            | ZoneMessage::Rating { number, .. }
            | ZoneMessage::StatusChanged { number, .. }
            | ZoneMessage::ResultIssued { number, .. }
            | ZoneMessage::ResultReceived { number, .. } => number,
        }
    }

    /// Which side it is for.
    pub fn topic(&self) -> &'static str {
        match self {
            ZoneMessage::StatusChanged { .. } | ZoneMessage::ResultIssued { .. } => TO_PUBLIC,
            _ => TO_INTERNAL,
        }
    }
}

/// Sends a message across, in the caller's transaction.
pub async fn send(tx: &mut WriteTx, msg: &ZoneMessage) -> Result<(), sqlx::Error> {
    let payload = serde_json::to_value(msg).unwrap_or(Value::Null);
    outbox::publish(tx, msg.topic(), &payload).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip_as_tagged_json() {
        let m = ZoneMessage::Withdrawal { number: "JH202611300001".into(), at: 5 };
        let v = serde_json::to_value(&m).unwrap();
        assert_eq!(v["type"], "withdrawal");
        assert_eq!(serde_json::from_value::<ZoneMessage>(v).unwrap(), m);
        assert_eq!(m.topic(), TO_INTERNAL);
    }
}
