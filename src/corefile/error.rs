//! Configuration errors: each at the `file:line:col` of the token it is about.

use std::fmt;

use crate::corefile::{Pos, SyntaxError};

/// A single value that does not read as what was expected (a zone, an address, a label
/// selector): the message says what was wrong and what is accepted. A directive's parser places
/// it at its token ([`crate::corefile::args::Args::err`]).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ValueError(pub String);

impl From<String> for ValueError {
    fn from(msg: String) -> Self {
        Self(msg)
    }
}

impl AsRef<str> for ValueError {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// A configuration error at a position in a Corefile.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{pos}: {msg}")]
pub struct ConfigError {
    pub pos: Pos,
    pub msg: String,
}

impl ConfigError {
    pub fn new(pos: &Pos, msg: impl Into<String>) -> Self {
        Self {
            pos: pos.clone(),
            msg: msg.into(),
        }
    }
}

impl From<SyntaxError> for ConfigError {
    fn from(e: SyntaxError) -> Self {
        Self {
            pos: e.pos,
            msg: e.msg,
        }
    }
}

/// All the errors of one Corefile, one per line as `file:line:col: message`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}
