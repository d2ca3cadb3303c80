//! Benchmark (single sign-on): the token endpoint (client credentials) and discovery + JWKS at 64
//! connections, tongban side by side with the npm package `oidc-provider` configured the same way
//! (bench/node/oidc-provider): same client, ES256-signed JWT access tokens, same machine, one
//! after the other in one run.

use std::{
    process::Stdio,
    time::{Duration, Instant},
};

use base64::Engine;
use serde_json::{Value, json};
use tokio::{
    io::{AsyncBufReadExt, BufReader},
    process::{Child, Command},
};

use crate::{
    http::{load, load_raw},
    server::{free_port, request, start},
};

const CLIENT: &str = "data-exchange";
const SECRET: &str = "demo-exchange-secret-change-me";

/// The peer server, stopped on drop.
struct Peer {
    child: Child,
    addr: String,
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

async fn start_peer(node: &str, script: &str) -> anyhow::Result<Peer> {
    let port = free_port()?;
    let mut child = Command::from(crate::server::pinned(node))
        .arg(script)
        .arg(port.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()?;
    let stdout = child.stdout.take().ok_or_else(|| anyhow::anyhow!("no stdout"))?;
    let mut lines = BufReader::new(stdout).lines();
    let began = Instant::now();
    while began.elapsed() < Duration::from_secs(30) {
        match tokio::time::timeout(Duration::from_secs(30), lines.next_line()).await {
            Ok(Ok(Some(l))) if l.starts_with("ready ") => return Ok(Peer { child, addr: format!("127.0.0.1:{port}") }),
            Ok(Ok(Some(_))) => continue,
            _ => break,
        }
    }
    anyhow::bail!("oidc-provider did not start (run `npm ci` in bench/node/oidc-provider)")
}

/// The path part of an absolute URL on `addr`.
fn path_of(url: &str) -> String {
    url.splitn(4, '/').nth(3).map(|p| format!("/{p}")).unwrap_or_else(|| "/".into())
}

async fn measure(addr: &str, connections: usize, seconds: u64) -> anyhow::Result<Value> {
    let discovery_path = "/realms/staff/.well-known/openid-configuration";
    let d: Value = serde_json::from_str(&request(addr, "GET", discovery_path, &[], "").await?.body)?;
    let token_path = path_of(d["token_endpoint"].as_str().unwrap_or(""));
    let jwks_path = path_of(d["jwks_uri"].as_str().unwrap_or(""));
    let basic = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{CLIENT}:{SECRET}")));
    let body = "grant_type=client_credentials&scope=unit";
    let check =
        request(addr, "POST", &token_path, &[("Authorization", &basic), ("Content-Type", "application/x-www-form-urlencoded")], body)
            .await?;
    let token: Value = serde_json::from_str(&check.body).unwrap_or(Value::Null);
    let access = token["access_token"].as_str().unwrap_or("");
    anyhow::ensure!(
        check.status == 200 && access.split('.').count() == 3,
        "no JWT access token from {addr}: {} {}",
        check.status,
        check.body
    );
    let header: Value =
        serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(access.split('.').next().unwrap_or(""))?)?;
    let req = format!(
        "POST {token_path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: {basic}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let tokens = load_raw(addr, &token_path, &req, connections, seconds).await?;
    let discovery = load(addr, discovery_path, "", connections, seconds).await?;
    let jwks = load(addr, &jwks_path, "", connections, seconds).await?;
    Ok(json!({"access_token_alg": header["alg"], "token_client_credentials": tokens, "discovery": discovery, "jwks": jwks}))
}

fn ratio(ours: &Value, theirs: &Value, key: &str, field: &str) -> f64 {
    let a = ours[key][field].as_f64().unwrap_or(0.0);
    let b = theirs[key][field].as_f64().unwrap_or(0.0);
    if b == 0.0 { 0.0 } else { (a / b * 100.0).round() / 100.0 }
}

/// Runs both servers, one after the other.
pub async fn run(bin: &str, node: &str, script: &str, connections: usize, seconds: u64) -> anyhow::Result<Value> {
    let ours = {
        let server = start(bin).await?;
        measure(&server.addr, connections, seconds).await?
    };
    let theirs = {
        let peer = start_peer(node, script).await?;
        measure(&peer.addr, connections, seconds).await?
    };
    let version = std::fs::read_to_string(std::path::Path::new(script).with_file_name("package.json"))
        .ok()
        .and_then(|t| serde_json::from_str::<Value>(&t).ok().and_then(|v| v["dependencies"]["oidc-provider"].as_str().map(String::from)));
    let ratios = json!({
        "token_rps": ratio(&ours, &theirs, "token_client_credentials", "requests_per_second"),
        "token_p99": ratio(&ours, &theirs, "token_client_credentials", "p99_ms"),
        "discovery_rps": ratio(&ours, &theirs, "discovery", "requests_per_second"),
        "jwks_rps": ratio(&ours, &theirs, "jwks", "requests_per_second"),
    });
    Ok(json!({
        "benchmark": "oidc_token_discovery_jwks",
        "connections": connections,
        "seconds_each": seconds,
        "tongban": ours,
        "oidc_provider": theirs,
        "oidc_provider_version": version,
        "ratios_tongban_over_oidc_provider": ratios,
        "note": "tongban writes an audit record per token to SQLite (one transaction each); oidc-provider keeps nothing for client-credentials JWTs",
    }))
}
