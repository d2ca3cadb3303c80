//! Starting a tongban server process on a fresh data directory, and tiny HTTP/1.1 helpers.

use std::{
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

/// A running server; killed on drop.
pub struct Server {
    pub child: Child,
    pub addr: String,
    pub started_in: Duration,
    _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Starts `bin serve --demo` on SQLite and waits for `/healthz`.
pub async fn start(bin: &str) -> anyhow::Result<Server> {
    start_in(bin, tempfile::tempdir()?, None).await
}

/// Starts `bin serve --demo` on an existing data directory (prepared by the benchmark), on
/// SQLite in it or on the PostgreSQL database `database_url`.
pub async fn start_in(bin: &str, dir: tempfile::TempDir, database_url: Option<&str>) -> anyhow::Result<Server> {
    let addr = format!("127.0.0.1:{}", free_port()?);
    let began = Instant::now();
    let mut command = pinned(bin);
    match database_url {
        Some(url) => command.env("TONGBAN_DATABASE__URL", url),
        None => command.env_remove("TONGBAN_DATABASE__URL"),
    };
    let child = command
        .args(["serve", "--demo"])
        .env("TONGBAN_DATA_DIR", dir.path())
        .env("TONGBAN_SERVER__BIND", &addr)
        .env("TONGBAN_LOG", "warn")
        .env_remove("TONGBAN_CONFIG")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let mut server = Server { child, addr, started_in: Duration::ZERO, _dir: dir };
    loop {
        if request(&server.addr, "GET", "/healthz", &[], "").await.is_ok_and(|r| r.status == 200) {
            break;
        }
        if began.elapsed() > Duration::from_secs(60) {
            anyhow::bail!("server did not become healthy");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    server.started_in = began.elapsed();
    Ok(server)
}

/// A response: status, headers (lower-case names), body.
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

/// Reads one HTTP/1.1 response with a Content-Length body from `stream`.
pub async fn read_response(stream: &mut TcpStream, buf: &mut Vec<u8>) -> anyhow::Result<Response> {
    buf.clear();
    let mut chunk = [0u8; 16384];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            anyhow::bail!("connection closed");
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let mut lines = head.split("\r\n");
    let status = lines.next().and_then(|l| l.split(' ').nth(1)).and_then(|s| s.parse().ok()).unwrap_or(0);
    let headers: Vec<(String, String)> =
        lines.filter_map(|l| l.split_once(':')).map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string())).collect();
    if headers.iter().any(|(k, v)| k == "transfer-encoding" && v.eq_ignore_ascii_case("chunked")) {
        let body = read_chunked(stream, buf, head_end).await?;
        return Ok(Response { status, headers, body });
    }
    let len: usize = headers.iter().find(|(k, _)| k == "content-length").and_then(|(_, v)| v.parse().ok()).unwrap_or(0);
    while buf.len() < head_end + len {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            anyhow::bail!("connection closed in body");
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let body = String::from_utf8_lossy(&buf[head_end..head_end + len]).to_string();
    Ok(Response { status, headers, body })
}

/// One request on a new connection.
pub async fn request(addr: &str, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> anyhow::Result<Response> {
    let mut stream = TcpStream::connect(addr).await?;
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: {}\r\n", body.len());
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("Connection: close\r\n\r\n");
    req.push_str(body);
    stream.write_all(req.as_bytes()).await?;
    read_response(&mut stream, &mut Vec::new()).await
}

/// Reads a chunked body (the peer server in the OIDC benchmark may send one) that starts at
/// `start` in `buf`.
async fn read_chunked(stream: &mut TcpStream, buf: &mut Vec<u8>, start: usize) -> anyhow::Result<String> {
    let mut chunk = [0u8; 16384];
    let mut body = Vec::new();
    let mut pos = start;
    loop {
        let line_end = loop {
            if let Some(i) = buf[pos..].windows(2).position(|w| w == b"\r\n") {
                break pos + i;
            }
            let n = stream.read(&mut chunk).await?;
            anyhow::ensure!(n > 0, "connection closed in chunk size");
            buf.extend_from_slice(&chunk[..n]);
        };
        let size_text = String::from_utf8_lossy(&buf[pos..line_end]).to_string();
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)?;
        pos = line_end + 2;
        while buf.len() < pos + size + 2 {
            let n = stream.read(&mut chunk).await?;
            anyhow::ensure!(n > 0, "connection closed in chunk");
            buf.extend_from_slice(&chunk[..n]);
        }
        if size == 0 {
            return Ok(String::from_utf8_lossy(&body).to_string());
        }
        body.extend_from_slice(&buf[pos..pos + size]);
        pos += size + 2;
    }
}

/// A command for `program`, pinned with `taskset` to the CPUs in `TONGBAN_BENCH_SERVER_CPUS`
/// when set (for comparisons where server and load generator must not share a core).
pub fn pinned(program: &str) -> Command {
    match std::env::var("TONGBAN_BENCH_SERVER_CPUS") {
        Ok(cpus) if !cpus.is_empty() => {
            let mut c = Command::new("taskset");
            c.args(["-c", &cpus, program]);
            c
        }
        _ => Command::new(program),
    }
}
