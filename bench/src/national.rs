//! National cryptography (国密) speed, side by side with OpenSSL on the same machine: SM2 sign and
//! verify per second (default user id, 32-byte messages like the digests a seal signs) and SM3
//! MB/s over 16 KiB blocks. tongban's side is what the audit trail, certificate log-in and seals
//! use (RustCrypto `sm2` and `sm3`); OpenSSL's is `openssl speed sm2` and
//! `openssl speed -evp sm3 -bytes 16384`, an independent C implementation.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sm2::{
    SecretKey,
    dsa::{Signature, SigningKey, signature::Signer, signature::Verifier},
};
use sm3::{Digest, Sm3};

const DISTID: &str = "1234567812345678";

/// Runs `f` repeatedly for about `seconds`; answers operations per second.
fn rate(seconds: f64, mut f: impl FnMut()) -> f64 {
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < Duration::from_secs_f64(seconds) {
        for _ in 0..16 {
            f();
        }
        n += 16;
    }
    n as f64 / start.elapsed().as_secs_f64()
}

fn ours(seconds: f64) -> anyhow::Result<Value> {
    let secret = SecretKey::random(&mut rand::rngs::OsRng);
    let signer = SigningKey::new(DISTID, &secret).map_err(|e| anyhow::anyhow!("sm2 key: {e}"))?;
    let verifier = signer.verifying_key().clone();
    let message = [0x5au8; 32];
    let sig: Signature = signer.sign(&message);
    anyhow::ensure!(verifier.verify(&message, &sig).is_ok(), "SM2 round trip failed");
    let sign = rate(seconds, || {
        let s: Signature = signer.sign(&message);
        std::hint::black_box(s);
    });
    let verify = rate(seconds, || {
        std::hint::black_box(verifier.verify(&message, &sig).is_ok());
    });
    let block = vec![0xa5u8; 16 * 1024];
    let sm3 = rate(seconds, || {
        std::hint::black_box(Sm3::digest(&block));
    }) * block.len() as f64
        / 1e6;
    Ok(json!({"sm2_sign_per_s": sign.round(), "sm2_verify_per_s": verify.round(), "sm3_mb_per_s": (sm3 * 10.0).round() / 10.0}))
}

/// The last line of `openssl speed` output that starts with `prefix`, split on whitespace.
fn speed_line(args: &[&str], prefix: &str) -> anyhow::Result<Vec<String>> {
    let out = std::process::Command::new("openssl").args(args).output()?;
    anyhow::ensure!(out.status.success(), "openssl speed failed: {}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    let line =
        text.lines().rev().find(|l| l.trim_start().starts_with(prefix)).ok_or_else(|| anyhow::anyhow!("no '{prefix}' line in: {text}"))?;
    Ok(line.split_whitespace().map(String::from).collect())
}

fn openssl(seconds: u64) -> anyhow::Result<Value> {
    let secs = seconds.to_string();
    // " 256 bits SM2 (CurveSM2)   0.0004s   0.0003s   2853.0   3129.0"
    let sm2 = speed_line(&["speed", "-seconds", &secs, "sm2"], "256 bits SM2")?;
    let num = |s: Option<&String>| s.and_then(|v| v.parse::<f64>().ok()).ok_or_else(|| anyhow::anyhow!("unexpected openssl output"));
    let (sign, verify) = (num(sm2.get(sm2.len().wrapping_sub(2)))?, num(sm2.last())?);
    // "sm3             286031.87k" (thousands of bytes per second)
    let sm3 = speed_line(&["speed", "-seconds", &secs, "-bytes", "16384", "-evp", "sm3"], "sm3")?;
    let kbps = sm3.last().map(|v| v.trim_end_matches('k')).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    let version =
        std::process::Command::new("openssl").arg("version").output().map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())?;
    Ok(json!({"version": version, "sm2_sign_per_s": sign, "sm2_verify_per_s": verify, "sm3_mb_per_s": (kbps / 100.0).round() / 10.0}))
}

/// The benchmark: both sides, and tongban's over OpenSSL's.
pub fn run(seconds: u64) -> anyhow::Result<Value> {
    let ours = ours(seconds as f64)?;
    let theirs = openssl(seconds)?;
    let ratio = |k: &str| {
        let (a, b) = (ours[k].as_f64().unwrap_or(0.0), theirs[k].as_f64().unwrap_or(0.0));
        if b > 0.0 { (a / b * 100.0).round() / 100.0 } else { 0.0 }
    };
    Ok(json!({
        "benchmark": "national_crypto",
        "seconds_each": seconds,
        "tongban": ours,
        "openssl": theirs,
        "ratios_tongban_over_openssl": {"sm2_sign": ratio("sm2_sign_per_s"), "sm2_verify": ratio("sm2_verify_per_s"), "sm3": ratio("sm3_mb_per_s")},
        "note": "single thread each; SM2 with the default user id over 32-byte messages; SM3 over 16 KiB blocks",
    }))
}
