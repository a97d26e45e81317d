//! Users: a virtualised table over the whole directory. Only the rows on
//! screen (plus a page either side) are ever loaded: [`UserTable`] asks the
//! engine for `UserQuery` pages by offset and limit, keeps one page request
//! in flight (the newest need wins, so fast typing never queues stale
//! queries) and drops answers of superseded filters by generation. The
//! detail pane loads the selected user on demand: its attributes, its queue
//! and trash items per authority (`y` schedules a sync), or the feed rows
//! received for it, or what each authority holds for it — looked up on the
//! targets only while that pane is shown (`v` cycles). The cursor stays on
//! its user when the rows are reloaded, even when the user's row moved (an
//! extended purge date): the engine is asked where it now stands.

use super::limbo::RestoreFlow;
use super::{Ctx, Nav, RenderCtx, View, ViewId, Watch};
use crate::engine::overview::UserRow;
use crate::engine::received::HistoryEntry;
use crate::engine::sync::UserSyncItem;
use crate::engine::sync::holdings::AuthorityHolding;
use crate::engine::users::UserDetail;
use crate::model::UserState;
use crate::store::{BoundedCount, UserQuery, UserSort};
use crate::tui::action::Action;
use crate::tui::overlay::{Answer, Ask, Tag};
use crate::tui::request::{Call, Data};
use crate::tui::table::TableState;
use ratatui::Frame;
use ratatui::layout::Rect;

/// Counting matches of a text filter stops here ("10,000+").
pub const FILTERED_COUNT_CAP: u64 = 10_000;

/// A window of rows over a user query.
pub struct UserTable {
    pub owner: ViewId,
    pub base: UserQuery,
    pub filter: String,
    generation: u64,
    pub total: Option<BoundedCount>,
    pub window_offset: u64,
    pub window: Vec<UserRow>,
    window_gen: u64,
    window_reaches_end: bool,
    page_limit: u64,
    page_inflight: bool,
    count_wanted: bool,
    count_inflight: bool,
    /// The cursor (row numbers over the whole query), its page, columns.
    pub state: TableState,
    /// After a reload: the user to keep the cursor on, not yet found.
    following: Option<String>,
    pub error: Option<String>,
}

impl UserTable {
    pub fn new(owner: ViewId, base: UserQuery) -> Self {
        UserTable {
            owner,
            base,
            filter: String::new(),
            generation: 0,
            total: None,
            window_offset: 0,
            window: Vec::new(),
            window_gen: 0,
            window_reaches_end: false,
            page_limit: 0,
            page_inflight: false,
            count_wanted: false,
            count_inflight: false,
            state: TableState::with_height(20),
            following: None,
            error: None,
        }
    }

    /// The filter as a query: `abc` is a username prefix (indexed, instant
    /// at a million users); `*abc` searches usernames, names and record uids
    /// for the substring (a full scan).
    fn query(&self) -> UserQuery {
        let mut q = self.base.clone();
        match self.filter.strip_prefix('*') {
            Some(sub) => q.text = (!sub.is_empty()).then(|| sub.to_string()),
            None => q.username_prefix = (!self.filter.is_empty()).then(|| self.filter.to_lowercase()),
        }
        q
    }

    /// A substring search: counting it would scan everything a second time,
    /// so its total comes from the pages.
    fn scans(&self) -> bool {
        self.filter.len() > 1 && self.filter.starts_with('*')
    }

    /// Starts over: new query (filter, sort, scope) from the first row.
    pub fn reset(&mut self) {
        self.generation += 1;
        self.window.clear();
        self.window_offset = 0;
        self.total = None;
        self.state.reset();
        self.following = None;
        self.count_wanted = true;
    }

    /// Reloads the same query, keeping the cursor on its user (wherever
    /// that user's row now is) and showing the old rows until the new ones
    /// arrive (after data changed).
    pub fn reload(&mut self) {
        self.generation += 1;
        self.count_wanted = true;
        self.following = self.state.key().map(str::to_string);
    }

    pub fn row(&self, i: u64) -> Option<&UserRow> {
        i.checked_sub(self.window_offset)
            .and_then(|k| self.window.get(k as usize))
    }

    pub fn selected(&self) -> u64 {
        self.state.selected as u64
    }

    pub fn selected_row(&self) -> Option<&UserRow> {
        self.row(self.selected())
    }

    fn covered(&self) -> bool {
        if self.window_gen != self.generation {
            return false;
        }
        let top = self.state.top as u64;
        let end = top + (self.state.height as u64).max(1);
        let loaded_end = self.window_offset + self.window.len() as u64;
        top >= self.window_offset && (end <= loaded_end || self.window_reaches_end)
    }

    /// Requests the page the screen needs and the count, if missing.
    pub fn poll(&mut self, ctx: &mut Ctx) {
        if self.generation == 0 {
            self.reset();
        }
        if !self.page_inflight && !self.covered() {
            let h = (self.state.height as u64).max(10);
            let offset = (self.state.top as u64).saturating_sub(h);
            let mut query = self.query();
            query.offset = offset;
            query.limit = Some(h * 3);
            self.page_inflight = true;
            self.page_limit = h * 3;
            ctx.ask(
                self.owner,
                Call::UserRows {
                    generation: self.generation,
                    query,
                },
            );
        }
        if self.count_wanted && self.scans() {
            self.count_wanted = false;
        }
        if self.count_wanted && !self.count_inflight {
            self.count_wanted = false;
            self.count_inflight = true;
            let cap = if self.filter.is_empty() {
                u64::MAX / 2
            } else {
                FILTERED_COUNT_CAP
            };
            ctx.ask(
                self.owner,
                Call::CountUsers {
                    generation: self.generation,
                    query: self.query(),
                    cap,
                },
            );
        }
    }

    /// Points the cursor at row `i` and scrolls it into view.
    fn jump(&mut self, i: u64) {
        self.state.selected = i as usize;
        let h = self.state.height.max(1);
        if self.state.selected < self.state.top || self.state.selected >= self.state.top + h {
            self.state.top = self.state.selected.saturating_sub(h / 2);
        }
    }

    /// Takes a page, count or position answer; `true` when it was one.
    pub fn on_reply(&mut self, call: &Call, result: &Result<Data, String>, ctx: &mut Ctx) -> bool {
        match result {
            Ok(Data::UserRows {
                generation,
                offset,
                rows,
            }) => {
                self.page_inflight = false;
                if *generation == self.generation {
                    self.window_offset = *offset;
                    self.window = rows.clone();
                    self.window_gen = *generation;
                    self.window_reaches_end = (rows.len() as u64) < self.page_limit;
                    self.error = None;
                    if self.scans() {
                        // Pages bound the count: exact at the end, else "N+".
                        let n = offset + rows.len() as u64;
                        self.total = Some(BoundedCount {
                            n,
                            capped: !self.window_reaches_end,
                        });
                    }
                    if let Some(name) = self.following.take() {
                        match self.window.iter().position(|r| r.username == name) {
                            Some(k) => self.jump(self.window_offset + k as u64),
                            None => ctx.ask(
                                self.owner,
                                Call::UserPosition {
                                    generation: self.generation,
                                    query: self.query(),
                                    username: name,
                                },
                            ),
                        }
                    }
                }
                true
            }
            Ok(Data::UserCount { generation, count }) => {
                self.count_inflight = false;
                if *generation == self.generation {
                    self.total = Some(*count);
                    if self.selected() >= count.n && !count.capped {
                        self.state.selected = count.n.saturating_sub(1) as usize;
                    }
                } else {
                    self.count_wanted = true;
                }
                true
            }
            Ok(Data::UserPosition { generation, row, .. }) => {
                if *generation == self.generation
                    && let Some(i) = row
                {
                    self.jump(*i);
                }
                true
            }
            Err(e) => match call {
                Call::UserRows { .. } | Call::CountUsers { .. } => {
                    self.page_inflight = false;
                    self.count_inflight = false;
                    self.error = Some(e.clone());
                    true
                }
                Call::UserPosition { .. } => true,
                _ => false,
            },
            _ => false,
        }
    }

    fn last(&self) -> u64 {
        match self.total {
            Some(t) if !t.capped => t.n.saturating_sub(1),
            // Unknown or capped: as far as the window reaches.
            _ => (self.window_offset + self.window.len() as u64).saturating_sub(1),
        }
    }

    /// Moves the selection; `true` when the action was a move.
    pub fn navigate(&mut self, action: Action) -> bool {
        let len = self.last() as usize + 1;
        let len = if matches!(action, Action::PageDown) {
            len.max(self.state.selected + 1)
        } else {
            len
        };
        self.state.navigate(action, len)
    }

    pub fn set_filter(&mut self, text: String) {
        if text != self.filter {
            self.filter = text;
            self.reset();
        }
    }

    /// The rows of the current query are in (maybe none): an action on the
    /// selected row can run. A count alone is not enough, it may answer
    /// before the page.
    pub fn ready(&self) -> bool {
        self.generation > 0 && self.window_gen == self.generation
    }

    pub fn loading(&self) -> bool {
        self.page_inflight && self.window.is_empty()
    }

    /// Rows in the table as far as known (for drawing and the cursor).
    pub fn rows(&self) -> u64 {
        match self.total {
            Some(t) => t.n.max(self.window_offset + self.window.len() as u64),
            None => self.window_offset + self.window.len() as u64,
        }
    }
}

/// What the detail pane shows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum UserPane {
    /// Attributes, schools, classes, state, the last received row.
    #[default]
    Info,
    /// The user's queue and trash items per authority.
    Sync,
    /// Every feed row received for the user.
    History,
    /// What each authority holds for the user (asked when shown).
    Authorities,
}

/// The users view: the table, sort and state filter, the detail pane.
pub struct Users {
    pub table: UserTable,
    pub show_detail: bool,
    pub detail: Option<UserDetail>,
    detail_inflight: bool,
    pub pane: UserPane,
    pub sync_items: Option<(String, Vec<UserSyncItem>)>,
    pub history: Option<(String, Vec<HistoryEntry>)>,
    pub holdings: Option<(String, Vec<AuthorityHolding>)>,
    extra_inflight: bool,
    restore: RestoreFlow,
    id: ViewId,
}

impl Users {
    pub fn new(id: ViewId) -> Self {
        Users {
            table: UserTable::new(id, UserQuery::default()),
            show_detail: false,
            detail: None,
            detail_inflight: false,
            pane: UserPane::Info,
            sync_items: None,
            history: None,
            holdings: None,
            extra_inflight: false,
            restore: RestoreFlow::default(),
            id,
        }
    }

    pub fn sort_label(&self) -> &'static str {
        match self.table.base.sort {
            UserSort::Username => "username",
            UserSort::Lastname => "last name",
            UserSort::PurgeAt => "purge date",
            UserSort::UpdatedAt => "last change",
        }
    }

    pub fn state_label(&self) -> &'static str {
        match self.table.base.state {
            None => "all",
            Some(UserState::Active) => "active",
            Some(UserState::Limbo) => "limbo",
        }
    }
}

impl View for Users {
    fn id(&self) -> ViewId {
        self.id
    }

    fn load(&mut self, _ctx: &mut Ctx) {
        self.table.reload();
        self.detail = None;
        self.sync_items = None;
        self.history = None;
        self.holdings = None;
    }

    fn ready(&self) -> bool {
        self.table.ready()
    }

    fn watches(&self) -> Watch {
        Watch {
            directory: true,
            queues: self.show_detail && self.pane == UserPane::Sync,
            ..Watch::NONE
        }
    }

    fn on_action(&mut self, action: Action, ctx: &mut Ctx) -> bool {
        if self.table.navigate(action) {
            return true;
        }
        match action {
            Action::SortNext => {
                self.table.base.sort = match self.table.base.sort {
                    UserSort::Username => UserSort::Lastname,
                    UserSort::Lastname => UserSort::UpdatedAt,
                    UserSort::UpdatedAt | UserSort::PurgeAt => UserSort::Username,
                };
                self.table.reset();
            }
            Action::SortReverse => {
                self.table.base.descending = !self.table.base.descending;
                self.table.reset();
            }
            Action::StateFilter => {
                self.table.base.state = match self.table.base.state {
                    None => Some(UserState::Active),
                    Some(UserState::Active) => Some(UserState::Limbo),
                    Some(UserState::Limbo) => None,
                };
                self.table.reset();
            }
            Action::Describe | Action::Open => self.show_detail = !self.show_detail,
            Action::NextPane => {
                if self.show_detail {
                    self.pane = match self.pane {
                        UserPane::Info => UserPane::Sync,
                        UserPane::Sync => UserPane::History,
                        UserPane::History => UserPane::Authorities,
                        UserPane::Authorities => UserPane::Info,
                    };
                } else {
                    self.show_detail = true;
                }
            }
            Action::ScheduleSync => match self.table.selected_row() {
                Some(r) => {
                    let username = r.username.clone();
                    ctx.confirm(
                        Action::ScheduleSync,
                        Ask {
                            owner: self.id,
                            tag: Tag::ScheduleUser {
                                username: username.clone(),
                            },
                            title: "Schedule sync".into(),
                            lines: vec![
                                format!("Queue {username} and its groups for every active authority?"),
                                "The sender reads the user's current state when it sends.".into(),
                            ],
                            word: username,
                            escalate: false,
                        },
                    )
                }
                None => ctx.status(super::Level::Warn, "no user selected"),
            },
            Action::Restore => match self.table.selected_row() {
                Some(r) if r.state == UserState::Limbo => {
                    let name = r.username.clone();
                    self.restore.start(self.id, name, ctx)
                }
                Some(r) => ctx.status(super::Level::Warn, format!("{} is not in limbo", r.username)),
                None => {}
            },
            Action::Back if self.show_detail => self.show_detail = false,
            Action::Back if self.table.filter.is_empty() && self.table.base.school.is_some() => {
                self.table.base.school = None;
                self.table.reset();
            }
            _ => return false,
        }
        true
    }

    fn on_reply(&mut self, call: Call, result: Result<Data, String>, ctx: &mut Ctx) {
        if self.table.on_reply(&call, &result, ctx) {
            return;
        }
        match result {
            Ok(Data::UserDetail(d)) => {
                self.detail_inflight = false;
                self.detail = Some(*d);
            }
            Err(_) if matches!(call, Call::UserDetail(_)) => self.detail_inflight = false,
            Ok(Data::UserSyncItems(name, items)) => {
                self.extra_inflight = false;
                self.sync_items = Some((name, items));
            }
            Ok(Data::UserHistory(name, h)) => {
                self.extra_inflight = false;
                self.history = Some((name, h));
            }
            Ok(Data::UserHoldings(name, h)) => {
                self.extra_inflight = false;
                self.holdings = Some((name, h));
            }
            Err(e)
                if matches!(
                    call,
                    Call::UserSyncItems(_) | Call::UserHistory(_) | Call::UserHoldings(_)
                ) =>
            {
                self.extra_inflight = false;
                match call {
                    Call::UserHistory(name) => self.history = Some((name, Vec::new())),
                    Call::UserHoldings(name) => self.holdings = Some((name, Vec::new())),
                    Call::UserSyncItems(name) => self.sync_items = Some((name, Vec::new())),
                    _ => {}
                }
                ctx.status(super::Level::Error, e);
            }
            other => self.restore.on_reply(self.id, other, ctx),
        }
    }

    fn on_answer(&mut self, tag: Tag, answer: Answer, ctx: &mut Ctx) {
        if let (Tag::ScheduleUser { username }, Answer::Yes) = (&tag, &answer) {
            ctx.ask(self.id, Call::ScheduleUser(username.clone()));
            return;
        }
        self.restore.on_answer(self.id, tag, answer, ctx);
    }

    fn poll(&mut self, ctx: &mut Ctx) {
        self.table.poll(ctx);
        if self.show_detail && !self.detail_inflight {
            let want = self.table.selected_row().map(|r| r.username.clone());
            let have = self.detail.as_ref().map(|d| d.user.username.clone());
            if let Some(name) = want
                && Some(&name) != have.as_ref()
            {
                self.detail_inflight = true;
                ctx.ask(self.id, Call::UserDetail(name));
            }
        }
        if self.show_detail
            && !self.extra_inflight
            && let Some(name) = self.table.selected_row().map(|r| r.username.clone())
        {
            let has_items = self.sync_items.as_ref().is_some_and(|(n, _)| *n == name);
            let has_history = self.history.as_ref().is_some_and(|(n, _)| *n == name);
            let has_holdings = self.holdings.as_ref().is_some_and(|(n, _)| *n == name);
            match self.pane {
                UserPane::Sync if !has_items => {
                    self.extra_inflight = true;
                    ctx.ask(self.id, Call::UserSyncItems(name));
                }
                UserPane::History if !has_history => {
                    self.extra_inflight = true;
                    ctx.ask(self.id, Call::UserHistory(name));
                }
                UserPane::Authorities if !has_holdings => {
                    self.extra_inflight = true;
                    ctx.ask(self.id, Call::UserHoldings(name));
                }
                _ => {}
            }
        }
    }

    fn navigate(&mut self, nav: Nav, _ctx: &mut Ctx) {
        let Nav::School(school) = nav;
        self.table.base.school = Some(school);
        self.table.filter.clear();
        self.table.reset();
    }

    fn click(&mut self, x: u16, y: u16, _ctx: &mut Ctx) -> bool {
        let len = self.table.rows() as usize;
        self.table.state.click(x, y, len) == Some(true)
    }

    fn filter(&self) -> &str {
        &self.table.filter
    }

    fn set_filter(&mut self, text: String, _ctx: &mut Ctx) {
        self.table.set_filter(text);
    }

    fn render(&mut self, frame: &mut Frame, area: Rect, rc: &RenderCtx) {
        super::users_render::render_users(self, frame, area, rc);
    }
}
