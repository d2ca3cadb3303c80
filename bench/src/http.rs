//! Benchmark (a): authenticated requests per second at N keep-alive connections.

use std::time::{Duration, Instant};

use serde_json::json;
use tokio::{io::AsyncWriteExt, net::TcpStream};

use crate::server::{Response, read_response, request, start};

pub fn cookie_value(r: &Response, name: &str) -> Option<String> {
    r.headers
        .iter()
        .filter(|(k, _)| k == "set-cookie")
        .find_map(|(_, v)| v.split(';').next().and_then(|kv| kv.strip_prefix(&format!("{name}="))).map(String::from))
}

/// Logs in as the demo office director (no TOTP) and returns the Cookie header value.
async fn log_in(addr: &str) -> anyhow::Result<String> {
    log_in_as(addr, "zhangwei").await
}

/// Logs in as a demo staff member without TOTP and returns the Cookie header value.
pub async fn log_in_as(addr: &str, username: &str) -> anyhow::Result<String> {
    let page = request(addr, "GET", "/login", &[], "").await?;
    let csrf = cookie_value(&page, "tb_csrf").ok_or_else(|| anyhow::anyhow!("no csrf cookie"))?;
    let body = format!("_csrf={csrf}&username={username}&password=Jiahe%402026");
    let cookie = format!("tb_csrf={csrf}");
    let r = request(addr, "POST", "/login", &[("Cookie", &cookie), ("Content-Type", "application/x-www-form-urlencoded")], &body).await?;
    let session = cookie_value(&r, "tb_session").ok_or_else(|| anyhow::anyhow!("log-in failed: {} {}", r.status, r.body))?;
    Ok(format!("tb_session={session}"))
}

pub async fn load(addr: &str, path: &str, cookie: &str, connections: usize, seconds: u64) -> anyhow::Result<serde_json::Value> {
    let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nCookie: {cookie}\r\n\r\n");
    load_raw(addr, path, &req, connections, seconds).await
}

/// Sends the raw HTTP/1.1 request `req` over `connections` keep-alive connections for `seconds`;
/// reports throughput and latency percentiles under `label`.
pub async fn load_raw(addr: &str, label: &str, req: &str, connections: usize, seconds: u64) -> anyhow::Result<serde_json::Value> {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    for _ in 0..connections {
        let (addr, req) = (addr.to_string(), req.to_string());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut errors = 0u64;
            let mut stream = TcpStream::connect(&addr).await?;
            let mut buf = Vec::with_capacity(32 * 1024);
            while Instant::now() < deadline {
                let t = Instant::now();
                stream.write_all(req.as_bytes()).await?;
                let r = read_response(&mut stream, &mut buf).await?;
                latencies.push(t.elapsed().as_micros() as u64);
                if r.status != 200 {
                    errors += 1;
                }
            }
            anyhow::Ok((latencies, errors))
        }));
    }
    let mut all = Vec::new();
    let mut errors = 0;
    for t in tasks {
        let (l, e) = t.await??;
        all.extend(l);
        errors += e;
    }
    all.sort_unstable();
    let pct = |p: f64| all.get(((all.len() as f64 - 1.0) * p) as usize).copied().unwrap_or(0) as f64 / 1000.0;
    Ok(json!({
        "path": label,
        "requests": all.len(),
        "non_200": errors,
        "requests_per_second": (all.len() as f64 / seconds as f64).round(),
        "p50_ms": pct(0.50),
        "p99_ms": pct(0.99),
    }))
}

/// Runs the page and the API endpoint.
pub async fn run(bin: &str, connections: usize, seconds: u64) -> anyhow::Result<serde_json::Value> {
    let server = start(bin).await?;
    let cookie = log_in(&server.addr).await?;
    let page = load(&server.addr, "/workbench", &cookie, connections, seconds).await?;
    let api = load(&server.addr, "/api/v1/units", &cookie, connections, seconds).await?;
    Ok(json!({
        "benchmark": "http",
        "connections": connections,
        "seconds_each": seconds,
        "database": "sqlite",
        "note": "staff session cookie; each request loads the session and grants from the database",
        "page": page,
        "api": api,
    }))
}
