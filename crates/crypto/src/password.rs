//! Password hashing with argon2id (OWASP parameters: 19 MiB, 2 passes) and the password policy
//! (密码策略): at least 8 characters from at least 3 of 4 classes, none of the 10,000 most common
//! passwords (a list shipped in the program, `data/common-passwords.txt`), and nothing of the
//! account's own: its user name, phone or ID number.

use std::{collections::HashSet, sync::OnceLock};

use argon2::{
    Argon2,
    password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString, rand_core::OsRng},
};

/// Hashes a password into a PHC string (`$argon2id$…`).
pub fn hash_password(password: &str) -> Result<String, String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default().hash_password(password.as_bytes(), &salt).map(|h| h.to_string()).map_err(|e| e.to_string())
}

/// Checks a password against a stored PHC string. A malformed hash never matches.
pub fn verify_password(password: &str, phc: &str) -> bool {
    match PasswordHash::new(phc) {
        Ok(parsed) => Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok(),
        Err(_) => false,
    }
}

/// Why a password is refused by the policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyViolation {
    /// Fewer than 8 characters.
    TooShort,
    /// More than 128 characters.
    TooLong,
    /// Fewer than 3 of: lower case, upper case, digits, other characters.
    TooFewClasses,
    /// The same as the user name.
    SameAsUsername,
    /// One of the most common passwords.
    Common,
    /// Contains the account's user name, phone or ID number.
    ContainsPersonal,
}

impl PolicyViolation {
    /// The i18n key of the message.
    pub fn message_key(self) -> &'static str {
        match self {
            PolicyViolation::TooShort => "error.password_too_short",
            PolicyViolation::TooLong => "error.password_too_long",
            PolicyViolation::TooFewClasses => "error.password_classes",
            PolicyViolation::SameAsUsername => "error.password_is_username",
            PolicyViolation::Common => "error.password_common",
            PolicyViolation::ContainsPersonal => "error.password_personal",
        }
    }
}

/// The most common passwords, lower case.
fn common_passwords() -> &'static HashSet<&'static str> {
    static LIST: OnceLock<HashSet<&'static str>> = OnceLock::new();
    LIST.get_or_init(|| {
        include_str!("../data/common-passwords.txt").lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).collect()
    })
}

/// Whether `password` is one of the most common passwords (letter case ignored).
pub fn is_common(password: &str) -> bool {
    common_passwords().contains(password.to_lowercase().as_str())
}

/// Checks a new password against the policy. `username` is the account's log-in name; `personal`
/// its other identifying values (phone, ID number), which the password may not contain.
pub fn check_policy(password: &str, username: &str, personal: &[&str]) -> Result<(), PolicyViolation> {
    let len = password.chars().count();
    if len < 8 {
        return Err(PolicyViolation::TooShort);
    }
    if len > 128 {
        return Err(PolicyViolation::TooLong);
    }
    let classes = [
        password.chars().any(|c| c.is_lowercase()),
        password.chars().any(|c| c.is_uppercase()),
        password.chars().any(|c| c.is_ascii_digit()),
        password.chars().any(|c| !c.is_alphanumeric()),
    ];
    if classes.iter().filter(|c| **c).count() < 3 {
        return Err(PolicyViolation::TooFewClasses);
    }
    if password.eq_ignore_ascii_case(username) {
        return Err(PolicyViolation::SameAsUsername);
    }
    if is_common(password) {
        return Err(PolicyViolation::Common);
    }
    let lower = password.to_lowercase();
    let mine = std::iter::once(username).chain(personal.iter().copied()).map(|v| v.trim().to_lowercase());
    if mine.filter(|v| v.chars().count() >= 4).any(|v| lower.contains(&v)) {
        return Err(PolicyViolation::ContainsPersonal);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_verifies_only_the_same_password() {
        let h = hash_password("Jiahe#2026").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password("Jiahe#2026", &h));
        assert!(!verify_password("Jiahe#2027", &h));
        assert!(!verify_password("x", "not-a-hash"));
    }

    #[test]
    fn policy_needs_length_and_three_classes() {
        assert_eq!(check_policy("Ab1!", "u", &[]), Err(PolicyViolation::TooShort));
        assert_eq!(check_policy("abcdefgh1", "u", &[]), Err(PolicyViolation::TooFewClasses));
        assert_eq!(check_policy("Jiahe#2026", "u", &[]), Ok(()));
        assert_eq!(check_policy("jiahe#2026!", "u", &[]), Ok(()));
        assert_eq!(check_policy("Admin123", "admin123", &[]), Err(PolicyViolation::SameAsUsername));
    }

    #[test]
    fn common_passwords_are_refused_whatever_their_case() {
        for p in ["Password1", "P@ssw0rd", "Aa123456", "Qwer1234", "Woaini1314"] {
            assert_eq!(check_policy(p, "u", &[]), Err(PolicyViolation::Common), "{p}");
        }
        assert!(common_passwords().len() >= 10_000, "the whole list is shipped");
    }

    #[test]
    fn passwords_may_not_contain_the_account_s_own_values() {
        assert_eq!(check_policy("Liuyang#2026", "liuyang", &[]), Err(PolicyViolation::ContainsPersonal));
        assert_eq!(check_policy("X#13807351234", "u", &["13807351234"]), Err(PolicyViolation::ContainsPersonal));
        assert_eq!(check_policy("Id430000199001011234!", "u", &["", "430000199001011234"]), Err(PolicyViolation::ContainsPersonal));
        assert_eq!(check_policy("Jiahe#2026", "liuyang", &["13807351234", ""]), Ok(()));
    }
}
