//! The domain error type every slice returns; the web layer maps it to HTTP status codes and
//! localised messages. Messages are i18n keys, never free text, so both languages can show them.

use thiserror::Error;

/// A validation problem with one input field: the field's name and an i18n message key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// The input field, as named in the form or JSON body.
    pub field: String,
    /// An i18n key such as `error.password_too_weak`.
    pub message_key: String,
    /// Untranslated particulars shown after the message (an element id and line, a date).
    pub detail: Option<String>,
}

/// What can go wrong in a use case. Each variant maps to one HTTP status.
#[derive(Debug, Error)]
pub enum DomainError {
    /// Bad input (400/422): names the field.
    #[error("invalid field {}: {}", .0.field, .0.message_key)]
    Invalid(FieldError),
    /// Not logged in or credentials wrong (401).
    #[error("unauthenticated: {0}")]
    Unauthenticated(&'static str),
    /// Logged in but not allowed (403), with an i18n key explaining why.
    #[error("forbidden: {0}")]
    Forbidden(&'static str),
    /// The object does not exist, or the caller may not know that it does (404).
    #[error("not found: {0}")]
    NotFound(&'static str),
    /// The state does not allow this (409), e.g. a duplicate name.
    #[error("conflict: {0}")]
    Conflict(&'static str),
    /// Too many attempts (429 / locked).
    #[error("locked: {0}")]
    Locked(&'static str),
    /// Storage failed (500).
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// Anything else internal (500).
    #[error("internal: {0}")]
    Internal(String),
}

impl DomainError {
    /// A validation error on `field` with the i18n key `message_key`.
    pub fn invalid(field: &str, message_key: &str) -> Self {
        DomainError::Invalid(FieldError { field: field.to_string(), message_key: message_key.to_string(), detail: None })
    }

    /// A validation error with particulars, e.g. `element Gateway_1, line 14`.
    pub fn invalid_detail(field: &str, message_key: &str, detail: impl Into<String>) -> Self {
        DomainError::Invalid(FieldError { field: field.to_string(), message_key: message_key.to_string(), detail: Some(detail.into()) })
    }
}

/// Result alias for domain code.
pub type DomainResult<T> = Result<T, DomainError>;
