//! The one error type of the core.
//!
//! Opaque on purpose (a private kind behind accessors): callers match on the
//! stable `code()` string, so new kinds never break them.

use std::fmt;

/// An error from the core: a stable snake_case [`code`](Error::code) and a
/// human-readable message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    kind: Kind,
    message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    InvalidPattern,
    InvalidPolicy,
    InvalidBody,
    InvalidHistory,
    UnknownModel,
    InvalidCatalog,
    InvalidArgument,
}

impl Kind {
    fn code(self) -> &'static str {
        match self {
            Kind::InvalidPattern => "invalid_pattern",
            Kind::InvalidPolicy => "invalid_policy",
            Kind::InvalidBody => "invalid_body",
            Kind::InvalidHistory => "invalid_history",
            Kind::UnknownModel => "unknown_model",
            Kind::InvalidCatalog => "invalid_catalog",
            Kind::InvalidArgument => "invalid_argument",
        }
    }
}

impl Error {
    fn new(kind: Kind, message: impl Into<String>) -> Self {
        Error {
            kind,
            message: message.into(),
        }
    }

    pub(crate) fn invalid_pattern(message: impl Into<String>) -> Self {
        Self::new(Kind::InvalidPattern, message)
    }
    pub(crate) fn invalid_policy(message: impl Into<String>) -> Self {
        Self::new(Kind::InvalidPolicy, message)
    }
    pub(crate) fn invalid_body(message: impl Into<String>) -> Self {
        Self::new(Kind::InvalidBody, message)
    }
    pub(crate) fn invalid_history(message: impl Into<String>) -> Self {
        Self::new(Kind::InvalidHistory, message)
    }
    pub(crate) fn unknown_model(message: impl Into<String>) -> Self {
        Self::new(Kind::UnknownModel, message)
    }
    pub(crate) fn invalid_catalog(message: impl Into<String>) -> Self {
        Self::new(Kind::InvalidCatalog, message)
    }
    pub(crate) fn invalid_argument(message: impl Into<String>) -> Self {
        Self::new(Kind::InvalidArgument, message)
    }

    /// Stable snake_case code, e.g. `invalid_pattern`.
    pub fn code(&self) -> &'static str {
        self.kind.code()
    }

    /// Human-readable explanation.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code(), self.message)
    }
}

impl std::error::Error for Error {}
