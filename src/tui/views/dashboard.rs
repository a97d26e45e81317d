//! Dashboard: the district at a glance — schools, users by state and role,
//! limbo and the next purges, the last runs, this session's jobs — and the
//! sync: per authority its queue depth, oldest item, trash and whether it is
//! paused.

use super::{Ctx, RenderCtx, View, ViewId, Watch};
use crate::engine::overview::Overview;
use crate::engine::runs::RunStatus;
use crate::tui::action::Action;
use crate::tui::request::{Call, Data};
use crate::tui::theme::Slot;
use crate::tui::widgets::{clip, days_left, kv, num, panel, plural, safe};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

#[derive(Default)]
pub struct Dashboard {
    data: Option<Overview>,
    /// Arrives after the overview (a pass over every membership).
    roles: Option<Vec<(crate::model::Role, u64)>>,
    queues: Option<Vec<crate::engine::sync::QueueStatus>>,
    error: Option<String>,
    filter: String,
}

pub fn status_slot(s: RunStatus) -> Slot {
    match s {
        RunStatus::Ok => Slot::Ok,
        RunStatus::Running => Slot::Accent,
        RunStatus::Refused | RunStatus::Cancelled => Slot::Warn,
        RunStatus::Failed | RunStatus::Interrupted => Slot::Error,
    }
}

pub fn status_str(s: RunStatus) -> &'static str {
    s.as_str()
}

impl View for Dashboard {
    fn id(&self) -> ViewId {
        ViewId::Dashboard
    }

    fn load(&mut self, ctx: &mut Ctx) {
        ctx.ask(ViewId::Dashboard, Call::Overview);
        // Queue counts are cheap; role counts pass over every membership.
        ctx.ask(ViewId::Dashboard, Call::QueueList);
        ctx.ask(ViewId::Dashboard, Call::RoleCounts);
    }

    fn ready(&self) -> bool {
        self.data.is_some() || self.error.is_some()
    }

    fn watches(&self) -> Watch {
        Watch {
            directory: true,
            queues: true,
            runs: true,
            state: true,
        }
    }

    fn on_action(&mut self, action: Action, ctx: &mut Ctx) -> bool {
        match action {
            Action::NewImport | Action::PurgeDue => ctx.effect(super::Effect::Forward(ViewId::Jobs, action)),
            _ => return false,
        }
        true
    }

    fn on_reply(&mut self, _call: Call, result: Result<Data, String>, _ctx: &mut Ctx) {
        match result {
            Ok(Data::Overview(o)) => {
                self.data = Some(*o);
                self.error = None;
            }
            Ok(Data::RoleCounts(r)) => self.roles = Some(r),
            Ok(Data::Queues(q)) => self.queues = Some(q),
            Ok(_) => {}
            Err(e) => self.error = Some(e),
        }
    }

    fn filter(&self) -> &str {
        &self.filter
    }

    /// Filters the runs panel by kind, school or status.
    fn set_filter(&mut self, text: String, _ctx: &mut Ctx) {
        self.filter = text;
    }

    fn render(&mut self, frame: &mut Frame, area: Rect, rc: &RenderCtx) {
        let t = rc.theme;
        let Some(o) = &self.data else {
            let msg = self.error.as_deref().map(safe).unwrap_or_else(|| "loading…".into());
            frame.render_widget(Paragraph::new(msg).block(panel("Dashboard", t)), area);
            return;
        };
        let today = rc.clock.today();
        let wide = area.width >= 120;
        let [upper, lower] = Layout::vertical([Constraint::Length(9), Constraint::Min(4)]).areas(area);
        let cols: [Rect; 3] = Layout::horizontal([
            Constraint::Percentage(if wide { 30 } else { 34 }),
            Constraint::Percentage(33),
            Constraint::Percentage(if wide { 37 } else { 33 }),
        ])
        .areas(upper);

        let directory = vec![
            kv("schools", num(o.schools), t),
            kv("users", num(o.users), t),
            Line::from(vec![
                Span::styled(format!("{:<14}", "active"), t.get(Slot::Dim)),
                Span::styled(num(o.active), t.get(Slot::Active)),
            ]),
            Line::from(vec![
                Span::styled(format!("{:<14}", "in limbo"), t.get(Slot::Dim)),
                Span::styled(num(o.limbo), t.get(Slot::Limbo)),
            ]),
            kv("today", today.to_string(), t),
            Line::from(Span::styled(
                if o.read_only { "read-only mode" } else { "" },
                t.get(Slot::Warn),
            )),
        ];
        let mut directory = directory;
        if !o.stale_schools.is_empty() {
            // Feeds that stopped arriving (import.stale_after_days).
            directory.push(Line::from(Span::styled(
                format!("stale feeds: {}", o.stale_schools.len()),
                t.get(Slot::Warn),
            )));
        }
        if let Some(l) = &o.listener {
            // The LDAP change listener: connected, and how far behind.
            let (text, slot) = match (l.connected, l.lag_seconds) {
                (true, Some(lag)) => (format!("following · lag {lag:.1} s"), Slot::Ok),
                (true, None) => ("following".to_string(), Slot::Ok),
                (false, _) if l.running => ("not connected".to_string(), Slot::Error),
                (false, _) => ("listener stopped".to_string(), Slot::Warn),
            };
            directory.push(Line::from(vec![
                Span::styled(format!("{:<14}", "changes"), t.get(Slot::Dim)),
                Span::styled(text, t.get(slot)),
            ]));
        }
        frame.render_widget(Paragraph::new(directory).block(panel("Directory", t)), cols[0]);

        let roles: Vec<Line> = match &self.roles {
            Some(roles) => roles
                .iter()
                .map(|(r, n)| kv(r.as_str(), num(*n), t))
                .chain([Line::from(Span::styled("memberships, all schools", t.get(Slot::Dim)))])
                .collect(),
            None => vec![Line::from(Span::styled("counting…", t.get(Slot::Dim)))],
        };
        frame.render_widget(Paragraph::new(roles).block(panel("Users by role", t)), cols[1]);

        let mut limbo = vec![Line::from(vec![
            Span::styled(format!("{} in limbo", num(o.limbo)), t.get(Slot::Limbo)),
            Span::styled(
                if o.purge_due > 0 {
                    format!(" · {} due now", num(o.purge_due))
                } else {
                    String::new()
                },
                t.get(Slot::Warn),
            ),
        ])];
        if o.next_purges.is_empty() {
            limbo.push(Line::from(Span::styled("no purges scheduled", t.get(Slot::Dim))));
        }
        for (day, n) in &o.next_purges {
            limbo.push(Line::from(vec![
                Span::styled(format!("{day} "), t.get(Slot::Base)),
                Span::styled(format!("{:>10} ", days_left(today, *day)), t.get(Slot::Dim)),
                Span::styled(format!("{:>12}", plural(*n, "user", "users")), t.get(Slot::Base)),
            ]));
        }
        frame.render_widget(Paragraph::new(limbo).block(panel("Limbo · next purges", t)), cols[2]);

        let n_auth = self.queues.as_ref().map(|q| q.len().max(1)).unwrap_or(1) as u16;
        let [runs_area, side] = if wide {
            Layout::horizontal([Constraint::Percentage(55), Constraint::Percentage(45)]).areas(lower)
        } else {
            Layout::vertical([Constraint::Min(4), Constraint::Length(n_auth + 3)]).areas(lower)
        };
        let f = self.filter.to_lowercase();
        let mut runs = Vec::new();
        for r in o.last_runs.iter().filter(|r| {
            f.is_empty()
                || r.kind.as_str().contains(&f)
                || r.school.as_deref().unwrap_or("").contains(&f)
                || status_str(r.status).contains(&f)
        }) {
            let counts: Vec<String> = r
                .counts
                .iter()
                .filter(|(_, v)| **v > 0)
                .map(|(k, v)| format!("{k} {v}"))
                .collect();
            runs.push(Line::from(vec![
                Span::styled(format!("{} ", r.started_at.format("%m-%d %H:%M")), t.get(Slot::Dim)),
                Span::styled(format!("{:<7}", r.kind.as_str()), t.get(Slot::Accent)),
                Span::styled(
                    format!("{:<16} ", clip(&safe(r.school.as_deref().unwrap_or("-")), 16)),
                    t.get(Slot::Base),
                ),
                Span::styled(format!("{:<10}", status_str(r.status)), t.get(status_slot(r.status))),
                Span::styled(if r.dry_run { "dry " } else { "" }, t.get(Slot::Dim)),
                Span::styled(counts.join(" · "), t.get(Slot::Dim)),
            ]));
        }
        if runs.is_empty() {
            runs.push(Line::from(Span::styled("no runs yet", t.get(Slot::Dim))));
        }
        let title = if self.filter.is_empty() {
            "Last runs".to_string()
        } else {
            format!("Last runs /{}", safe(&self.filter))
        };
        frame.render_widget(Paragraph::new(runs).block(panel(title, t)), runs_area);

        let mut sync = Vec::new();
        let running = rc.jobs.running();
        sync.push(Line::from(vec![
            Span::styled("jobs: ", t.get(Slot::Dim)),
            Span::styled(
                if running > 0 {
                    format!("{running} running ({} opens)", ViewId::Jobs.key())
                } else {
                    "none running".into()
                },
                if running > 0 {
                    t.get(Slot::Warn)
                } else {
                    t.get(Slot::Base)
                },
            ),
        ]));
        let now = rc.clock.now();
        match &self.queues {
            None => sync.push(Line::from(Span::styled("queues: loading…", t.get(Slot::Dim)))),
            Some(qs) if qs.is_empty() => sync.push(Line::from(Span::styled(
                "no authorities configured: nothing is synced",
                t.get(Slot::Dim),
            ))),
            Some(qs) => {
                for q in qs {
                    let (state, slot) = super::queues::state_label(q);
                    sync.push(Line::from(vec![
                        Span::styled(format!("{:<14} ", clip(&safe(&q.authority), 14)), t.get(Slot::Accent)),
                        Span::styled(format!("{:>7} queued ", num(q.depth)), t.get(Slot::Base)),
                        Span::styled(
                            format!("oldest {:<4} ", super::queues::ago(now, q.oldest_item_at)),
                            t.get(Slot::Dim),
                        ),
                        Span::styled(
                            format!("trash {:<4} ", num(q.trash)),
                            if q.trash > 0 {
                                t.get(Slot::Warn)
                            } else {
                                t.get(Slot::Dim)
                            },
                        ),
                        Span::styled(if state == "active" { "" } else { state }, t.get(slot)),
                    ]));
                }
            }
        }
        frame.render_widget(
            Paragraph::new(sync).block(panel("Jobs · Sync (keys: 5 queues, 6 trash)", t)),
            side,
        );
    }
}
