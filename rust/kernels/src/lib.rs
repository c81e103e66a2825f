#![doc = include_str!("../README.md")]

pub mod activation;
pub mod error;
pub mod flow_head;
pub mod int8;
pub mod overlap;
mod pool;
mod portable;
pub mod step;
mod vector;
#[cfg(target_arch = "x86_64")]
mod x86;

pub use error::{KernelError, Result};
pub use flow_head::{FlowBlock, Int8FlowHead};
pub use int8::{Int8Matrix, Isa};
pub use overlap::Overlap;
pub use step::{Int8Layer, Int8Transformer, KvCache, LayerScale, Norm};
