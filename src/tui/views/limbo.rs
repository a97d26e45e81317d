//! Limbo: users waiting for their purge date, soonest first, with the time
//! left. Restore into a school (picker, then y/n), extend the purge date
//! (days, Enter confirms), purge one user now (type its name), or purge
//! everything due (handed to the jobs view: dry run, then type `purge`).
//! The restore flow is shared with the users view.

use super::users::UserTable;
use super::users_render::{Columns, render_table};
use super::{Ctx, Effect, Level, RenderCtx, View, ViewId, Watch};
use crate::model::UserState;
use crate::store::{UserQuery, UserSort};
use crate::tui::action::Action;
use crate::tui::overlay::{self, Accept, Answer, Ask, Tag};
use crate::tui::request::{Call, Data};
use ratatui::Frame;
use ratatui::layout::Rect;

/// Extending without a number typed adds this many days.
const DEFAULT_EXTEND_DAYS: u32 = 30;

/// Restoring a limbo user: fetch the schools, pick one, confirm, write.
#[derive(Default)]
pub struct RestoreFlow {
    /// The user whose restore waits for the school list.
    pending: Option<String>,
}

impl RestoreFlow {
    pub fn start(&mut self, owner: ViewId, username: String, ctx: &mut Ctx) {
        ctx.status(Level::Info, format!("restore {username}: loading schools…"));
        ctx.ask(owner, Call::SchoolNames);
        self.pending = Some(username);
    }

    /// The school list arrived (open the picker) or a write finished.
    pub fn on_reply(&mut self, owner: ViewId, result: Result<Data, String>, ctx: &mut Ctx) {
        match result {
            Ok(Data::SchoolNames(names)) => {
                if let Some(username) = self.pending.take() {
                    ctx.overlay(overlay::picker(
                        owner,
                        Tag::RestorePick {
                            username: username.clone(),
                        },
                        format!("Restore {username} into"),
                        names,
                    ));
                }
            }
            Ok(Data::Done(msg)) => ctx.status(Level::Ok, msg),
            _ => {}
        }
    }

    /// The admin picked a school or confirmed the restore.
    pub fn on_answer(&self, owner: ViewId, tag: Tag, answer: Answer, ctx: &mut Ctx) -> bool {
        match (tag, answer) {
            (Tag::RestorePick { username }, Answer::Picked(school)) => {
                ctx.confirm(
                    Action::Restore,
                    Ask {
                        owner,
                        tag: Tag::RestoreConfirm {
                            username: username.clone(),
                            school: school.clone(),
                        },
                        title: "Restore from limbo".into(),
                        lines: vec![
                            format!("Move {username} into {school} and activate it?"),
                            "Its purge date is cleared; the next import of that school keeps or drops it.".into(),
                        ],
                        word: username,
                        escalate: false,
                    },
                );
                true
            }
            (Tag::RestoreConfirm { username, school }, Answer::Yes) => {
                ctx.ask(owner, Call::Restore { username, school });
                true
            }
            _ => false,
        }
    }
}

pub struct Limbo {
    pub table: UserTable,
    restore: RestoreFlow,
}

impl Default for Limbo {
    fn default() -> Self {
        Limbo {
            table: UserTable::new(
                ViewId::Limbo,
                UserQuery {
                    state: Some(UserState::Limbo),
                    sort: UserSort::PurgeAt,
                    ..UserQuery::default()
                },
            ),
            restore: RestoreFlow::default(),
        }
    }
}

impl View for Limbo {
    fn id(&self) -> ViewId {
        ViewId::Limbo
    }

    fn load(&mut self, _ctx: &mut Ctx) {
        self.table.reload();
    }

    fn ready(&self) -> bool {
        self.table.ready()
    }

    fn watches(&self) -> Watch {
        Watch {
            directory: true,
            ..Watch::NONE
        }
    }

    fn on_action(&mut self, action: Action, ctx: &mut Ctx) -> bool {
        if self.table.navigate(action) {
            return true;
        }
        let selected = self.table.selected_row().map(|r| r.username.clone());
        match (action, selected) {
            (Action::Restore, Some(u)) => self.restore.start(ViewId::Limbo, u, ctx),
            (Action::Extend, Some(u)) => ctx.overlay(overlay::input(
                ViewId::Limbo,
                Tag::ExtendDays { username: u.clone() },
                "Extend purge date",
                format!("Keep {u} in limbo this many more days (Enter confirms, Esc cancels):"),
                DEFAULT_EXTEND_DAYS.to_string(),
                Accept::Days,
            )),
            (Action::PurgeUser, Some(u)) => ctx.confirm(
                Action::PurgeUser,
                Ask {
                    owner: ViewId::Limbo,
                    tag: Tag::PurgeUser { username: u.clone() },
                    title: "Purge now — cannot be undone".into(),
                    lines: vec![
                        format!("Delete {u} from the directory now, whatever its purge date?"),
                        "Its username is never issued again.".into(),
                    ],
                    word: u,
                    escalate: true,
                },
            ),
            (Action::Describe, Some(_)) => {
                if let Some(r) = self.table.selected_row() {
                    let row = super::users_render::user_row(r, Columns::Limbo, ctx.clock.today());
                    ctx.describe(
                        format!("Limbo user {}", r.username),
                        crate::tui::table::describe(Columns::Limbo.columns(), &row),
                    );
                }
            }
            (Action::PurgeDue, _) => ctx.effect(Effect::Forward(ViewId::Jobs, Action::PurgeDue)),
            (Action::SortNext, _) => {
                self.table.base.sort = match self.table.base.sort {
                    UserSort::PurgeAt => UserSort::Username,
                    UserSort::Username => UserSort::Lastname,
                    _ => UserSort::PurgeAt,
                };
                self.table.reset();
            }
            (Action::SortReverse, _) => {
                self.table.base.descending = !self.table.base.descending;
                self.table.reset();
            }
            (Action::Restore | Action::Extend | Action::PurgeUser | Action::Describe, None) => {
                ctx.status(Level::Warn, "no user selected")
            }
            _ => return false,
        }
        true
    }

    fn on_reply(&mut self, call: Call, result: Result<Data, String>, ctx: &mut Ctx) {
        if !self.table.on_reply(&call, &result, ctx) {
            self.restore.on_reply(ViewId::Limbo, result, ctx);
        }
    }

    fn on_answer(&mut self, tag: Tag, answer: Answer, ctx: &mut Ctx) {
        if self.restore.on_answer(ViewId::Limbo, tag.clone(), answer.clone(), ctx) {
            return;
        }
        match (tag, answer) {
            // The input only answers with a number of days ≥ 1.
            (Tag::ExtendDays { username }, Answer::Text(days)) => {
                if let Ok(days) = days.trim().parse::<u32>() {
                    ctx.ask(ViewId::Limbo, Call::Extend { username, days });
                }
            }
            (Tag::PurgeUser { username }, Answer::Yes) => ctx.ask(ViewId::Limbo, Call::PurgeUser(username)),
            _ => {}
        }
    }

    fn poll(&mut self, ctx: &mut Ctx) {
        self.table.poll(ctx);
    }

    fn click(&mut self, x: u16, y: u16, _ctx: &mut Ctx) -> bool {
        let len = self.table.rows() as usize;
        self.table.state.click(x, y, len);
        false
    }

    fn filter(&self) -> &str {
        &self.table.filter
    }

    fn set_filter(&mut self, text: String, _ctx: &mut Ctx) {
        self.table.set_filter(text);
    }

    fn render(&mut self, frame: &mut Frame, area: Rect, rc: &RenderCtx) {
        let sort = match self.table.base.sort {
            UserSort::PurgeAt => "purge date",
            UserSort::Username => "username",
            _ => "last name",
        };
        let count = match self.table.total {
            Some(c) if c.capped => format!("{}+", crate::tui::widgets::num(c.n)),
            Some(c) => crate::tui::widgets::num(c.n),
            None => "…".into(),
        };
        let mut title = format!(
            "Limbo · {count} waiting · purge after {} days · sort {sort}",
            rc.info.deletion_grace_days
        );
        if self.table.base.descending {
            title.push_str(" ↓");
        }
        super::push_filter(&mut title, &self.table.filter);
        render_table(&mut self.table, Columns::Limbo, title, frame, area, rc);
    }
}
