//! Benchmark (c): start-up time to the first healthy response, and idle memory.

use std::time::Duration;

use serde_json::json;

use crate::server::start;

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmRSS:")).and_then(|l| l.split_whitespace().nth(1)?.parse().ok()))
        .unwrap_or(0)
}

/// Starts `serve --demo` on an empty data directory (migrations and demo load included), then
/// idles it for five seconds and reads its resident memory.
pub async fn run(bin: &str) -> anyhow::Result<serde_json::Value> {
    let mut first = Vec::new();
    let mut rss = Vec::new();
    for _ in 0..5 {
        let server = start(bin).await?;
        first.push(server.started_in.as_secs_f64() * 1000.0);
        tokio::time::sleep(Duration::from_secs(5)).await;
        rss.push(rss_kib(server.child.id()));
    }
    first.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    rss.sort_unstable();
    Ok(json!({
        "benchmark": "startup",
        "runs": first.len(),
        "first_healthy_ms_median": (first[first.len() / 2] * 10.0).round() / 10.0,
        "first_healthy_ms_all": first.iter().map(|v| (v * 10.0).round() / 10.0).collect::<Vec<_>>(),
        "idle_rss_mib_median": (rss[rss.len() / 2] as f64 / 1024.0 * 10.0).round() / 10.0,
        "note": "fresh data directory each run: migrations, audit key generation and demo county load are included",
    }))
}
