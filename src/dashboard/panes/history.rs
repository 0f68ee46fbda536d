//! The history pane: finished runs from the audit log, newest first, with
//! who ran them, why, and how they ended.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use crate::dashboard::app::App;
use crate::dashboard::theme;
use crate::engine::rollback::RunOutcome;
use crate::engine::rollback::journal::RunKind;

pub fn render(frame: &mut Frame, area: Rect, app: &App, focused: bool) {
    let block = super::block(format!("History ({})", app.history.len()), focused);
    let inner = block.inner(area);
    frame.render_widget(block, area);

    if app.history.is_empty() {
        let empty = Line::styled("No finished runs in the audit log yet.", theme::muted());
        frame.render_widget(empty, inner);
        return;
    }
    let width = inner.width as usize;
    let lines: Vec<Line> = app
        .history
        .iter()
        .skip(app.history_scroll)
        .take(inner.height as usize)
        .map(|entry| {
            let (outcome, style) = match entry.outcome {
                RunOutcome::Succeeded => ("ok", theme::success()),
                RunOutcome::Reverted { .. } => ("reverted", theme::error()),
                RunOutcome::RevertFailed { .. } => ("REVERT FAILED", theme::error()),
                RunOutcome::Refused { .. } => ("refused", theme::muted()),
            };
            let kind = match entry.kind {
                RunKind::Rollback => "",
                RunKind::Undo => "undo ",
                RunKind::Restore => "restore ",
            };
            let when = entry
                .finished_at
                .get(5..16)
                .unwrap_or_default()
                .replace('T', " ");
            let reason = entry
                .reason
                .as_deref()
                .map_or(String::new(), |reason| format!(" · {reason}"));
            let text = format!(
                " {kind}{} {} → {} · {}{reason}",
                entry.service, entry.from.label, entry.to.label, entry.user
            );
            let used = when.len() + outcome.len() + 2;
            Line::from(vec![
                Span::styled(when, theme::muted()),
                Span::raw(" "),
                Span::styled(outcome, style),
                Span::raw(super::truncate(&text, width.saturating_sub(used))),
            ])
        })
        .collect();
    frame.render_widget(Paragraph::new(lines), inner);
}
