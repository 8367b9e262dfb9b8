//! Condition types and reasons written on our objects' `status.conditions`: the constants
//! live in [`kthena_core::conditions`], beside the pure functions that choose them.

pub use kthena_core::conditions::{reasons, types};
