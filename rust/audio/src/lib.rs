#![doc = include_str!("../README.md")]

pub mod error;
pub mod pcm;

pub use error::{AudioError, Result};
