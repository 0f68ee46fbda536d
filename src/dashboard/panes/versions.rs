//! The versions pane: first-parent history of the selected service's
//! deploy branch, with the deployed version marked and the cursor that
//! picks a rollback target.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use crate::dashboard::app::{App, VersionsView};
use crate::dashboard::theme;

pub fn render(frame: &mut Frame, area: Rect, app: &App, focused: bool) {
    let Some(service) = app.selected_service() else {
        frame.render_widget(super::block("Versions".into(), focused), area);
        return;
    };
    let title = match &service.versions {
        VersionsView::Loaded(info) => format!(
            "Versions · {} on {}",
            service.name,
            info.history_branch.as_deref().unwrap_or("HEAD")
        ),
        _ => format!("Versions · {}", service.name),
    };
    let block = super::block(title, focused);
    let inner = block.inner(area);
    frame.render_widget(block, area);

    let info = match &service.versions {
        _ if service.history_trimmed => {
            frame.render_widget(Line::styled("reading git history…", theme::muted()), inner);
            return;
        }
        VersionsView::Loading => {
            frame.render_widget(Line::styled("reading git history…", theme::muted()), inner);
            return;
        }
        VersionsView::Failed(error) => {
            let text = Paragraph::new(error.as_str())
                .style(theme::error())
                .wrap(ratatui::widgets::Wrap { trim: true });
            frame.render_widget(text, inner);
            return;
        }
        VersionsView::Loaded(info) => info,
    };

    let height = inner.height as usize;
    let mut lines = Vec::with_capacity(height);
    if !info.dirty.is_empty() {
        lines.push(Line::styled(
            format!(
                "⚠ {} uncommitted: {}",
                info.dirty.len(),
                info.dirty.join(", ")
            ),
            theme::error(),
        ));
    }
    let rows = height.saturating_sub(lines.len());
    let cursor = app.version_cursor;
    let offset = cursor.map_or(0, |at| at.saturating_sub(rows.saturating_sub(1)));
    let width = inner.width as usize;

    for (index, entry) in info.history.iter().enumerate().skip(offset).take(rows) {
        let marker = if entry.deployed {
            Span::styled("▶ ", theme::deployed())
        } else {
            Span::raw("  ")
        };
        let tag = entry.tags.first().cloned().unwrap_or_default();
        // The date is left out where it would leave little room for the subject.
        let date = if width >= 60 {
            format!("{} ", super::date(entry.time))
        } else {
            String::new()
        };
        let used = 2 + 8 + 9 + date.len();
        let subject = super::truncate(&entry.subject, width.saturating_sub(used));
        let mut line = Line::from(vec![
            marker,
            Span::styled(format!("{:<8}", entry.short), theme::muted()),
            Span::styled(format!("{:<9}", super::truncate(&tag, 8)), theme::tag()),
            Span::styled(date, theme::muted()),
            Span::raw(subject),
        ]);
        if cursor == Some(index) {
            line = line.style(theme::selected());
        }
        lines.push(line);
    }
    if info.history.is_empty() {
        lines.push(Line::styled("no commits on this branch", theme::muted()));
    }
    frame.render_widget(Paragraph::new(lines), inner);
}
