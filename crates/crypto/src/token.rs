//! Random secrets: session tokens, CSRF tokens, API tokens, recovery codes and one-time passwords.

use rand::{Rng, RngCore, rngs::OsRng};

/// A 256-bit random token, URL-safe base64 without padding.
pub fn random_token() -> String {
    use base64::Engine;
    let mut bytes = [0u8; 32];
    OsRng.fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// A one-time password for a new or reset account: 16 characters from letters, digits and
/// symbols, always satisfying the password policy.
pub fn one_time_password() -> String {
    const LOWER: &[u8] = b"abcdefghijkmnpqrstuvwxyz";
    const UPPER: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ";
    const DIGIT: &[u8] = b"23456789";
    const SYMBOL: &[u8] = b"#%+=@";
    let mut rng = OsRng;
    let mut out: Vec<u8> = Vec::with_capacity(16);
    for set in [LOWER, UPPER, DIGIT, SYMBOL] {
        out.push(set[rng.gen_range(0..set.len())]);
    }
    let all: Vec<u8> = [LOWER, UPPER, DIGIT].concat();
    while out.len() < 16 {
        out.push(all[rng.gen_range(0..all.len())]);
    }
    for i in (1..out.len()).rev() {
        out.swap(i, rng.gen_range(0..=i));
    }
    String::from_utf8(out).unwrap_or_default()
}

/// A six-digit one-time code (SMS or e-mail log-in), uniformly drawn.
pub fn six_digit_code() -> String {
    format!("{:06}", OsRng.gen_range(0..1_000_000u32))
}

/// Compares two secrets in time that does not depend on where they differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A recovery code such as `k7m2-9xqa-p4tn`.
pub fn recovery_code() -> String {
    const SET: &[u8] = b"abcdefghjkmnpqrstuvwxyz23456789";
    let mut rng = OsRng;
    let chunk = |rng: &mut OsRng| (0..4).map(|_| SET[rng.gen_range(0..SET.len())] as char).collect::<String>();
    format!("{}-{}-{}", chunk(&mut rng), chunk(&mut rng), chunk(&mut rng))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_time_passwords_meet_the_policy() {
        for _ in 0..200 {
            let p = one_time_password();
            assert_eq!(crate::password::check_policy(&p, "someone", &[]), Ok(()), "{p}");
        }
        assert_ne!(random_token(), random_token());
        assert_eq!(recovery_code().len(), 14);
    }
}
