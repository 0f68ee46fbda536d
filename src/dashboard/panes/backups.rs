//! The backups pane: the selected service's backups, newest first, with
//! age, size, the version deployed when each was taken, and whether its
//! hash was checked this session.

use std::time::SystemTime;

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use crate::dashboard::app::{App, BackupsView};
use crate::dashboard::theme;

pub fn render(frame: &mut Frame, area: Rect, app: &App, focused: bool) {
    let Some(service) = app.selected_service() else {
        frame.render_widget(super::block("Backups".into(), focused), area);
        return;
    };
    let block = super::block(format!("Backups · {}", service.name), focused);
    let inner = block.inner(area);
    frame.render_widget(block, area);

    let list = match &service.backups {
        BackupsView::NotConfigured => {
            let text = format!("no backup table: add [services.{}.backup]", service.name);
            frame.render_widget(Line::styled(text, theme::muted()), inner);
            return;
        }
        BackupsView::Loading => {
            frame.render_widget(Line::styled("reading the catalog…", theme::muted()), inner);
            return;
        }
        BackupsView::Failed(error) => {
            frame.render_widget(Line::styled(error.clone(), theme::error()), inner);
            return;
        }
        BackupsView::Loaded(list) => list,
    };
    if list.is_empty() {
        let text = "no backups yet: press b to take one";
        frame.render_widget(Line::styled(text, theme::muted()), inner);
        return;
    }

    let now = SystemTime::now();
    let rows = inner.height as usize;
    let offset = app
        .backup_cursor
        .map_or(0, |at| at.saturating_sub(rows.saturating_sub(1)));
    let history = service.history();
    let lines: Vec<Line> = list
        .iter()
        .enumerate()
        .skip(offset)
        .take(rows)
        .map(|(index, manifest)| {
            let id = manifest.id.as_str();
            let version = manifest.commit.as_deref().map_or("—".to_owned(), |commit| {
                history
                    .iter()
                    .find(|entry| entry.commit == commit)
                    .and_then(|entry| entry.tags.first().cloned())
                    .unwrap_or_else(|| commit[..7.min(commit.len())].to_owned())
            });
            let (check, check_style) = match app.verified.get(id) {
                Some(true) => ("✔", theme::success()),
                Some(false) => ("✖", theme::error()),
                None => (" ", theme::muted()),
            };
            let pin = if manifest.pinned { "📌" } else { "  " };
            let mut line = Line::from(vec![
                Span::styled(check, check_style),
                Span::raw(format!(" {:>6} ", age(manifest.age(now)))),
                Span::styled(format!("{version:<9}"), theme::tag()),
                Span::raw(format!("{:>8} ", size(manifest.size))),
                Span::raw(pin),
                Span::styled(id.to_owned(), theme::muted()),
            ]);
            if app.backup_cursor == Some(index) {
                line = line.style(theme::selected());
            }
            line
        })
        .collect();
    frame.render_widget(Paragraph::new(lines), inner);
}

/// Formats an age as its largest unit: `42s`, `5m`, `3h`, `2d`.
pub fn age(age: std::time::Duration) -> String {
    let seconds = age.as_secs();
    match seconds {
        0..60 => format!("{seconds}s"),
        60..3600 => format!("{}m", seconds / 60),
        3600..86400 => format!("{}h", seconds / 3600),
        _ => format!("{}d", seconds / 86400),
    }
}

/// Formats a size in bytes with a binary unit.
pub fn size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn age_uses_largest_unit() {
        assert_eq!(age(Duration::from_secs(42)), "42s");
        assert_eq!(age(Duration::from_secs(300)), "5m");
        assert_eq!(age(Duration::from_secs(3 * 3600 + 5)), "3h");
        assert_eq!(age(Duration::from_secs(2 * 86400)), "2d");
    }

    #[test]
    fn size_uses_binary_units() {
        assert_eq!(size(512), "512 B");
        assert_eq!(size(1536), "1.5 KiB");
        assert_eq!(size(5 << 20), "5.0 MiB");
    }
}
