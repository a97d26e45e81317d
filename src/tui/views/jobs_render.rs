//! Drawing the jobs view: this session's jobs (a table with a cursor: state,
//! progress, done/total, rate, ETA, outcome), the run history, and a run's
//! detail panes (summary, log, the archived input as text).

use super::RenderCtx;
use super::dashboard::{status_slot, status_str};
use super::jobs::{Flow, Focus, Jobs, Pane};
use crate::engine::runs::RunRecord;
use crate::tui::jobboard::{JobRow, JobState};
use crate::tui::table::{self, Cell, Column, Note, Row, TableSpec};
use crate::tui::theme::Slot;
use crate::tui::widgets::{age, duration, kv, num, panel, safe};
use chrono::{DateTime, Utc};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};

const JOB_COLUMNS: [Column; 6] = [
    Column::fixed("state", 10),
    Column::fill("job", 2, 22),
    Column::fixed("done/total", 15).right(),
    Column::fill("outcome", 1, 16),
    Column::fixed("progress", 10),
    Column::fixed("rate · ETA", 16),
];

const RUN_COLUMNS: [Column; 8] = [
    Column::fixed("started", 11),
    Column::fixed("kind", 6),
    Column::fill("school", 1, 12),
    Column::fixed("status", 11),
    Column::fixed("dry", 3),
    Column::fill("counts", 3, 14),
    Column::fixed("age", 5),
    Column::fixed("by", 10),
];

fn state_slot(s: &JobState) -> Slot {
    match s {
        JobState::Running => Slot::Accent,
        JobState::Cancelling | JobState::Cancelled(_) => Slot::Warn,
        JobState::Done(_) => Slot::Ok,
        JobState::Failed(_) => Slot::Error,
    }
}

fn job_row(j: &JobRow, now: DateTime<Utc>) -> Row {
    let bar_w = 10usize;
    let filled = (j.ratio() * bar_w as f64).round() as usize;
    let bar = format!("{}{}", "█".repeat(filled), "░".repeat(bar_w - filled));
    let progress = match j.total {
        Some(total) => format!("{}/{}", num(j.done), num(total)),
        None => num(j.done),
    };
    let mut speed = j.rate(now).map(|r| format!("{}/s", num(r as u64))).unwrap_or_default();
    if let Some(eta) = j.eta(now) {
        speed.push_str(&format!(" ETA {}", duration(eta)));
    }
    let outcome = match &j.state {
        JobState::Running | JobState::Cancelling => j.phase.to_string(),
        other => other.detail().unwrap_or("").to_string(),
    };
    Row::new(
        j.info.id.to_string(),
        vec![
            Cell::styled(j.state.word(), state_slot(&j.state)),
            Cell::new(&j.info.label),
            Cell::new(progress),
            Cell::styled(outcome, state_slot(&j.state)),
            Cell::styled(bar, Slot::Gauge),
            Cell::new(speed),
        ],
    )
}

fn run_row(r: &RunRecord, now: DateTime<Utc>) -> Row {
    let counts: Vec<String> = r
        .counts
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|(k, n)| format!("{k} {}", num(*n)))
        .collect();
    Row::new(
        r.id.clone(),
        vec![
            Cell::new(r.started_at.format("%m-%d %H:%M").to_string()),
            Cell::new(r.kind.as_str()),
            Cell::new(r.school.as_deref().unwrap_or("-")),
            Cell::styled(status_str(r.status), status_slot(r.status)),
            Cell::new(if r.dry_run { "dry" } else { "" }),
            Cell::new(counts.join(" · ")),
            Cell::new(age(now, r.started_at)),
            Cell::new(&r.user),
        ],
    )
}

/// A job's progress without its label, for a view that shows its own job
/// (verify): gauge, done/total, rate, ETA, then state or outcome.
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
    let state = match &j.state {
        JobState::Running => format!("{} · c cancels", j.phase),
        JobState::Done(_) => "finished".to_string(),
        JobState::Failed(e) => format!("failed: {}", safe(e)),
        other => other.word().to_string(),
    };
    Line::from(vec![
        Span::styled(format!("{:<14}", "progress"), t.get(Slot::Dim)),
        Span::styled(
            format!("{}{} ", "█".repeat(filled), "░".repeat(bar_w - filled)),
            t.get(Slot::Gauge),
        ),
        Span::styled(format!("{} · ", parts.join(" · ")), t.get(Slot::Dim)),
        Span::styled(state, t.get(state_slot(&j.state))),
    ])
}

pub fn render(v: &mut Jobs, frame: &mut Frame, area: Rect, rc: &RenderCtx) {
    let now = rc.clock.now();
    let rows = rc.jobs.rows.len();
    let jobs_h = (rows.clamp(1, 5) + 3) as u16;
    let [jobs_area, rest] = Layout::vertical([Constraint::Length(jobs_h), Constraint::Min(5)]).areas(area);
    let flow = match &v.flow {
        Flow::Idle => String::new(),
        Flow::PickSchool | Flow::PickFile { .. } => " · starting an import".into(),
        Flow::Previewing { .. } => " · computing the plan (dry run)…".into(),
        Flow::Preview { .. } => " · waiting for confirmation".into(),
        Flow::PurgePreviewing { .. } => " · listing who is due (dry run)…".into(),
    };
    let empty = if rc.info.read_only {
        "no jobs this session (read-only: imports, purges and syncs are off)"
    } else {
        "no jobs this session · i imports · p purges limbo · n syncs"
    };
    let spec = TableSpec {
        title: format!("Jobs{flow}"),
        columns: &JOB_COLUMNS,
        len: rows,
        note: if rows == 0 { Note::Empty(empty) } else { Note::Rows },
        hint: Some(if v.focus == Focus::Jobs {
            "c cancels · w: runs"
        } else {
            "w: jobs"
        }),
        focused: v.focus == Focus::Jobs,
    };
    table::render(
        &mut v.jobs_table,
        spec,
        &mut |i| rc.jobs.rows.get(i).map(|j| job_row(j, now)),
        frame,
        jobs_area,
        rc.theme,
    );

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
    let now = rc.clock.now();
    let mut state = std::mem::take(&mut v.runs_table);
    let visible = v.visible();
    let n = visible.len();
    let mut title = format!("Runs ({n})");
    super::push_filter(&mut title, &v.filter);
    let spec = TableSpec {
        title,
        columns: &RUN_COLUMNS,
        len: n,
        note: Note::of(v.error.as_deref(), v.runs_loaded, n, "no runs yet"),
        hint: Some("Enter: detail"),
        focused: v.focus == Focus::Runs,
    };
    table::render(
        &mut state,
        spec,
        &mut |i| visible.get(i).map(|r| run_row(r, now)),
        frame,
        area,
        rc.theme,
    );
    drop(visible);
    v.runs_table = state;
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
                l.push(Line::from(Span::styled(safe(m), t.get(Slot::Warn))));
            }
            for (k, n) in &r.counts {
                l.push(kv(k, num(*n), t));
            }
            for e in r.errors.iter().take(5) {
                l.push(Line::from(Span::styled(
                    format!(
                        "line {}: {}",
                        e.line.map(|n| n.to_string()).unwrap_or_default(),
                        safe(&e.message)
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
                .map(|s| Line::from(Span::styled(safe(s), t.get(Slot::Base))))
                .collect()
        }
        Pane::Input => match &d.input {
            None => vec![Line::from(Span::styled("this run archived no input", t.get(Slot::Dim)))],
            Some(text) => text.lines().take(inner_h).map(|s| Line::from(safe(s))).collect(),
        },
    };
    frame.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .block(panel(format!("Run · {tabs} (v)"), t)),
        area,
    );
}
