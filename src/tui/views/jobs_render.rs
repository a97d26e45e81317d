//! Drawing the jobs view: session jobs with gauges, the run history, and a
//! run's detail panes.

use super::RenderCtx;
use super::dashboard::{status_slot, status_str};
use super::jobs::{Flow, Jobs, Pane};
use crate::tui::jobboard::JobRow;
use crate::tui::theme::Slot;
use crate::tui::widgets::{age, clip, duration, kv, num, panel, scroll_to};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, Paragraph, Row, Table, Wrap};

/// One job: label, gauge, done/total, rate, ETA, phase or result.
fn job_line<'a>(j: &JobRow, width: usize, rc: &RenderCtx) -> Line<'a> {
    let t = rc.theme;
    let now = rc.clock.now();
    let bar_w = 16usize;
    let filled = (j.ratio() * bar_w as f64).round() as usize;
    let bar = format!("{}{}", "█".repeat(filled), "░".repeat(bar_w - filled));
    let progress = match j.total {
        Some(total) => format!("{}/{}", num(j.done), num(total)),
        None => num(j.done),
    };
    let rate = j.rate(now).map(|r| format!("{}/s", num(r as u64))).unwrap_or_default();
    let eta = j.eta(now).map(|s| format!("ETA {}", duration(s))).unwrap_or_default();
    let state = match (&j.result, j.cancel_requested) {
        (None, true) => ("cancelling".to_string(), Slot::Warn),
        (None, false) => (j.phase.to_string(), Slot::Accent),
        (Some(Ok(s)), _) => (s.clone(), Slot::Ok),
        (Some(Err(e)), _) => (format!("failed: {e}"), Slot::Error),
    };
    let label = clip(&j.info.label, 44);
    let rest = width.saturating_sub(45 + bar_w + 40);
    Line::from(vec![
        Span::styled(format!("{label:<44} "), t.get(Slot::Base)),
        Span::styled(bar, t.get(Slot::Gauge)),
        Span::styled(format!(" {progress:>17} {rate:>9} {eta:>10} "), t.get(Slot::Dim)),
        Span::styled(clip(&state.0, rest.max(10)), t.get(state.1)),
    ])
}

/// A job's progress without its label, for a view that shows its own job
/// (verify): gauge, done/total, rate, ETA, then phase or outcome.
pub(super) fn progress_line<'a>(j: &JobRow, rc: &RenderCtx) -> Line<'a> {
    let t = rc.theme;
    let now = rc.clock.now();
    let bar_w = 12usize;
    let filled = (j.ratio() * bar_w as f64).round() as usize;
    let mut parts = vec![match j.total {
        Some(total) => format!("{}/{}", num(j.done), num(total)),
        None => num(j.done),
    }];
    parts.extend(j.rate(now).map(|r| format!("{}/s", num(r as u64))));
    parts.extend(j.eta(now).map(|s| format!("ETA {}", duration(s))));
    let (state, slot) = match (&j.result, j.cancel_requested) {
        (None, true) => ("cancelling".to_string(), Slot::Warn),
        (None, false) => (format!("{} · c cancels", j.phase), Slot::Accent),
        (Some(Ok(_)), _) => ("finished".to_string(), Slot::Ok),
        (Some(Err(e)), _) => (format!("failed: {e}"), Slot::Error),
    };
    Line::from(vec![
        Span::styled(format!("{:<14}", "progress"), t.get(Slot::Dim)),
        Span::styled(
            format!("{}{} ", "█".repeat(filled), "░".repeat(bar_w - filled)),
            t.get(Slot::Gauge),
        ),
        Span::styled(format!("{} · ", parts.join(" · ")), t.get(Slot::Dim)),
        Span::styled(state, t.get(slot)),
    ])
}

pub fn render(v: &mut Jobs, frame: &mut Frame, area: Rect, rc: &RenderCtx) {
    let t = rc.theme;
    let shown = rc.jobs.rows.len().min(4);
    let jobs_h = if shown == 0 { 3 } else { shown as u16 + 2 };
    let [jobs_area, rest] = Layout::vertical([Constraint::Length(jobs_h), Constraint::Min(5)]).areas(area);
    let mut lines: Vec<Line> = rc
        .jobs
        .rows
        .iter()
        .take(shown)
        .map(|j| job_line(j, jobs_area.width as usize - 2, rc))
        .collect();
    if lines.is_empty() {
        let hint = if rc.info.read_only {
            "no jobs this session (read-only: imports, purges and syncs are off)"
        } else {
            "no jobs this session · i starts an import · p purges limbo · n syncs"
        };
        lines.push(Line::from(Span::styled(hint, t.get(Slot::Dim))));
    }
    let flow = match &v.flow {
        Flow::Idle => String::new(),
        Flow::PickSchool | Flow::PickFile { .. } => " · starting an import".into(),
        Flow::Previewing { .. } => " · computing the plan (dry run)…".into(),
        Flow::Preview { .. } => " · waiting for confirmation".into(),
        Flow::PurgePreviewing { .. } => " · listing who is due (dry run)…".into(),
    };
    frame.render_widget(Paragraph::new(lines).block(panel(format!("Jobs{flow}"), t)), jobs_area);

    let (list_area, detail_area) = if v.show_detail {
        if rest.width >= 120 {
            let [a, b] = Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(rest);
            (a, Some(b))
        } else {
            let [a, b] = Layout::vertical([Constraint::Length(6), Constraint::Min(5)]).areas(rest);
            (a, Some(b))
        }
    } else {
        (rest, None)
    };
    render_history(v, frame, list_area, rc);
    if let Some(d) = detail_area {
        render_detail(v, frame, d, rc);
    }
}

fn render_history(v: &mut Jobs, frame: &mut Frame, area: Rect, rc: &RenderCtx) {
    let t = rc.theme;
    let now = rc.clock.now();
    let visible = v.visible();
    let n = visible.len();
    let height = area.height.saturating_sub(3) as usize;
    let selected = v.selected.min(n.saturating_sub(1));
    let top = scroll_to(v.top as u64, selected as u64, height as u64) as usize;
    let wide = area.width >= 110;
    let rows: Vec<Row> = visible
        .iter()
        .enumerate()
        .skip(top)
        .take(height)
        .map(|(i, r)| {
            let counts: Vec<String> = r
                .counts
                .iter()
                .filter(|(_, n)| **n > 0)
                .map(|(k, n)| format!("{k} {}", num(*n)))
                .collect();
            let mut cells = vec![
                Cell::from(r.started_at.format("%m-%d %H:%M").to_string()),
                Cell::from(r.kind.as_str()),
                Cell::from(r.school.clone().unwrap_or_else(|| "-".into())),
                Cell::from(Span::styled(status_str(r.status), t.get(status_slot(r.status)))),
                Cell::from(if r.dry_run { "dry" } else { "" }),
                Cell::from(counts.join(" · ")),
            ];
            if wide {
                cells.insert(1, Cell::from(age(now, r.started_at)));
                cells.push(Cell::from(r.user.clone()));
            }
            let style = if i == selected {
                t.get(Slot::Selected)
            } else {
                t.get(Slot::Base)
            };
            Row::new(cells).style(style)
        })
        .collect();
    let mut widths = vec![
        Constraint::Length(11),
        Constraint::Length(6),
        Constraint::Length(16),
        Constraint::Length(7),
        Constraint::Length(3),
        Constraint::Fill(1),
    ];
    let mut header = vec!["started", "kind", "school", "status", "", "counts"];
    if wide {
        widths.insert(1, Constraint::Length(5));
        header.insert(1, "age");
        widths.push(Constraint::Length(10));
        header.push("by");
    }
    let mut title = format!("Runs ({n})");
    super::push_filter(&mut title, &v.filter);
    if !v.runs_loaded {
        title.push_str(" · loading…");
    }
    let table = Table::new(rows, widths)
        .header(Row::new(header).style(t.get(Slot::Header)))
        .block(panel(title, t));
    frame.render_widget(table, area);
    v.selected = selected;
    v.top = top;
    v.height = height;
}

fn render_detail(v: &Jobs, frame: &mut Frame, area: Rect, rc: &RenderCtx) {
    let t = rc.theme;
    let tabs = [(Pane::Summary, "summary"), (Pane::Log, "log"), (Pane::Input, "input")]
        .iter()
        .map(|(p, name)| {
            if *p == v.pane {
                format!("[{name}]")
            } else {
                name.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join(" ");
    let Some(d) = &v.detail else {
        frame.render_widget(
            Paragraph::new("loading…").block(panel(format!("Run · {tabs}"), t)),
            area,
        );
        return;
    };
    let r = &d.record;
    let inner_h = area.height.saturating_sub(2) as usize;
    let lines: Vec<Line> = match v.pane {
        Pane::Summary => {
            let mut l = vec![
                kv("run", r.id.clone(), t),
                kv(
                    "kind",
                    format!("{}{}", r.kind.as_str(), if r.dry_run { " (dry run)" } else { "" }),
                    t,
                ),
                Line::from(vec![
                    Span::styled(format!("{:<14}", "status"), t.get(Slot::Dim)),
                    Span::styled(status_str(r.status), t.get(status_slot(r.status))),
                ]),
                kv("school", r.school.clone().unwrap_or_else(|| "-".into()), t),
                kv(
                    "by",
                    format!(
                        "{}{}",
                        r.user,
                        r.sudo_user.as_ref().map(|s| format!(" (sudo {s})")).unwrap_or_default()
                    ),
                    t,
                ),
                kv("started", r.started_at.format("%Y-%m-%d %H:%M:%S").to_string(), t),
                kv(
                    "took",
                    r.finished_at
                        .map(|f| duration((f - r.started_at).num_milliseconds() as f64 / 1000.0))
                        .unwrap_or_else(|| "-".into()),
                    t,
                ),
                kv("input", r.input.clone().unwrap_or_else(|| "-".into()), t),
            ];
            if let Some(m) = &r.message {
                l.push(Line::from(Span::styled(m.clone(), t.get(Slot::Warn))));
            }
            for (k, n) in &r.counts {
                l.push(kv(k, num(*n), t));
            }
            for e in r.errors.iter().take(5) {
                l.push(Line::from(Span::styled(
                    format!(
                        "line {}: {}",
                        e.line.map(|n| n.to_string()).unwrap_or_default(),
                        e.message
                    ),
                    t.get(Slot::Error),
                )));
            }
            l
        }
        Pane::Log => {
            let all: Vec<&str> = d.log.lines().collect();
            all[all.len().saturating_sub(inner_h)..]
                .iter()
                .map(|s| Line::from(Span::styled(s.to_string(), t.get(Slot::Base))))
                .collect()
        }
        Pane::Input => match &d.input {
            None => vec![Line::from(Span::styled("this run archived no input", t.get(Slot::Dim)))],
            Some(text) => text.lines().take(inner_h).map(|s| Line::from(s.to_string())).collect(),
        },
    };
    frame.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .block(panel(format!("Run · {tabs} (v)"), t)),
        area,
    );
}
