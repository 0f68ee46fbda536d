//! One file per pane. Each draws from `&App` into its area and changes nothing.

pub mod backups;
pub mod health;
pub mod history;
pub mod run;
pub mod services;
pub mod versions;

use ratatui::text::Line;
use ratatui::widgets::{Block, BorderType};

use super::theme;

/// Returns the bordered block with `title`, styled by focus.
pub fn block(title: String, focused: bool) -> Block<'static> {
    Block::bordered()
        .border_type(if focused {
            BorderType::Thick
        } else {
            BorderType::Plain
        })
        .border_style(theme::pane(focused))
        .title(Line::styled(format!(" {title} "), theme::title(focused)))
}

/// Formats a time as `HH:MM:SS` UTC.
pub fn clock(time: std::time::SystemTime) -> String {
    let text = humantime::format_rfc3339_seconds(time).to_string();
    text.get(11..19).unwrap_or("--:--:--").to_owned()
}

/// Cuts `text` to at most `width` characters, marking the cut with `…`.
pub fn truncate(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        return text.to_owned();
    }
    if width == 0 {
        return String::new();
    }
    let mut cut: String = text.chars().take(width - 1).collect();
    cut.push('…');
    cut
}

/// Formats Unix seconds as a `YYYY-MM-DD` UTC date.
pub fn date(seconds: i64) -> String {
    let time = std::time::UNIX_EPOCH + std::time::Duration::from_secs(seconds.max(0) as u64);
    let text = humantime::format_rfc3339_seconds(time).to_string();
    text[..10].to_owned()
}
