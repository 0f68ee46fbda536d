//! Coordination between rollbacks: per-service locks.
