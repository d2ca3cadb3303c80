//! The one check for text taken from outside (文本校验): names, titles, file names and multi-line
//! text. Refused: C0 and C1 control characters (a NUL, an escape sequence; multi-line text may
//! hold `\n`, `\r\n` and `\t`), bidirectional controls (U+202A–U+202E, U+2066–U+2069, U+200E,
//! U+200F, U+061C: U+202E turns `…fdp.exe` into a name that reads like a PDF), and names or
//! titles that are empty once zero-width characters (U+200B–U+200D, U+2060, U+FEFF) and white
//! space are removed. Each problem has a localised message under `error.text_*`.

use crate::DomainError;

/// What kind of text a field holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextKind {
    /// A name, a title or a file name: one line, and something visible in it.
    Name,
    /// One line that may be empty (a code, a short note).
    Line,
    /// Several lines (an opinion, a reason, a description): `\n`, `\r` and `\t` are allowed.
    MultiLine,
}

/// Why a text was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TextProblem {
    /// A control character (C0, DEL or C1) where none may be.
    #[error("control character")]
    Control,
    /// A bidirectional control character.
    #[error("bidirectional control character")]
    Bidi,
    /// Nothing visible: empty, or only white space and zero-width characters.
    #[error("blank")]
    Blank,
}

impl TextProblem {
    /// The i18n key of the message.
    pub fn message_key(self) -> &'static str {
        match self {
            TextProblem::Control => "error.text_control",
            TextProblem::Bidi => "error.text_bidi",
            TextProblem::Blank => "error.text_blank",
        }
    }
}

/// Whether `c` changes the direction text is shown in.
pub fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}' | '\u{061C}')
}

/// Whether `c` takes no space on screen (a zero-width space, joiner, word joiner or BOM).
pub fn is_zero_width(c: char) -> bool {
    matches!(c, '\u{200B}'..='\u{200D}' | '\u{2060}' | '\u{FEFF}')
}

/// Checks a text of `kind`.
pub fn check_text(s: &str, kind: TextKind) -> Result<(), TextProblem> {
    for c in s.chars() {
        if is_bidi_control(c) {
            return Err(TextProblem::Bidi);
        }
        let allowed_space = kind == TextKind::MultiLine && matches!(c, '\n' | '\r' | '\t');
        if c.is_control() && !allowed_space {
            return Err(TextProblem::Control);
        }
    }
    if kind == TextKind::Name && s.chars().all(|c| c.is_whitespace() || is_zero_width(c)) {
        return Err(TextProblem::Blank);
    }
    Ok(())
}

/// Checks the text of `field`, answering the localised 422 that names it.
pub fn check_field(field: &str, s: &str, kind: TextKind) -> Result<(), DomainError> {
    check_text(s, kind).map_err(|p| DomainError::invalid(field, p.message_key()))
}

/// Checks a name or title (one line, something visible).
pub fn check_name(field: &str, s: &str) -> Result<(), DomainError> {
    check_field(field, s, TextKind::Name)
}

/// Checks one line of optional text.
pub fn check_line(field: &str, s: &str) -> Result<(), DomainError> {
    check_field(field, s, TextKind::Line)
}

/// Checks multi-line text.
pub fn check_multiline(field: &str, s: &str) -> Result<(), DomainError> {
    check_field(field, s, TextKind::MultiLine)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_attack_strings_are_refused() {
        assert_eq!(check_text("申请书\u{202E}fdp.exe", TextKind::Name), Err(TextProblem::Bidi));
        assert_eq!(check_text("a\0b", TextKind::Name), Err(TextProblem::Control));
        assert_eq!(check_text("a\0b", TextKind::MultiLine), Err(TextProblem::Control));
        assert_eq!(check_text("\u{200B}\u{200C}\u{FEFF} \u{2060}", TextKind::Name), Err(TextProblem::Blank));
        assert_eq!(check_text("", TextKind::Name), Err(TextProblem::Blank));
        assert_eq!(check_text("\u{1b}[31m", TextKind::Line), Err(TextProblem::Control));
        assert_eq!(check_text("\u{85}", TextKind::Line), Err(TextProblem::Control), "C1 too");
        for c in ['\u{202A}', '\u{202D}', '\u{2066}', '\u{2069}', '\u{200E}', '\u{200F}', '\u{061C}'] {
            assert_eq!(check_text(&format!("x{c}y"), TextKind::MultiLine), Err(TextProblem::Bidi), "{c:?}");
        }
    }

    #[test]
    fn ordinary_text_passes() {
        assert_eq!(check_text("嘉禾县自然资源局", TextKind::Name), Ok(()));
        assert_eq!(check_text("关于2026年春节放假的通知（第1号）", TextKind::Name), Ok(()));
        assert_eq!(check_text("", TextKind::Line), Ok(()));
        assert_eq!(check_text("同意。\r\n\t请于今日办结", TextKind::MultiLine), Ok(()));
        assert_eq!(check_text("a\nb", TextKind::Name), Err(TextProblem::Control), "a name is one line");
        assert_eq!(check_text("👨\u{200D}👩", TextKind::Name), Ok(()), "joiners inside visible text are fine");
    }

    proptest! {
        #[test]
        fn never_panics_and_what_passes_is_clean(s in "\\PC{0,40}|[\\x00-\\x1f\\u{200b}-\\u{200f}\\u{202a}-\\u{202e}\\u{2066}-\\u{2069} a]{0,10}") {
            for kind in [TextKind::Name, TextKind::Line, TextKind::MultiLine] {
                if check_text(&s, kind).is_ok() {
                    prop_assert!(!s.chars().any(is_bidi_control));
                    prop_assert!(!s.chars().any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t')));
                    if kind == TextKind::Name {
                        prop_assert!(s.chars().any(|c| !c.is_whitespace() && !is_zero_width(c)));
                    }
                }
            }
        }
    }
}
