//! In-app notifications (站内通知) for staff: new tasks, deadline warnings, urges.

use askama::Template;
use axum::extract::State;
use tongban_notify::{Notification, Recipient};
use tongban_platform::clock::format_local;

use super::{Layout, PageResult, render, see_other};
use crate::{ctx::Ctx, state::AppState};

#[derive(Template)]
#[template(path = "notifications.html")]
struct NotificationsPage {
    l: Layout,
    items: Vec<(Notification, String)>,
}

/// `GET /me/notifications`.
pub async fn list(State(state): State<AppState>, ctx: Ctx) -> PageResult {
    let p = ctx.principal()?;
    let items = state
        .notify
        .list(Recipient::Staff(p.user_id))
        .await?
        .into_iter()
        .map(|n| {
            let t = format_local(n.created_at);
            (n, t)
        })
        .collect();
    render(&NotificationsPage { l: Layout::new(&ctx, "notify.title", "me"), items })
}

/// `POST /me/notifications/read`: marks every message read.
pub async fn mark_read(State(state): State<AppState>, ctx: Ctx) -> PageResult {
    let p = ctx.principal()?;
    state.notify.mark_all_read(Recipient::Staff(p.user_id)).await?;
    see_other("/me/notifications")
}
