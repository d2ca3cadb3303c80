//! Password hashing with argon2id (OWASP parameters: 19 MiB, 2 passes) and the password policy
//! (密码策略): at least 8 characters from at least 3 of 4 classes.

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
}

impl PolicyViolation {
    /// The i18n key of the message.
    pub fn message_key(self) -> &'static str {
        match self {
            PolicyViolation::TooShort => "error.password_too_short",
            PolicyViolation::TooLong => "error.password_too_long",
            PolicyViolation::TooFewClasses => "error.password_classes",
            PolicyViolation::SameAsUsername => "error.password_is_username",
        }
    }
}

/// Checks a new password against the policy.
pub fn check_policy(password: &str, username: &str) -> Result<(), PolicyViolation> {
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
        assert_eq!(check_policy("Ab1!", "u"), Err(PolicyViolation::TooShort));
        assert_eq!(check_policy("abcdefgh1", "u"), Err(PolicyViolation::TooFewClasses));
        assert_eq!(check_policy("Abcdefg1", "u"), Ok(()));
        assert_eq!(check_policy("abcdefg1!", "u"), Ok(()));
        assert_eq!(check_policy("Admin123", "admin123"), Err(PolicyViolation::SameAsUsername));
    }
}
