//! Logging to a file under the state directory through tracing.
