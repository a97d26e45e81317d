//! A multi-select picker with toggles: the admin filters a list by typing,
//! Space marks items, and the options under the list (e.g. "initial sync",
//! "force") are switched with Space too. Enter answers with the marked items
//! and the toggles' states (nothing marked: nothing happens); Esc cancels.

use super::ids::ViewId;
use super::overlay::{Answer, Outcome, Tag, edit_line};
use super::theme::{Slot, Theme};
use super::widgets::{centered, clip, panel, safe, text_width};
use crossterm::event::{KeyCode, KeyEvent};
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Paragraph};

#[derive(Clone, Debug)]
pub struct Chooser {
    pub owner: ViewId,
    pub tag: Tag,
    pub title: String,
    /// Value and a note shown after it (`assigned`…).
    pub items: Vec<(String, String)>,
    pub marked: Vec<bool>,
    /// Label and state of each option under the list.
    pub toggles: Vec<(String, bool)>,
    pub filter: String,
    /// Row under the cursor: the visible items, then the toggles.
    pub cursor: usize,
}

impl Chooser {
    pub fn new(
        owner: ViewId,
        tag: Tag,
        title: impl Into<String>,
        items: Vec<(String, String)>,
        toggles: Vec<(String, bool)>,
    ) -> Self {
        Chooser {
            owner,
            tag,
            title: title.into(),
            marked: vec![false; items.len()],
            items,
            toggles,
            filter: String::new(),
            cursor: 0,
        }
    }

    /// Marks an item up front (the row the admin was on).
    pub fn mark(&mut self, value: &str) {
        if let Some(i) = self.items.iter().position(|(v, _)| v == value) {
            self.marked[i] = true;
        }
    }

    /// Indexes of the items the filter lets through.
    pub fn visible(&self) -> Vec<usize> {
        let f = self.filter.to_lowercase();
        (0..self.items.len())
            .filter(|&i| self.items[i].0.to_lowercase().contains(&f))
            .collect()
    }

    pub fn chosen(&self) -> Vec<String> {
        self.items
            .iter()
            .zip(&self.marked)
            .filter(|(_, m)| **m)
            .map(|((v, _), _)| v.clone())
            .collect()
    }

    fn rows(&self) -> usize {
        self.visible().len() + self.toggles.len()
    }

    pub fn on_key(&mut self, k: &KeyEvent) -> Outcome {
        let visible = self.visible();
        let last = self.rows().saturating_sub(1);
        match k.code {
            KeyCode::Esc => return Outcome::Close,
            KeyCode::Enter => {
                let items = self.chosen();
                if items.is_empty() {
                    return Outcome::Keep;
                }
                let toggles = self.toggles.iter().map(|(_, on)| *on).collect();
                return Outcome::Answer(self.owner, self.tag.clone(), Answer::Chosen { items, toggles });
            }
            KeyCode::Char(' ') => match visible.get(self.cursor) {
                Some(&i) => self.marked[i] = !self.marked[i],
                None => {
                    if let Some(t) = self.toggles.get_mut(self.cursor - visible.len()) {
                        t.1 = !t.1;
                    }
                }
            },
            KeyCode::Down => self.cursor = (self.cursor + 1).min(last),
            KeyCode::Up => self.cursor = self.cursor.saturating_sub(1),
            KeyCode::Char('n') if k.modifiers.contains(crossterm::event::KeyModifiers::CONTROL) => {
                self.cursor = (self.cursor + 1).min(last)
            }
            KeyCode::Char('p') if k.modifiers.contains(crossterm::event::KeyModifiers::CONTROL) => {
                self.cursor = self.cursor.saturating_sub(1)
            }
            KeyCode::PageDown => self.cursor = (self.cursor + 10).min(last),
            KeyCode::PageUp => self.cursor = self.cursor.saturating_sub(10),
            // Between the list and the options.
            KeyCode::Tab => {
                self.cursor = if self.cursor < visible.len() {
                    visible.len().min(last)
                } else {
                    0
                }
            }
            _ => {
                if edit_line(&mut self.filter, k) {
                    self.cursor = 0;
                }
            }
        }
        Outcome::Keep
    }

    pub fn render(&self, t: &Theme, frame: &mut Frame, area: Rect) {
        let visible = self.visible();
        let w = 64.min(area.width);
        let list_room = (area.height.min(22) as usize)
            .saturating_sub(5 + self.toggles.len())
            .max(1);
        let shown = visible.len().clamp(1, list_room);
        let h = (shown + self.toggles.len() + 5) as u16;
        let r = centered(area, w, h.min(area.height));
        frame.render_widget(Clear, r);
        let mut lines = vec![Line::from(vec![
            Span::styled(" filter ", t.get(Slot::Dim)),
            Span::styled(format!("{}▏", self.filter), t.get(Slot::Input)),
        ])];
        let top = self.cursor.min(visible.len()).saturating_sub(shown.saturating_sub(1));
        let box_of = |on: bool| if on { "[x]" } else { "[ ]" };
        let style = |row: usize| {
            if row == self.cursor {
                t.get(Slot::Selected)
            } else {
                t.get(Slot::Popup)
            }
        };
        if visible.is_empty() {
            lines.push(Line::from(Span::styled(" nothing matches", t.get(Slot::Dim))));
        }
        for (row, &i) in visible.iter().enumerate().skip(top).take(shown) {
            let (value, note) = &self.items[i];
            let value = clip(&safe(value), 24);
            let pad = " ".repeat(24usize.saturating_sub(text_width(&value)));
            lines.push(Line::from(vec![
                Span::styled(format!(" {} {value}{pad} ", box_of(self.marked[i])), style(row)),
                Span::styled(clip(note, w as usize / 2), t.get(Slot::Dim)),
            ]));
        }
        lines.push(Line::from(Span::styled(" options", t.get(Slot::Header))));
        for (k, (label, on)) in self.toggles.iter().enumerate() {
            lines.push(Line::from(Span::styled(
                format!(" {} {label} ", box_of(*on)),
                style(visible.len() + k),
            )));
        }
        lines.push(Line::from(Span::styled(
            format!(
                " {} chosen · ↑↓ move · type filters · Space marks · Tab options · Enter",
                self.marked.iter().filter(|m| **m).count()
            ),
            t.get(Slot::Dim),
        )));
        frame.render_widget(
            Paragraph::new(lines)
                .style(t.get(Slot::Popup))
                .block(panel(clip(&self.title, w as usize - 4), t)),
            r,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crossterm::event::KeyModifiers;

    fn key(c: KeyCode) -> KeyEvent {
        KeyEvent::new(c, KeyModifiers::NONE)
    }

    #[test]
    fn space_marks_items_and_switches_options() {
        let items = ["a", "b", "c"].iter().map(|s| (s.to_string(), String::new())).collect();
        let mut c = Chooser::new(
            ViewId::SyncSchools,
            Tag::Quit,
            "t",
            items,
            vec![("force".into(), false)],
        );
        assert!(
            matches!(c.on_key(&key(KeyCode::Enter)), Outcome::Keep),
            "nothing marked"
        );
        c.on_key(&key(KeyCode::Char(' ')));
        c.on_key(&key(KeyCode::Down));
        c.on_key(&key(KeyCode::Down));
        c.on_key(&key(KeyCode::Char(' ')));
        c.on_key(&key(KeyCode::Tab));
        c.on_key(&key(KeyCode::Char(' ')));
        match c.on_key(&key(KeyCode::Enter)) {
            Outcome::Answer(_, _, Answer::Chosen { items, toggles }) => {
                assert_eq!(items, vec!["a", "c"]);
                assert_eq!(toggles, vec![true]);
            }
            other => panic!("{other:?}"),
        }
        // Typing filters; Space on a filtered row marks that item.
        c.on_key(&key(KeyCode::Char('b')));
        assert_eq!(c.visible(), vec![1]);
        c.on_key(&key(KeyCode::Char(' ')));
        assert_eq!(c.chosen(), vec!["a", "b", "c"]);
    }
}
