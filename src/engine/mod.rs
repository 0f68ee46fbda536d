//! The engines. None of them imports the dashboard or ratatui: they report
//! through [`event::EngineEvent`] and are driven by plain function calls and
//! handles.

pub mod backup;
pub mod coord;
pub mod event;
pub mod failpoint;
pub mod health;
pub mod process;
pub mod rollback;
pub mod versions;
