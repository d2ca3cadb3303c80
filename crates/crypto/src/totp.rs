//! Time-based one-time passwords (RFC 6238, SHA-1, 6 digits, 30 s) for the second factor, with
//! replay protection: a code's time step must be newer than the last accepted one.

use totp_rs::{Algorithm, Secret, TOTP};

/// Seconds per TOTP step.
pub const STEP: u64 = 30;

/// A new random 160-bit secret in base32.
pub fn new_secret() -> String {
    Secret::generate_secret().to_encoded().to_string()
}

fn totp(secret_b32: &str, account: &str) -> Option<TOTP> {
    let bytes = Secret::Encoded(secret_b32.to_string()).to_bytes().ok()?;
    TOTP::new_unchecked(Algorithm::SHA1, 6, 1, STEP, bytes, Some("tongban".into()), account.to_string()).into()
}

/// The `otpauth://` URL an authenticator app scans.
pub fn provisioning_url(secret_b32: &str, account: &str) -> Option<String> {
    totp(secret_b32, account).map(|t| t.get_url())
}

/// An SVG QR code of `data`.
pub fn qr_svg(data: &str) -> Option<String> {
    let code = qrcode::QrCode::new(data.as_bytes()).ok()?;
    Some(code.render::<qrcode::render::svg::Color>().min_dimensions(200, 200).build())
}

/// The code for a given Unix time (used by tests and by enrolment previews).
pub fn code_at(secret_b32: &str, unix_seconds: u64) -> Option<String> {
    totp(secret_b32, "x").map(|t| t.generate(unix_seconds))
}

/// Checks `code` at `unix_seconds`, accepting the current and the previous step. Returns the
/// matched step if it is newer than `last_step`; `None` for a wrong or replayed code.
pub fn verify(secret_b32: &str, code: &str, unix_seconds: u64, last_step: Option<i64>) -> Option<i64> {
    let t = totp(secret_b32, "x")?;
    let code = code.trim();
    if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let now_step = (unix_seconds / STEP) as i64;
    for step in [now_step, now_step - 1] {
        if step < 0 {
            continue;
        }
        let expected = t.generate(step as u64 * STEP);
        if crate::token::constant_time_eq(expected.as_bytes(), code.as_bytes()) {
            return match last_step {
                Some(last) if step <= last => None,
                _ => Some(step),
            };
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc6238_vector_sha1() {
        // RFC 6238 appendix B, SHA-1, seed "12345678901234567890", T = 59 → 94287082 (8 digits);
        // with 6 digits that is the last six: 287082.
        let secret = Secret::Raw(b"12345678901234567890".to_vec()).to_encoded().to_string();
        assert_eq!(code_at(&secret, 59).unwrap(), "287082");
        assert_eq!(code_at(&secret, 1111111109).unwrap(), "081804");
    }

    #[test]
    fn codes_are_single_use_and_expire() {
        let secret = new_secret();
        let now = 1_700_000_000;
        let code = code_at(&secret, now).unwrap();
        let step = verify(&secret, &code, now, None).unwrap();
        assert_eq!(verify(&secret, &code, now, Some(step)), None, "replay refused");
        assert_eq!(verify(&secret, &code, now + 90, None), None, "old code refused");
        assert_eq!(verify(&secret, "12345", now, None), None);
        assert!(provisioning_url(&secret, "alice").unwrap().starts_with("otpauth://totp/"));
        assert!(qr_svg("otpauth://totp/x").unwrap().contains("<svg"));
    }
}
