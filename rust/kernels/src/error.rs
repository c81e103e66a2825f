//! The one error type of the kernels.

use std::fmt;

/// Everything a kernel call can refuse. Variants carry the numbers involved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KernelError {
    /// A buffer whose length does not match the shape it is used with.
    ShapeMismatch {
        what: &'static str,
        expected: usize,
        actual: usize,
    },
    /// A zero dimension, or a value that is not finite where one is needed.
    InvalidArgument { what: &'static str, value: String },
}

impl fmt::Display for KernelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ShapeMismatch {
                what,
                expected,
                actual,
            } => write!(f, "{what}: expected {expected} elements, got {actual}"),
            Self::InvalidArgument { what, value } => write!(f, "invalid {what}: {value}"),
        }
    }
}

impl std::error::Error for KernelError {}

/// Result alias of the kernels.
pub type Result<T> = std::result::Result<T, KernelError>;

/// `Ok` if a buffer has the length its shape asks for, else a `ShapeMismatch` naming it.
pub(crate) fn check_len(what: &'static str, expected: usize, actual: usize) -> Result<()> {
    if expected == actual {
        Ok(())
    } else {
        Err(KernelError::ShapeMismatch {
            what,
            expected,
            actual,
        })
    }
}
