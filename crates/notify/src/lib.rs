//! Notifications (通知), driven by the outbox: in-app messages for staff and citizens, and SMS
//! (through the county's HTTP SMS gateway) and e-mail (SMTP) sent by a job with retries.
//!
//! Slices call [`in_app`] and [`send_later`] inside their own transactions; [`StaffNotifier`]
//! turns workflow and supervision events into in-app messages for the task holder;
//! [`SendJob`] delivers queued SMS and e-mail.

use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use lettre::{
    AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor, message::header::ContentType, transport::smtp::authentication::Credentials,
};
use serde::Serialize;
use serde_json::json;
use sqlx::Row;
use tongban_platform::{
    Db, WriteTx,
    clock::now_millis,
    config::NotifyConfig,
    jobs::{self, Job, JobHandler},
    outbox::{OutboxEvent, OutboxHandler},
};

/// The job kind that sends one queued SMS or e-mail.
pub const SEND_JOB: &str = "notify.send";

/// Who an in-app message is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recipient {
    /// A staff account.
    Staff(i64),
    /// A citizen or enterprise account.
    Public(i64),
}

impl Recipient {
    fn parts(self) -> (&'static str, i64) {
        match self {
            Recipient::Staff(id) => ("staff", id),
            Recipient::Public(id) => ("public", id),
        }
    }
}

/// An outbound channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    /// SMS through the gateway.
    Sms,
    /// E-mail through SMTP.
    Email,
}

/// An in-app message.
#[derive(Debug, Clone, Serialize)]
pub struct Notification {
    /// Id.
    pub id: i64,
    /// Title.
    pub title: String,
    /// Text.
    pub body: String,
    /// Where it points.
    pub link: String,
    /// Created (ms).
    pub created_at: i64,
    /// Read (ms).
    pub read_at: Option<i64>,
}

/// Adds an in-app message, in the caller's transaction.
pub async fn in_app(tx: &mut WriteTx, to: Recipient, title: &str, body: &str, link: &str) -> Result<(), sqlx::Error> {
    let (kind, id) = to.parts();
    sqlx::query("INSERT INTO notifications (recipient_kind, recipient_id, title, body, link, created_at) VALUES ($1,$2,$3,$4,$5,$6)")
        .bind(kind)
        .bind(id)
        .bind(title)
        .bind(body)
        .bind(link)
        .bind(now_millis())
        .execute(tx.conn())
        .await?;
    Ok(())
}

/// Queues an SMS or e-mail, in the caller's transaction; a job sends it (with retries).
pub async fn send_later(tx: &mut WriteTx, channel: Channel, to: &str, subject: &str, body: &str) -> Result<(), sqlx::Error> {
    if to.trim().is_empty() {
        return Ok(());
    }
    let channel = match channel {
        Channel::Sms => "sms",
        Channel::Email => "email",
    };
    let id: i64 = sqlx::query(
        "INSERT INTO notify_messages (channel, recipient, subject, body, status, created_at) VALUES ($1,$2,$3,$4,'queued',$5) RETURNING id",
    )
    .bind(channel)
    .bind(to.trim())
    .bind(subject)
    .bind(body)
    .bind(now_millis())
    .fetch_one(tx.conn())
    .await?
    .get(0);
    jobs::enqueue(tx, SEND_JOB, &json!({"message_id": id}), 6).await?;
    Ok(())
}

/// Reading and marking in-app messages.
#[derive(Clone)]
pub struct NotifyService {
    db: Db,
}

impl NotifyService {
    /// A service over `db`.
    pub fn new(db: Db) -> Self {
        NotifyService { db }
    }

    /// The newest messages of a recipient (unread first).
    pub async fn list(&self, to: Recipient) -> Result<Vec<Notification>, sqlx::Error> {
        let (kind, id) = to.parts();
        let rows = sqlx::query(
            "SELECT id, title, body, link, created_at, read_at FROM notifications WHERE recipient_kind = $1 AND recipient_id = $2 \
             ORDER BY CASE WHEN read_at IS NULL THEN 0 ELSE 1 END, created_at DESC, id DESC LIMIT 100",
        )
        .bind(kind)
        .bind(id)
        .fetch_all(self.db.pool())
        .await?;
        Ok(rows
            .iter()
            .map(|r| Notification {
                id: r.get(0),
                title: r.get(1),
                body: r.get(2),
                link: r.get(3),
                created_at: r.get(4),
                read_at: r.get(5),
            })
            .collect())
    }

    /// Number of unread messages.
    pub async fn unread(&self, to: Recipient) -> Result<i64, sqlx::Error> {
        let (kind, id) = to.parts();
        Ok(sqlx::query("SELECT COUNT(*) FROM notifications WHERE recipient_kind = $1 AND recipient_id = $2 AND read_at IS NULL")
            .bind(kind)
            .bind(id)
            .fetch_one(self.db.pool())
            .await?
            .get(0))
    }

    /// Marks every message of a recipient read.
    pub async fn mark_all_read(&self, to: Recipient) -> Result<(), sqlx::Error> {
        let (kind, id) = to.parts();
        let mut tx = self.db.begin_write().await?;
        sqlx::query("UPDATE notifications SET read_at = $1 WHERE recipient_kind = $2 AND recipient_id = $3 AND read_at IS NULL")
            .bind(now_millis())
            .bind(kind)
            .bind(id)
            .execute(tx.conn())
            .await?;
        tx.commit().await
    }
}

/// Turns workflow and supervision events into in-app messages for the task holder.
pub struct StaffNotifier;

#[async_trait::async_trait]
impl OutboxHandler for StaffNotifier {
    fn name(&self) -> &'static str {
        "notify.staff"
    }

    fn accepts(&self, topic: &str) -> bool {
        matches!(topic, "workflow.task.created" | "workflow.task.warning" | "workflow.task.overdue" | "supervision.urge")
    }

    async fn handle(&self, tx: &mut WriteTx, event: &OutboxEvent) -> Result<(), String> {
        let p = &event.payload;
        let name = p["name"].as_str().unwrap_or("");
        let link = p["instance_id"].as_i64().map(|i| format!("/workflow/instances/{i}")).unwrap_or_else(|| "/tasks".into());
        let Some(holder) = p["assignee_id"].as_i64() else {
            // A queue task: everyone in a candidate unit learns that there is work to claim.
            if event.topic != "workflow.task.created" {
                return Ok(());
            }
            let body = format!("单位有一项待签收的任务：{name}");
            for unit in p["candidate_units"].as_array().into_iter().flatten().filter_map(|u| u.as_str()) {
                let members = sqlx::query(
                    "SELECT u.id FROM users u JOIN units n ON n.id = u.unit_id WHERE (n.name = $1 OR CAST(n.id AS TEXT) = $1) AND u.enabled = 1 LIMIT 50",
                )
                .bind(unit)
                .fetch_all(tx.conn())
                .await
                .map_err(|e| e.to_string())?;
                for m in members {
                    in_app(tx, Recipient::Staff(m.get(0)), "待签收任务", &body, &link).await.map_err(|e| e.to_string())?;
                }
            }
            return Ok(());
        };
        let (title, body) = match event.topic.as_str() {
            "workflow.task.created" => ("新的待办", format!("您有一项新的待办：{name}")),
            "workflow.task.warning" => ("办理时限预警", format!("“{name}”即将到期（{}），请抓紧办理", p["due_on"].as_str().unwrap_or(""))),
            "workflow.task.overdue" => ("办理超期", format!("“{name}”已超过办理期限（{}）", p["due_on"].as_str().unwrap_or(""))),
            _ => ("催办", format!("“{name}”被催办：{}", p["note"].as_str().unwrap_or(""))),
        };
        in_app(tx, Recipient::Staff(holder), title, &body, &link).await.map_err(|e| e.to_string())?;
        // Deadlines and urges also go to the holder's mobile, when one is on file.
        if event.topic != "workflow.task.created" {
            let phone = sqlx::query("SELECT phone FROM users WHERE id = $1 AND enabled = 1")
                .bind(holder)
                .fetch_optional(tx.conn())
                .await
                .map_err(|e| e.to_string())?;
            if let Some(phone) = phone.map(|r| r.get::<String, _>(0)).filter(|p| !p.trim().is_empty()) {
                send_later(tx, Channel::Sms, &phone, title, &body).await.map_err(|e| e.to_string())?;
            }
        }
        Ok(())
    }
}

/// Why a message could not be sent.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// The channel is not configured.
    #[error("{0} is not configured")]
    Off(&'static str),
    /// The gateway or relay refused or failed.
    #[error("{0}")]
    Failed(String),
}

/// Sends queued SMS and e-mail.
pub struct SendJob {
    db: Db,
    config: NotifyConfig,
}

impl SendJob {
    /// A sender with the configured gateway and relay.
    pub fn new(db: Db, config: NotifyConfig) -> Self {
        SendJob { db, config }
    }

    async fn sms(&self, to: &str, body: &str) -> Result<(), SendError> {
        if self.config.sms_gateway_url.is_empty() {
            return Err(SendError::Off("SMS"));
        }
        let text = format!("【{}】{body}", self.config.sms_sign);
        let payload = serde_json::to_vec(&json!({"to": to, "text": text})).map_err(|e| SendError::Failed(e.to_string()))?;
        let req = hyper::Request::post(&self.config.sms_gateway_url)
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .header(hyper::header::AUTHORIZATION, format!("Bearer {}", self.config.sms_gateway_token))
            .body(Full::new(Bytes::from(payload)))
            .map_err(|e| SendError::Failed(e.to_string()))?;
        let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new()).build_http();
        let resp = tokio::time::timeout(Duration::from_secs(10), client.request(req))
            .await
            .map_err(|_| SendError::Failed("SMS gateway timed out".into()))?
            .map_err(|e| SendError::Failed(format!("SMS gateway: {e}")))?;
        let status = resp.status();
        let body = resp.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
        if !status.is_success() {
            return Err(SendError::Failed(format!(
                "SMS gateway answered {status}: {}",
                String::from_utf8_lossy(&body).chars().take(200).collect::<String>()
            )));
        }
        Ok(())
    }

    async fn email(&self, to: &str, subject: &str, body: &str) -> Result<(), SendError> {
        let c = &self.config;
        if c.smtp_host.is_empty() {
            return Err(SendError::Off("e-mail"));
        }
        let fail = |e: String| SendError::Failed(e);
        let message = Message::builder()
            .from(c.smtp_from.parse().map_err(|e| fail(format!("from address: {e}")))?)
            .to(to.parse().map_err(|e| fail(format!("to address: {e}")))?)
            .subject(subject)
            .header(ContentType::TEXT_PLAIN)
            .body(body.to_string())
            .map_err(|e| fail(e.to_string()))?;
        let builder = match c.smtp_tls.as_str() {
            "none" => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&c.smtp_host),
            "tls" => AsyncSmtpTransport::<Tokio1Executor>::relay(&c.smtp_host).map_err(|e| fail(e.to_string()))?,
            _ => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&c.smtp_host).map_err(|e| fail(e.to_string()))?,
        };
        let mut builder = builder.port(c.smtp_port).timeout(Some(Duration::from_secs(15)));
        if !c.smtp_user.is_empty() {
            builder = builder.credentials(Credentials::new(c.smtp_user.clone(), c.smtp_password.clone()));
        }
        builder.build().send(message).await.map_err(|e| fail(format!("SMTP: {e}")))?;
        Ok(())
    }

    async fn mark(&self, id: i64, status: &str, error: Option<&str>) -> Result<(), String> {
        let mut tx = self.db.begin_write().await.map_err(|e| e.to_string())?;
        sqlx::query("UPDATE notify_messages SET status = $1, sent_at = CASE WHEN $1 = 'sent' THEN $2 ELSE sent_at END, last_error = $3 WHERE id = $4")
            .bind(status)
            .bind(now_millis())
            .bind(error)
            .bind(id)
            .execute(tx.conn())
            .await
            .map_err(|e| e.to_string())?;
        tx.commit().await.map_err(|e| e.to_string())
    }
}

#[async_trait::async_trait]
impl JobHandler for SendJob {
    async fn run(&self, job: &Job) -> Result<(), String> {
        let id = job.payload["message_id"].as_i64().ok_or("job without message_id")?;
        let row = sqlx::query("SELECT channel, recipient, subject, body, status FROM notify_messages WHERE id = $1")
            .bind(id)
            .fetch_optional(self.db.pool())
            .await
            .map_err(|e| e.to_string())?;
        let Some(r) = row else { return Ok(()) };
        if r.get::<String, _>(4) == "sent" {
            return Ok(());
        }
        let (channel, to, subject, body): (String, String, String, String) = (r.get(0), r.get(1), r.get(2), r.get(3));
        let result = match channel.as_str() {
            "sms" => self.sms(&to, &body).await,
            _ => self.email(&to, &subject, &body).await,
        };
        match result {
            Ok(()) => self.mark(id, "sent", None).await,
            Err(SendError::Off(what)) => self.mark(id, "skipped", Some(&format!("{what} is not configured"))).await,
            Err(SendError::Failed(e)) => {
                self.mark(id, "failed", Some(&e)).await?;
                Err(e)
            }
        }
    }
}
