//! Benchmark (approval a, part): tasks completed per second through the HTTP API at N
//! concurrent connections. The window clerk starts instances of 个体工商户设立登记 (one review
//! step, queued for 市场监督管理局); then N connections of the department's member claim and
//! complete them (two requests per task, each one transaction with state, projection, audit
//! record and outbox events).

use std::time::Instant;

use serde_json::{Value, json};

use crate::{
    http::log_in_as,
    server::{request, start_in},
};

async fn csrf(addr: &str, cookie: &str) -> anyhow::Result<String> {
    let page = request(addr, "GET", "/me/tokens", &[("Cookie", cookie)], "").await?;
    let marker = "name=\"_csrf\" value=\"";
    let at = page.body.find(marker).ok_or_else(|| anyhow::anyhow!("no csrf field"))? + marker.len();
    Ok(page.body[at..at + 43].to_string())
}

async fn post(addr: &str, cookie: &str, token: &str, path: &str, body: &Value) -> anyhow::Result<crate::server::Response> {
    request(addr, "POST", path, &[("Cookie", cookie), ("X-CSRF-Token", token), ("Content-Type", "application/json")], &body.to_string())
        .await
}

/// Starts `tasks` instances, then completes them from `connections` connections; on SQLite,
/// then on a fresh PostgreSQL database when `postgres` (an admin URL) is given.
pub async fn run(bin: &str, tasks: usize, connections: usize, postgres: Option<&str>) -> anyhow::Result<Value> {
    let mut results = vec![measure(bin, tasks, connections, None).await?];
    if let Some(admin) = postgres {
        let url = crate::audit::fresh_postgres(admin).await?;
        results.push(measure(bin, tasks, connections, Some(&url)).await?);
    }
    Ok(json!({"benchmark": "tasks_completed_over_http", "results": results}))
}

async fn measure(bin: &str, tasks: usize, connections: usize, database_url: Option<&str>) -> anyhow::Result<Value> {
    let server = start_in(bin, tempfile::tempdir()?, database_url).await?;
    let addr = server.addr.clone();
    let clerk = log_in_as(&addr, "liuyang").await?;
    let clerk_token = csrf(&addr, &clerk).await?;
    let mut ids = Vec::with_capacity(tasks);
    for i in 0..tasks {
        let r = post(
            &addr,
            &clerk,
            &clerk_token,
            "/api/v1/workflow/instances",
            &json!({"process": "individual_business", "title": format!("基准 {i}")}),
        )
        .await?;
        anyhow::ensure!(r.status == 201, "start failed: {} {}", r.status, r.body);
        let instance = serde_json::from_str::<Value>(&r.body)?["id"].as_i64().unwrap_or_default();
        let detail = request(&addr, "GET", &format!("/api/v1/workflow/instances/{instance}"), &[("Cookie", &clerk)], "").await?;
        let task = serde_json::from_str::<Value>(&detail.body)?["tasks"][0]["id"]
            .as_i64()
            .ok_or_else(|| anyhow::anyhow!("no task: {}", detail.body))?;
        ids.push(task);
    }
    let worker = log_in_as(&addr, "huangli").await?;
    let token = csrf(&addr, &worker).await?;
    let began = Instant::now();
    let mut handles = Vec::new();
    for chunk in ids.chunks(tasks.div_ceil(connections).max(1)) {
        let (addr, worker, token, chunk) = (addr.clone(), worker.clone(), token.clone(), chunk.to_vec());
        handles.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            for t in chunk {
                let r = post(&addr, &worker, &token, &format!("/api/v1/workflow/tasks/{t}/claim"), &json!({})).await?;
                anyhow::ensure!(r.status == 204, "claim failed: {} {}", r.status, r.body);
                let at = Instant::now();
                let r = post(&addr, &worker, &token, &format!("/api/v1/workflow/tasks/{t}/complete"), &json!({"opinion": "同意"})).await?;
                anyhow::ensure!(r.status == 204, "complete failed: {} {}", r.status, r.body);
                latencies.push(at.elapsed().as_micros() as u64);
            }
            anyhow::Ok(latencies)
        }));
    }
    let mut all = Vec::new();
    for h in handles {
        all.extend(h.await??);
    }
    let elapsed = began.elapsed();
    all.sort_unstable();
    let pct = |p: f64| all.get(((all.len() as f64 - 1.0) * p) as usize).copied().unwrap_or(0) as f64 / 1000.0;
    Ok(json!({
        "database": if database_url.is_some() { "postgres" } else { "sqlite" },
        "connections": connections,
        "tasks_completed": all.len(),
        "seconds": (elapsed.as_secs_f64() * 10.0).round() / 10.0,
        "tasks_per_second": (all.len() as f64 / elapsed.as_secs_f64() * 10.0).round() / 10.0,
        "requests_per_task": 2,
        "complete_p50_ms": pct(0.50),
        "complete_p99_ms": pct(0.99),
    }))
}
