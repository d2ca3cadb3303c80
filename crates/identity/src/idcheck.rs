//! Check characters of Chinese identifiers: the resident identity card number (公民身份号码,
//! GB 11643-1999, ISO 7064 MOD 11-2) and the unified social credit code (统一社会信用代码,
//! GB 32100-2015, MOD 31). Hand-written: each is a dozen lines and no maintained crate covers both.

use time::{Date, Month};

const ID_WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
const ID_CHECK: [u8; 11] = *b"10X98765432";

/// Why an identity card number is not valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum IdNumberError {
    /// Not 17 digits followed by a digit or X.
    #[error("an identity number is 17 digits and a digit or X")]
    Shape,
    /// The birth date (digits 7–14) is not a real date, or is in the future or before 1900.
    #[error("the birth date in the number is not valid")]
    BirthDate,
    /// The check character does not match.
    #[error("the check character does not match")]
    CheckDigit,
}

/// Validates an 18-character identity card number (GB 11643) and answers it normalised
/// (upper-case X). `today` bounds the birth date.
pub fn check_id_number(input: &str, today: Date) -> Result<String, IdNumberError> {
    let s = input.trim().to_ascii_uppercase();
    let b = s.as_bytes();
    if b.len() != 18 || !b[..17].iter().all(u8::is_ascii_digit) || !(b[17].is_ascii_digit() || b[17] == b'X') {
        return Err(IdNumberError::Shape);
    }
    let num = |r: std::ops::Range<usize>| s[r].parse::<u32>().unwrap_or(0);
    let birth = Month::try_from(num(10..12) as u8)
        .ok()
        .and_then(|m| Date::from_calendar_date(num(6..10) as i32, m, num(12..14) as u8).ok())
        .filter(|d| d.year() >= 1900 && *d <= today);
    if birth.is_none() {
        return Err(IdNumberError::BirthDate);
    }
    let sum: u32 = b[..17].iter().zip(ID_WEIGHTS).map(|(c, w)| u32::from(c - b'0') * w).sum();
    if ID_CHECK[(sum % 11) as usize] != b[17] {
        return Err(IdNumberError::CheckDigit);
    }
    Ok(s)
}

/// The characters of a credit code, in value order (no I, O, Z, S, V).
const USCC_CHARS: &[u8; 31] = b"0123456789ABCDEFGHJKLMNPQRTUWXY";
const USCC_WEIGHTS: [u32; 17] = [1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28];

/// Why a unified social credit code is not valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CreditCodeError {
    /// Not 18 characters of the code's alphabet.
    #[error("a credit code is 18 characters of 0-9 and A-Y without I, O, Z, S, V")]
    Shape,
    /// The check character does not match.
    #[error("the check character does not match")]
    CheckCharacter,
}

/// Validates an 18-character unified social credit code (GB 32100) and answers it upper-case.
pub fn check_credit_code(input: &str) -> Result<String, CreditCodeError> {
    let s = input.trim().to_ascii_uppercase();
    let values: Option<Vec<u32>> = s.bytes().map(|c| USCC_CHARS.iter().position(|x| *x == c).map(|p| p as u32)).collect();
    let Some(values) = values.filter(|v| v.len() == 18) else { return Err(CreditCodeError::Shape) };
    let sum: u32 = values[..17].iter().zip(USCC_WEIGHTS).map(|(v, w)| v * w).sum();
    let check = (31 - sum % 31) % 31;
    if values[17] != check {
        return Err(CreditCodeError::CheckCharacter);
    }
    Ok(s)
}

/// The check character a 17-character credit code prefix needs (for building test data).
pub fn credit_code_check(prefix: &str) -> Option<char> {
    let values: Option<Vec<u32>> = prefix.bytes().map(|c| USCC_CHARS.iter().position(|x| *x == c).map(|p| p as u32)).collect();
    let values = values.filter(|v| v.len() == 17)?;
    let sum: u32 = values.iter().zip(USCC_WEIGHTS).map(|(v, w)| v * w).sum();
    Some(USCC_CHARS[((31 - sum % 31) % 31) as usize] as char)
}

/// The check character a 17-digit identity number prefix needs (for building test data).
pub fn id_number_check(prefix: &str) -> Option<char> {
    let b = prefix.as_bytes();
    if b.len() != 17 || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let sum: u32 = b.iter().zip(ID_WEIGHTS).map(|(c, w)| u32::from(c - b'0') * w).sum();
    Some(ID_CHECK[(sum % 11) as usize] as char)
}

/// Masks an identity number for display: `4310**********123X`.
pub fn mask_id_number(s: &str) -> String {
    s.chars().enumerate().map(|(i, c)| if (4..14).contains(&i) { '*' } else { c }).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use time::macros::date;

    const TODAY: Date = date!(2026 - 11 - 30);

    #[test]
    fn the_standards_examples_pass() {
        // GB 11643-1999 appendix example.
        assert_eq!(check_id_number("11010519491231002x", TODAY), Ok("11010519491231002X".into()));
        // GB 32100-2015 example code.
        assert_eq!(check_credit_code("91350100M000100Y43"), Ok("91350100M000100Y43".into()));
    }

    #[test]
    fn wrong_numbers_are_refused_with_the_reason() {
        assert_eq!(check_id_number("110105194912310021", TODAY), Err(IdNumberError::CheckDigit));
        assert_eq!(check_id_number("11010519491331002X", TODAY), Err(IdNumberError::BirthDate));
        assert_eq!(check_id_number("1101051949123100", TODAY), Err(IdNumberError::Shape));
        assert_eq!(check_credit_code("91350100M000100Y44"), Err(CreditCodeError::CheckCharacter));
        assert_eq!(check_credit_code("91350100M000100YI3"), Err(CreditCodeError::Shape));
        assert_eq!(mask_id_number("11010519491231002X"), "1101**********002X");
    }

    proptest! {
        #[test]
        fn any_prefix_with_its_check_character_passes(body in "[0-9]{6}", day in 0i64..30000, seq in "[0-9]{3}") {
            let birth = date!(1940 - 01 - 01) + time::Duration::days(day);
            let prefix = format!("{body}{:04}{:02}{:02}{seq}", birth.year(), u8::from(birth.month()), birth.day());
            let id = format!("{prefix}{}", id_number_check(&prefix).unwrap_or('?'));
            prop_assert!(check_id_number(&id, TODAY).is_ok());
        }

        #[test]
        fn any_credit_code_prefix_with_its_check_passes(prefix in "[0-9A-HJ-NPQRTUWXY]{17}") {
            let code = format!("{prefix}{}", credit_code_check(&prefix).unwrap_or('?'));
            prop_assert!(check_credit_code(&code).is_ok());
        }

        #[test]
        fn one_changed_character_is_caught(prefix in "[0-9A-HJ-NPQRTUWXY]{17}", pos in 0usize..17, delta in 1u32..31) {
            let code = format!("{prefix}{}", credit_code_check(&prefix).unwrap_or('?'));
            let mut b = code.into_bytes();
            let v = USCC_CHARS.iter().position(|x| *x == b[pos]).unwrap_or(0) as u32;
            b[pos] = USCC_CHARS[((v + delta) % 31) as usize];
            prop_assert!(check_credit_code(&String::from_utf8(b).unwrap_or_default()).is_err());
        }

        #[test]
        fn never_panics(s in "\\PC{0,40}") {
            let _ = check_id_number(&s, TODAY);
            let _ = check_credit_code(&s);
        }
    }
}
