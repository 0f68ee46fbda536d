//! Styles by meaning. Panes ask for `pane(focused)` or `health(state)` and
//! never pick colours themselves.

use ratatui::style::{Color, Modifier, Style};

use crate::engine::health::HealthState;

use super::app::StepStatus;

pub fn pane(focused: bool) -> Style {
    if focused {
        Style::new().fg(Color::Cyan)
    } else {
        Style::new().fg(Color::DarkGray)
    }
}

pub fn title(focused: bool) -> Style {
    let style = Style::new().add_modifier(Modifier::BOLD);
    if focused {
        style.fg(Color::Cyan)
    } else {
        style
    }
}

/// Returns the style of a health state in rows and panes: states that need
/// attention are bold.
pub fn health(state: HealthState) -> Style {
    match state {
        HealthState::Unknown => Style::new().fg(Color::DarkGray),
        HealthState::Healthy => Style::new().fg(Color::Green),
        HealthState::Unhealthy => Style::new().fg(Color::Yellow).add_modifier(Modifier::BOLD),
        HealthState::Down => Style::new().fg(Color::Red).add_modifier(Modifier::BOLD),
    }
}

/// Returns the colour of a health state without emphasis, for the
/// header's counts, which summarise and should not outshout the rows.
pub fn health_count(state: HealthState) -> Style {
    Style::new().fg(health(state).fg.unwrap_or(Color::Reset))
}

/// Returns the symbol shown beside a health state, so the state reads
/// without colour too.
pub fn health_symbol(state: HealthState) -> &'static str {
    match state {
        HealthState::Unknown => "?",
        HealthState::Healthy => "●",
        HealthState::Unhealthy => "▲",
        HealthState::Down => "✖",
    }
}

pub fn step(status: StepStatus) -> Style {
    match status {
        StepStatus::Pending => Style::new().fg(Color::DarkGray),
        StepStatus::Running => Style::new().fg(Color::Cyan).add_modifier(Modifier::BOLD),
        StepStatus::Done => Style::new().fg(Color::Green),
        StepStatus::Failed => Style::new().fg(Color::Red).add_modifier(Modifier::BOLD),
    }
}

pub fn step_symbol(status: StepStatus) -> &'static str {
    match status {
        StepStatus::Pending => "·",
        StepStatus::Running => "▶",
        StepStatus::Done => "✔",
        StepStatus::Failed => "✖",
    }
}

pub fn selected() -> Style {
    Style::new().add_modifier(Modifier::REVERSED)
}

pub fn muted() -> Style {
    Style::new().fg(Color::DarkGray)
}

pub fn key() -> Style {
    Style::new().fg(Color::Cyan).add_modifier(Modifier::BOLD)
}

pub fn error() -> Style {
    Style::new().fg(Color::Red)
}

pub fn success() -> Style {
    Style::new().fg(Color::Green).add_modifier(Modifier::BOLD)
}

pub fn deployed() -> Style {
    Style::new().fg(Color::Green).add_modifier(Modifier::BOLD)
}

pub fn tag() -> Style {
    Style::new().fg(Color::Yellow)
}

pub fn gauge() -> Style {
    Style::new().fg(Color::Cyan).bg(Color::Black)
}
