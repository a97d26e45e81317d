//! The one table component every table view uses: the cursor (up, down,
//! one page up or down, top, bottom), columns that keep their minimum width
//! and scroll sideways (the first one stays) when they do not all fit, cells
//! cut to their column by display width with `…`, the note in the bottom
//! border (error, loading, empty) or the position, and the cursor staying on
//! the same object (by key) when the rows are reloaded. Rows come from a
//! closure asked only for the lines on screen, so a virtualised table (a
//! million users) uses it as well as one held in memory. Every cell is
//! sanitized when it is made: data never reaches the terminal raw.

use super::action::Action;
use super::theme::{Slot, Theme};
use super::widgets::{clip, panel, text_width};
use crate::model::sanitize;
use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::style::Modifier;
use ratatui::text::{Line, Span};

/// How wide a column is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Width {
    /// Exactly this many columns.
    Fixed(u16),
    /// At least `min`, at most `max`; what is left over is shared by
    /// weight.
    Fill { weight: u16, min: u16, max: u16 },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Column {
    pub title: &'static str,
    pub width: Width,
    /// Right-aligned (numbers).
    pub right: bool,
}

impl Column {
    pub const fn fixed(title: &'static str, width: u16) -> Self {
        Column {
            title,
            width: Width::Fixed(width),
            right: false,
        }
    }

    pub const fn fill(title: &'static str, weight: u16, min: u16) -> Self {
        Column {
            title,
            width: Width::Fill {
                weight,
                min,
                max: u16::MAX,
            },
            right: false,
        }
    }

    /// A fill column that grows no wider than `max`.
    pub const fn max(mut self, max: u16) -> Self {
        if let Width::Fill { weight, min, .. } = self.width {
            self.width = Width::Fill { weight, min, max };
        }
        self
    }

    pub const fn right(mut self) -> Self {
        self.right = true;
        self
    }

    fn min(&self) -> u16 {
        match self.width {
            Width::Fixed(w) => w,
            Width::Fill { min, .. } => min,
        }
    }
}

/// One cell: its text (sanitized) and an optional style.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Cell {
    pub text: String,
    pub slot: Option<Slot>,
}

impl Cell {
    pub fn new(text: impl AsRef<str>) -> Self {
        Cell {
            text: sanitize::line(text.as_ref()).into_owned(),
            slot: None,
        }
    }

    pub fn styled(text: impl AsRef<str>, slot: Slot) -> Self {
        Cell {
            slot: Some(slot),
            ..Cell::new(text)
        }
    }
}

impl From<&str> for Cell {
    fn from(s: &str) -> Self {
        Cell::new(s)
    }
}

impl From<String> for Cell {
    fn from(s: String) -> Self {
        Cell::new(s)
    }
}

/// One row: the key of its object (for the cursor to follow), its cells,
/// and a style for the whole row.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Row {
    pub key: String,
    pub cells: Vec<Cell>,
    pub slot: Option<Slot>,
}

impl Row {
    pub fn new(key: impl Into<String>, cells: Vec<Cell>) -> Self {
        Row {
            key: key.into(),
            cells,
            slot: None,
        }
    }

    pub fn slot(mut self, slot: Slot) -> Self {
        self.slot = Some(slot);
        self
    }
}

/// What the bottom border says instead of the position.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Note<'a> {
    /// The table has rows: show the position.
    Rows,
    Loading,
    Error(&'a str),
    /// No rows, and why.
    Empty(&'a str),
}

impl<'a> Note<'a> {
    /// The usual choice: the last load's error, else loading before the
    /// first answer, else `empty` when there are no rows.
    pub fn of(error: Option<&'a str>, loaded: bool, len: usize, empty: &'a str) -> Self {
        match (error, loaded) {
            (Some(e), _) => Note::Error(e),
            (None, false) => Note::Loading,
            (None, true) if len == 0 => Note::Empty(empty),
            _ => Note::Rows,
        }
    }
}

/// The cursor and scroll position of a table.
#[derive(Clone, Debug, Default)]
pub struct TableState {
    pub selected: usize,
    pub top: usize,
    /// Rows on screen at the last render (what a page is).
    pub height: usize,
    /// Columns scrolled off to the left (after the first one).
    pub hscroll: usize,
    /// Columns cut off on the right at the last render.
    pub hidden_right: usize,
    /// The key of the selected row at the last render.
    key: Option<String>,
    /// Where the table was drawn (mouse clicks).
    area: Rect,
}

impl TableState {
    /// A state that assumes `height` rows on screen until the first render.
    pub fn with_height(height: usize) -> Self {
        TableState {
            height,
            ..TableState::default()
        }
    }

    /// Moves the cursor (or the columns) for a navigation action over `len`
    /// rows; `false` when the action is not a move.
    pub fn navigate(&mut self, action: Action, len: usize) -> bool {
        let last = len.saturating_sub(1);
        let page = self.height.max(1);
        match action {
            Action::Up => self.selected = self.selected.saturating_sub(1),
            Action::Down => self.selected = (self.selected + 1).min(last),
            Action::PageUp => self.selected = self.selected.saturating_sub(page),
            Action::PageDown => self.selected = (self.selected + page).min(last),
            Action::Top => self.selected = 0,
            Action::Bottom => self.selected = last,
            Action::Left => self.hscroll = self.hscroll.saturating_sub(1),
            Action::Right => {
                if self.hidden_right > 0 {
                    self.hscroll += 1;
                }
            }
            _ => return false,
        }
        if !matches!(action, Action::Left | Action::Right) {
            self.key = None;
        }
        true
    }

    /// The key of the row the cursor was on at the last render.
    pub fn key(&self) -> Option<&str> {
        self.key.as_deref()
    }

    /// Points the cursor at the row with this key (when it is shown).
    pub fn select_key(&mut self, key: &str) {
        self.key = Some(key.to_string());
    }

    /// After the rows changed (reload, filter): keeps the cursor on the
    /// object it was on when that object is still there, else on the same
    /// row number within `keys`.
    pub fn follow<'a>(&mut self, keys: impl Iterator<Item = &'a str>) {
        let mut len = 0;
        let mut found = None;
        for (i, k) in keys.enumerate() {
            len = i + 1;
            if found.is_none() && self.key.as_deref() == Some(k) {
                found = Some(i);
            }
        }
        match found {
            Some(i) => self.selected = i,
            None => self.selected = self.selected.min(len.saturating_sub(1)),
        }
    }

    /// The row under a screen position (a mouse click), if any.
    pub fn row_at_point(&self, x: u16, y: u16, len: usize) -> Option<usize> {
        let a = self.area;
        let first = a.y + 2;
        if x <= a.x || x + 1 >= a.x + a.width || y < first || y >= first + self.height as u16 {
            return None;
        }
        let i = self.top + (y - first) as usize;
        (i < len).then_some(i)
    }

    /// Selects the row under a click; `Some(true)` when it was already
    /// selected (a second click: open it), `None` when no row is there.
    pub fn click(&mut self, x: u16, y: u16, len: usize) -> Option<bool> {
        let i = self.row_at_point(x, y, len)?;
        let again = i == self.selected;
        self.selected = i;
        self.key = None;
        Some(again)
    }

    /// Back to the first row (a new filter or sort).
    pub fn reset(&mut self) {
        self.selected = 0;
        self.top = 0;
        self.key = None;
    }
}

/// What to draw.
pub struct TableSpec<'a> {
    pub title: String,
    pub columns: &'a [Column],
    pub len: usize,
    pub note: Note<'a>,
    /// Shown before the position in the bottom border (e.g. `Enter inspects`).
    pub hint: Option<&'a str>,
    /// Whether the cursor is shown as the focus (two tables in one view).
    pub focused: bool,
}

/// Column widths for `width` terminal columns: the first column always,
/// then from `hscroll` on as many as fit at their minimum; what is left is
/// shared by the fill columns. Returns (column index, width) and how many
/// columns were cut off on the right.
pub fn layout(columns: &[Column], width: u16, hscroll: usize) -> (Vec<(usize, u16)>, usize) {
    if columns.is_empty() {
        return (Vec::new(), 0);
    }
    let order = std::iter::once(0).chain((1 + hscroll.min(columns.len().saturating_sub(1)))..columns.len());
    let mut shown: Vec<(usize, u16)> = Vec::new();
    let mut used = 0u16;
    let mut hidden = 0;
    for i in order {
        let spacing = u16::from(!shown.is_empty());
        let min = columns[i].min();
        if hidden == 0 && used + spacing + min <= width {
            used += spacing + min;
            shown.push((i, min));
        } else if shown.is_empty() {
            used = width;
            shown.push((i, width));
        } else {
            hidden += 1;
        }
    }
    let mut left = width.saturating_sub(used);
    // Share what is left by weight, columns at their maximum dropping out.
    loop {
        let open: Vec<usize> = (0..shown.len())
            .filter(|&k| match columns[shown[k].0].width {
                Width::Fill { max, .. } => shown[k].1 < max,
                Width::Fixed(_) => false,
            })
            .collect();
        let weights: u16 = open
            .iter()
            .map(|&k| match columns[shown[k].0].width {
                Width::Fill { weight, .. } => weight,
                Width::Fixed(_) => 0,
            })
            .sum();
        if left == 0 || weights == 0 {
            break;
        }
        let total = left;
        for (n, &k) in open.iter().enumerate() {
            let Width::Fill { weight, max, .. } = columns[shown[k].0].width else {
                continue;
            };
            let share = if n + 1 == open.len() {
                left
            } else {
                (total * weight / weights).min(left)
            };
            let grow = share.min(max - shown[k].1);
            shown[k].1 += grow;
            left -= grow;
        }
        if left == total {
            break;
        }
    }
    (shown, hidden)
}

/// Cuts or pads a cell's text to `w` display columns.
fn fit(text: &str, w: u16, right: bool) -> String {
    let cut = clip(text, w as usize);
    let pad = (w as usize).saturating_sub(text_width(&cut));
    if right {
        format!("{}{cut}", " ".repeat(pad))
    } else {
        cut
    }
}

/// Draws the table; asks `row_at` only for the rows on screen.
pub fn render(
    state: &mut TableState,
    spec: TableSpec,
    row_at: &mut dyn FnMut(usize) -> Option<Row>,
    frame: &mut Frame,
    area: Rect,
    theme: &Theme,
) {
    let inner_w = area.width.saturating_sub(2);
    state.area = area;
    state.height = area.height.saturating_sub(3) as usize;
    state.selected = state.selected.min(spec.len.saturating_sub(1));
    let h = state.height.max(1);
    if state.selected < state.top {
        state.top = state.selected;
    } else if state.selected >= state.top + h {
        state.top = state.selected + 1 - h;
    }
    state.top = state.top.min(spec.len.saturating_sub(h));
    let (mut widths, mut hidden) = layout(spec.columns, inner_w, state.hscroll);
    // Scrolled further than needed (the terminal grew): scroll back.
    while state.hscroll > 0 && hidden == 0 {
        let (w2, h2) = layout(spec.columns, inner_w, state.hscroll - 1);
        if h2 > 0 {
            break;
        }
        state.hscroll -= 1;
        (widths, hidden) = (w2, h2);
    }
    state.hidden_right = hidden;
    let header = ratatui::widgets::Row::new(
        widths
            .iter()
            .map(|(i, w)| fit(spec.columns[*i].title, *w, spec.columns[*i].right))
            .collect::<Vec<_>>(),
    )
    .style(theme.get(Slot::Header));
    let selected_style = if spec.focused {
        theme.get(Slot::Selected)
    } else {
        theme.get(Slot::Selected).add_modifier(Modifier::DIM)
    };
    let mut rows = Vec::with_capacity(state.height);
    for i in state.top..(state.top + state.height).min(spec.len) {
        let Some(r) = row_at(i) else { continue };
        if i == state.selected {
            state.key = Some(r.key.clone());
        }
        let cells: Vec<ratatui::widgets::Cell> = widths
            .iter()
            .map(|(c, w)| {
                let col = &spec.columns[*c];
                let cell = r.cells.get(*c).cloned().unwrap_or_default();
                let text = fit(&cell.text, *w, col.right);
                match cell.slot {
                    Some(slot) if i != state.selected => {
                        ratatui::widgets::Cell::from(Span::styled(text, theme.get(slot)))
                    }
                    _ => ratatui::widgets::Cell::from(text),
                }
            })
            .collect();
        let style = if i == state.selected {
            selected_style
        } else {
            theme.get(r.slot.unwrap_or(Slot::Base))
        };
        rows.push(ratatui::widgets::Row::new(cells).style(style));
    }
    let mut block = panel(spec.title, theme);
    match spec.note {
        Note::Rows => {
            let mut pos = String::from(" ");
            if let Some(hint) = spec.hint {
                pos.push_str(hint);
                pos.push_str(" · ");
            }
            pos.push_str(&format!(
                "{} of {} ",
                super::widgets::num(state.selected as u64 + 1),
                super::widgets::num(spec.len as u64)
            ));
            block = block.title_bottom(Line::from(Span::styled(pos, theme.get(Slot::Dim))).right_aligned());
        }
        Note::Loading => {
            block = block.title_bottom(Line::from(Span::styled(" loading… ", theme.get(Slot::Dim))));
        }
        Note::Error(e) => {
            let e = clip(&sanitize::line(e), (area.width as usize).saturating_sub(4));
            block = block.title_bottom(Line::from(Span::styled(format!(" {e} "), theme.get(Slot::Error))));
        }
        Note::Empty(msg) => {
            block = block.title_bottom(Line::from(Span::styled(format!(" {msg} "), theme.get(Slot::Dim))));
        }
    }
    if hidden > 0 || state.hscroll > 0 {
        let text = match (state.hscroll > 0, hidden > 0) {
            (true, true) => format!(" ← {} · {} more → ", state.hscroll, hidden),
            (true, false) => format!(" ← {} more ", state.hscroll),
            _ => format!(" {hidden} more column{} → ", if hidden == 1 { "" } else { "s" }),
        };
        block = block.title(Line::from(Span::styled(text, theme.get(Slot::Dim))).right_aligned());
    }
    let table = ratatui::widgets::Table::new(rows, widths.iter().map(|(_, w)| Constraint::Length(*w)))
        .column_spacing(1)
        .header(header)
        .block(block);
    frame.render_widget(table, area);
}

/// The selected row's cells under their column titles, full length (for a
/// describe popup).
pub fn describe(columns: &[Column], row: &Row) -> Vec<(String, String)> {
    columns
        .iter()
        .zip(&row.cells)
        .filter(|(c, _)| !c.title.trim().is_empty())
        .map(|(c, cell)| (c.title.trim().to_string(), cell.text.clone()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const COLS: [Column; 4] = [
        Column::fixed("a", 10),
        Column::fill("b", 2, 8),
        Column::fixed("c", 6),
        Column::fill("d", 1, 8),
    ];

    #[test]
    fn columns_fill_the_width_and_scroll_when_they_do_not_fit() {
        let (w, hidden) = layout(&COLS, 60, 0);
        assert_eq!(hidden, 0);
        let total: u16 = w.iter().map(|(_, w)| *w).sum::<u16>() + 3;
        assert_eq!(total, 60);
        assert_eq!(w[0], (0, 10));
        assert_eq!(w[2], (2, 6));
        // 30 wide: a, b and c fit at their minimum; d is cut off.
        let (w, hidden) = layout(&COLS, 30, 0);
        assert_eq!(w.iter().map(|(i, _)| *i).collect::<Vec<_>>(), vec![0, 1, 2]);
        assert_eq!(hidden, 1);
        // Scrolled by one: a stays, c and d come in.
        let (w, hidden) = layout(&COLS, 30, 1);
        assert_eq!(w.iter().map(|(i, _)| *i).collect::<Vec<_>>(), vec![0, 2, 3]);
        assert_eq!(hidden, 0);
    }

    #[test]
    fn cells_are_cut_with_an_ellipsis_by_display_width() {
        assert_eq!(fit("2,000", 4, true), "2,0…");
        assert_eq!(fit("日本語テキスト", 7, false), "日本語…");
        assert_eq!(text_width(&fit("日本語テキスト", 7, false)), 7);
        assert_eq!(fit("12", 5, true), "   12");
        assert_eq!(Cell::new("a\u{1b}[2Jb").text, "a\\x1b[2Jb");
    }

    #[test]
    fn page_keys_move_one_page_and_the_cursor_follows_its_object() {
        let mut s = TableState {
            height: 10,
            ..TableState::default()
        };
        s.navigate(Action::PageDown, 100);
        assert_eq!(s.selected, 10);
        s.navigate(Action::PageDown, 100);
        s.navigate(Action::PageUp, 100);
        assert_eq!(s.selected, 10);
        s.navigate(Action::Bottom, 100);
        assert_eq!(s.selected, 99);
        s.selected = 2;
        s.select_key("c");
        s.follow(["x", "a", "b", "c"].into_iter());
        assert_eq!(s.selected, 3, "the same object, one row further down");
        s.select_key("gone");
        s.follow(["x", "a"].into_iter());
        assert_eq!(s.selected, 1, "clamped when the object is gone");
    }
}
