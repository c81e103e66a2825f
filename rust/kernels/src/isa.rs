//! The instruction sets the kernels are compiled for, picked at run time.

use crate::error::{KernelError, Result};

/// The instruction set a call runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isa {
    /// Plain Rust, any target.
    Portable,
    /// x86-64 AVX2 with FMA (`vpmaddubsw` for int8, `vfmadd` for float), picked at run time
    /// where the CPU has both.
    Avx2,
}

impl Isa {
    /// The fastest instruction set this CPU supports.
    pub fn best() -> Self {
        if Self::Avx2.is_supported() {
            Self::Avx2
        } else {
            Self::Portable
        }
    }

    /// Whether this CPU can run the instruction set.
    pub fn is_supported(self) -> bool {
        match self {
            Self::Portable => true,
            #[cfg(target_arch = "x86_64")]
            Self::Avx2 => {
                std::arch::is_x86_feature_detected!("avx2")
                    && std::arch::is_x86_feature_detected!("fma")
            }
            #[cfg(not(target_arch = "x86_64"))]
            Self::Avx2 => false,
        }
    }

    /// An error naming the instruction set if this CPU cannot run it.
    pub(crate) fn require(self) -> Result<()> {
        if self.is_supported() {
            Ok(())
        } else {
            Err(KernelError::InvalidArgument {
                what: "instruction set",
                value: format!("{self:?} is not supported by this CPU"),
            })
        }
    }
}
