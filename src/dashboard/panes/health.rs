//! The health pane: state, availability and latency sparkline of the
//! selected service, and its newest error.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Sparkline, Wrap};

use crate::dashboard::app::App;
use crate::dashboard::theme;

pub fn render(frame: &mut Frame, area: Rect, app: &App, focused: bool) {
    let Some(service) = app.selected_service() else {
        frame.render_widget(super::block("Health".into(), focused), area);
        return;
    };
    let title = match service.availability() {
        Some(share) => format!("Health · {} · up {:.0}%", service.name, share * 100.0),
        None => format!("Health · {}", service.name),
    };
    let block = super::block(title, focused);
    let inner = block.inner(area);
    frame.render_widget(block, area);

    let [summary, url, spark, error] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(1),
        Constraint::Length(3),
        Constraint::Min(0),
    ])
    .areas(inner);

    let style = theme::health(service.health);
    let mut parts = vec![Span::styled(
        format!(
            "{} {}",
            theme::health_symbol(service.health),
            service.health.as_str()
        ),
        style,
    )];
    if let Some(sample) = service.last_sample() {
        let answer = match sample.status {
            Some(status) => format!("  {}ms  HTTP {status}", sample.latency.as_millis()),
            None => "  no answer".to_owned(),
        };
        parts.push(Span::raw(answer));
    }
    frame.render_widget(Line::from(parts), summary);
    frame.render_widget(
        Line::styled(
            super::truncate(&service.url, url.width as usize),
            theme::muted(),
        ),
        url,
    );

    let width = spark.width as usize;
    let latencies: Vec<u64> = service
        .samples
        .iter()
        .rev()
        .take(width)
        .rev()
        .map(|sample| sample.latency.as_millis() as u64)
        .collect();
    frame.render_widget(Sparkline::default().data(&latencies).style(style), spark);

    let text = match service.last_error() {
        Some((at, message)) => Paragraph::new(vec![
            Line::styled(format!("last error {}", super::clock(at)), theme::muted()),
            Line::styled(message.to_owned(), theme::error()),
        ]),
        None if service.samples.is_empty() => {
            Paragraph::new(Line::styled("waiting for the first probe…", theme::muted()))
        }
        None => Paragraph::new(Line::styled(
            "no errors in the recent samples",
            theme::muted(),
        )),
    };
    frame.render_widget(text.wrap(Wrap { trim: true }), error);
}
