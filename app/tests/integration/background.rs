//! The outbox delivers each event once, across restarts; jobs retry with backoff and end dead.

use std::sync::{
    Arc,
    atomic::{AtomicUsize, Ordering},
};

use serde_json::json;
use tongban_platform::{
    WriteTx,
    jobs::{self, Job, JobHandler, JobRunner, RunOutcome},
    outbox::{self, Dispatcher, OutboxEvent, OutboxHandler},
};

use crate::support::TestApp;

struct RecordDelivery;

#[async_trait::async_trait]
impl OutboxHandler for RecordDelivery {
    fn name(&self) -> &'static str {
        "test.record"
    }
    fn accepts(&self, topic: &str) -> bool {
        topic.starts_with("test.")
    }
    async fn handle(&self, tx: &mut WriteTx, event: &OutboxEvent) -> Result<(), String> {
        sqlx::query("INSERT INTO test_deliveries (event_id) VALUES ($1)")
            .bind(event.id)
            .execute(tx.conn())
            .await
            .map_err(|e| e.to_string())?;
        Ok(())
    }
}

async fn publish(app: &TestApp, n: usize) {
    let mut tx = app.opened.db.begin_write().await.unwrap();
    for i in 0..n {
        outbox::publish(&mut tx, "test.happened", &json!({"i": i})).await.unwrap();
    }
    tx.commit().await.unwrap();
}

#[tokio::test]
async fn outbox_delivers_once_per_event_across_a_restart() {
    let app = TestApp::with(|_| {}, false).await;
    app.sql("CREATE TABLE test_deliveries (event_id BIGINT NOT NULL)").await;
    publish(&app, 3).await;
    let first = Dispatcher::new(app.opened.db.clone(), vec![Arc::new(RecordDelivery)]);
    assert_eq!(first.dispatch_once(100).await.unwrap(), 3);
    assert_eq!(first.dispatch_once(100).await.unwrap(), 0);
    drop(first);
    // A restarted process delivers only what is new.
    publish(&app, 2).await;
    let second = Dispatcher::new(app.opened.db.clone(), vec![Arc::new(RecordDelivery)]);
    let twin = second.clone();
    let (a, b) = tokio::join!(second.dispatch_once(100), twin.dispatch_once(100));
    assert_eq!(a.unwrap() + b.unwrap(), 2, "two workers together deliver each event once");
    assert_eq!(app.scalar("SELECT COUNT(*) FROM test_deliveries").await, 5);
    assert_eq!(app.scalar("SELECT COUNT(DISTINCT event_id) FROM test_deliveries").await, 5);
    assert_eq!(app.scalar("SELECT COUNT(*) FROM outbox_deliveries").await, 5);
    assert_eq!(tongban_platform::outbox::pending_count(&app.opened.db).await.unwrap(), 0);
}

#[tokio::test]
async fn a_failing_outbox_handler_leaves_the_event_pending_with_backoff() {
    let app = TestApp::with(|_| {}, false).await;
    publish(&app, 1).await;
    // No table test_deliveries: the handler fails.
    let d = Dispatcher::new(app.opened.db.clone(), vec![Arc::new(RecordDelivery)]);
    assert_eq!(d.dispatch_once(100).await.unwrap(), 0);
    assert_eq!(app.scalar("SELECT attempts FROM outbox").await, 1);
    assert_eq!(app.scalar("SELECT COUNT(*) FROM outbox WHERE dispatched_at IS NULL").await, 1);
    assert_eq!(d.dispatch_once(100).await.unwrap(), 0, "not retried before its backoff");
    app.sql("CREATE TABLE test_deliveries (event_id BIGINT NOT NULL)").await;
    app.sql("UPDATE outbox SET next_attempt_at = 0").await;
    assert_eq!(d.dispatch_once(100).await.unwrap(), 1);
}

struct Flaky {
    fail_first: usize,
    calls: AtomicUsize,
}

#[async_trait::async_trait]
impl JobHandler for Flaky {
    async fn run(&self, _job: &Job) -> Result<(), String> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst);
        if n < self.fail_first { Err(format!("failure {n}")) } else { Ok(()) }
    }
}

async fn enqueue(app: &TestApp, kind: &str, max: i64) -> i64 {
    let mut tx = app.opened.db.begin_write().await.unwrap();
    let id = jobs::enqueue(&mut tx, kind, &json!({}), max).await.unwrap();
    tx.commit().await.unwrap();
    id
}

#[tokio::test]
async fn jobs_retry_with_backoff_then_succeed_or_go_dead() {
    let app = TestApp::with(|_| {}, false).await;
    let mut runner = JobRunner::new(app.opened.db.clone());
    runner.register("flaky", Arc::new(Flaky { fail_first: 2, calls: AtomicUsize::new(0) }));
    runner.register("broken", Arc::new(Flaky { fail_first: usize::MAX, calls: AtomicUsize::new(0) }));
    let flaky = enqueue(&app, "flaky", 5).await;
    assert_eq!(runner.run_once().await.unwrap(), RunOutcome::Retry(flaky));
    assert_eq!(runner.run_once().await.unwrap(), RunOutcome::Idle, "backing off");
    let wait = app.scalar(&format!("SELECT run_at - updated_at FROM jobs WHERE id = {flaky}")).await;
    assert_eq!(wait, 2000, "2^1 seconds after the first failure");
    app.sql("UPDATE jobs SET run_at = 0").await;
    assert_eq!(runner.run_once().await.unwrap(), RunOutcome::Retry(flaky));
    app.sql("UPDATE jobs SET run_at = 0").await;
    assert_eq!(runner.run_once().await.unwrap(), RunOutcome::Done(flaky));

    let broken = enqueue(&app, "broken", 2).await;
    assert_eq!(runner.run_once().await.unwrap(), RunOutcome::Retry(broken));
    app.sql("UPDATE jobs SET run_at = 0").await;
    assert_eq!(runner.run_once().await.unwrap(), RunOutcome::Dead(broken));
    let counts = jobs::counts_by_status(&app.opened.db).await.unwrap();
    assert!(counts.contains(&("dead".to_string(), 1)) && counts.contains(&("done".to_string(), 1)), "{counts:?}");
}

#[tokio::test]
async fn concurrent_runners_claim_each_job_once() {
    let app = TestApp::with(|_| {}, false).await;
    let calls = Arc::new(Flaky { fail_first: 0, calls: AtomicUsize::new(0) });
    let mut runner = JobRunner::new(app.opened.db.clone());
    runner.register("work", calls.clone());
    for _ in 0..12 {
        enqueue(&app, "work", 3).await;
    }
    let mut tasks = Vec::new();
    for _ in 0..3 {
        let r = runner.clone();
        tasks.push(tokio::spawn(async move { while r.run_once().await.unwrap() != RunOutcome::Idle {} }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(calls.calls.load(Ordering::SeqCst), 12);
    assert_eq!(app.scalar("SELECT COUNT(*) FROM jobs WHERE status = 'done'").await, 12);
}
