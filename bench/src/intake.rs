//! Benchmark (approval a, part): online applications submitted per second through HTTP at N
//! concurrent citizens. Each citizen (registered beforehand) repeatedly starts an application for
//! 城乡居民基本养老保险参保登记, uploads its two materials, and submits the form — five requests, the
//! last of which validates the form, allocates the number, writes the zone message and the audit
//! record in one transaction.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::{
    http::cookie_value,
    server::{Response, request, start_in},
};

fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) { (b as char).to_string() } else { format!("%{b:02X}") })
        .collect()
}

/// A valid identity number for citizen `i` (GB 11643 check digit).
fn id_number(i: usize) -> String {
    let prefix = format!("431024199001{:02}{:03}", 1 + i % 28, i % 1000);
    let w = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    let sum: u32 = prefix.bytes().zip(w).map(|(c, w)| u32::from(c - b'0') * w).sum();
    format!("{prefix}{}", b"10X98765432"[(sum % 11) as usize] as char)
}

struct Citizen {
    cookie: String,
    csrf: String,
}

async fn register(addr: &str, i: usize) -> anyhow::Result<Citizen> {
    let page = request(addr, "GET", "/public/register", &[], "").await?;
    let pre = cookie_value(&page, "tb_csrf").ok_or_else(|| anyhow::anyhow!("no csrf cookie"))?;
    let id = id_number(i);
    let body = format!(
        "_csrf={pre}&kind=person&name={}&cert_no={id}&phone=139{:08}&email=&password=Citizen%232026&password_again=Citizen%232026",
        enc("基准申请人"),
        i
    );
    let cookie = format!("tb_csrf={pre}");
    let r = request(addr, "POST", "/public/register", &[("Cookie", &cookie), ("Content-Type", "application/x-www-form-urlencoded")], &body)
        .await?;
    let session = cookie_value(&r, "tb_pub")
        .ok_or_else(|| anyhow::anyhow!("registration failed: {} {}", r.status, r.body.chars().take(300).collect::<String>()))?;
    let cookie = format!("tb_pub={session}");
    let home = request(addr, "GET", "/public", &[("Cookie", &cookie)], "").await?;
    let marker = "name=\"_csrf\" value=\"";
    let start = home.body.find(marker).ok_or_else(|| anyhow::anyhow!("no csrf on /public"))? + marker.len();
    Ok(Citizen { cookie, csrf: home.body[start..start + 43].to_string() })
}

fn location(r: &Response) -> String {
    r.headers.iter().find(|(k, _)| k == "location").map(|(_, v)| v.clone()).unwrap_or_default()
}

async fn one_application(addr: &str, c: &Citizen, item: i64, i: usize) -> anyhow::Result<Duration> {
    let form = [("Cookie", c.cookie.as_str()), ("Content-Type", "application/x-www-form-urlencoded")];
    let r = request(addr, "POST", "/public/applications", &form, &format!("_csrf={}&item_id={item}", c.csrf)).await?;
    let page = location(&r);
    anyhow::ensure!(r.status == 303 && page.starts_with("/public/applications/"), "start failed: {}", r.status);
    for index in 0..2 {
        let boundary = "tbBenchBoundary";
        let body = format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"_csrf\"\r\n\r\n{}\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"material_index\"\r\n\r\n{index}\r\n\
             --{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"m{index}.pdf\"\r\nContent-Type: application/pdf\r\n\r\n%PDF-1.4 bench {i} {index}\r\n--{boundary}--\r\n",
            c.csrf
        );
        let ct = format!("multipart/form-data; boundary={boundary}");
        let r = request(addr, "POST", &format!("{page}/materials"), &[("Cookie", c.cookie.as_str()), ("Content-Type", &ct)], &body).await?;
        anyhow::ensure!(r.status == 303, "upload failed: {}", r.status);
    }
    let body = format!(
        "_csrf={}&f.full_name={}&f.id_number={}&f.contribution_level=500&f.contact_phone=13900000000&submit=1",
        c.csrf,
        enc("基准申请人"),
        id_number(i)
    );
    let t = Instant::now();
    let r = request(addr, "POST", &page, &form, &body).await?;
    let took = t.elapsed();
    anyhow::ensure!(
        r.status == 303 && location(&r).ends_with("/receipt"),
        "submit failed: {} {}",
        r.status,
        r.body.chars().take(300).collect::<String>()
    );
    Ok(took)
}

/// Runs `clients` citizens for `seconds` on SQLite, then on a fresh PostgreSQL database when
/// `postgres` (an admin URL) is given.
pub async fn run(bin: &str, clients: usize, seconds: u64, postgres: Option<&str>) -> anyhow::Result<serde_json::Value> {
    let mut results = vec![measure(bin, clients, seconds, None).await?];
    if let Some(admin) = postgres {
        let url = crate::audit::fresh_postgres(admin).await?;
        results.push(measure(bin, clients, seconds, Some(&url)).await?);
    }
    Ok(json!({"benchmark": "applications_submitted_over_http", "results": results}))
}

async fn measure(bin: &str, clients: usize, seconds: u64, database_url: Option<&str>) -> anyhow::Result<serde_json::Value> {
    let server = start_in(bin, tempfile::tempdir()?, database_url).await?;
    let addr = server.addr.clone();
    let guide = request(&addr, "GET", "/guide?event=%E5%85%BB%E8%80%81", &[], "").await?;
    let marker = "href=\"/guide/";
    let start_at = guide.body.find(marker).ok_or_else(|| anyhow::anyhow!("no pension item in the guide"))? + marker.len();
    let item: i64 = guide.body[start_at..].split('"').next().and_then(|s| s.parse().ok()).ok_or_else(|| anyhow::anyhow!("item id"))?;
    let mut citizens = Vec::new();
    for i in 0..clients {
        citizens.push(register(&addr, i).await?);
    }
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let began = Instant::now();
    let mut tasks = Vec::new();
    for (n, c) in citizens.into_iter().enumerate() {
        let addr = addr.clone();
        tasks.push(tokio::spawn(async move {
            let mut submits = Vec::new();
            let mut k = 0;
            while Instant::now() < deadline {
                submits.push(one_application(&addr, &c, item, n * 100_000 + k).await?.as_micros() as u64);
                k += 1;
            }
            anyhow::Ok(submits)
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await??);
    }
    let elapsed = began.elapsed().as_secs_f64();
    all.sort_unstable();
    let pct = |p: f64| all.get(((all.len() as f64 - 1.0) * p) as usize).copied().unwrap_or(0) as f64 / 1000.0;
    Ok(json!({
        "database": if database_url.is_some() { "postgres" } else { "sqlite" },
        "clients": clients,
        "seconds": (elapsed * 10.0).round() / 10.0,
        "applications_submitted": all.len(),
        "applications_per_second": (all.len() as f64 / elapsed * 10.0).round() / 10.0,
        "requests_per_application": 5,
        "submit_p50_ms": pct(0.50),
        "submit_p99_ms": pct(0.99),
    }))
}
