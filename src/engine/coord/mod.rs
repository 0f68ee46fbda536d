//! Coordination between rollbacks on one host: one advisory file lock per
//! service, and the audit log of finished runs, both under the state
//! folder.

pub mod audit;
mod lock;

pub use lock::{Holder, LockError, ServiceLock};
