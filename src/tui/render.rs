//! Draws one frame: the top bar (views, read-only badge, running jobs), the
//! current view, the footer (hints from the keymap, a message, or the
//! filter being typed) and the open overlay — or, below 80×24, a notice
//! that the terminal is too small. Records where tabs and dialog buttons
//! are, for the mouse. Whatever a view drew, no character a terminal would
//! obey leaves the frame: a last pass over the buffer replaces any with `?`.

use super::action::{self, Scope};
use super::app::{App, Hit};
use super::ids::{Level, ViewId};
use super::overlay::{Describe, Overlay, Palette};
use super::theme::Slot;
use super::views::RenderCtx;
use super::widgets::{centered, clip, panel, safe, text_width};
use crate::model::sanitize;
use crossterm::event::KeyCode;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Modifier;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Paragraph, Wrap};

/// The smallest terminal the console lays out for.
pub const MIN_WIDTH: u16 = 80;
pub const MIN_HEIGHT: u16 = 24;

pub fn render(app: &mut App, frame: &mut Frame) {
    app.hits.clear();
    let area = frame.area();
    if area.width < MIN_WIDTH || area.height < MIN_HEIGHT {
        too_small(app, frame, area);
        scrub(frame);
        return;
    }
    let [top, body, foot] =
        Layout::vertical([Constraint::Length(1), Constraint::Min(1), Constraint::Length(1)]).areas(area);
    app.body = body;
    top_bar(app, frame, top);
    let current = app.current;
    {
        let theme = app.theme.clone();
        let info = app.info.clone();
        let jobs = app.jobs.clone();
        let clock = app.clock;
        let rc = RenderCtx {
            theme: &theme,
            clock: &clock,
            info: &info,
            jobs: &jobs,
        };
        app.view_mut(current).render(frame, body, &rc);
    }
    footer(app, frame, foot);
    if let Some(o) = app.overlay.take() {
        overlay(app, &o, frame, body);
        app.overlay = Some(o);
    }
    scrub(frame);
}

/// The safety net: a cell holding a control character or bidi override
/// (none should get here: data is sanitized where it is drawn) shows `?`.
fn scrub(frame: &mut Frame) {
    for cell in frame.buffer_mut().content.iter_mut() {
        if cell.symbol().chars().any(sanitize::is_unsafe) {
            cell.set_symbol("?");
        }
    }
}

fn too_small(app: &App, frame: &mut Frame, area: Rect) {
    let t = &app.theme;
    let lines = vec![
        Line::from(Span::styled("terminal too small", t.get(Slot::Warn))),
        Line::from(Span::styled(
            format!("{}×{}, needs {MIN_WIDTH}×{MIN_HEIGHT}", area.width, area.height),
            t.get(Slot::Base),
        )),
        Line::from(Span::styled("enlarge it, or q quits", t.get(Slot::Dim))),
    ];
    let r = centered(area, area.width, 3);
    frame.render_widget(
        Paragraph::new(lines)
            .alignment(ratatui::layout::Alignment::Center)
            .wrap(Wrap { trim: true }),
        r,
    );
}

fn top_bar(app: &mut App, frame: &mut Frame, area: Rect) {
    let t = app.theme.clone();
    let mut spans = vec![Span::styled(
        " rollcall ",
        t.get(Slot::TabActive).add_modifier(Modifier::BOLD),
    )];
    // Full titles when they fit, else short ones, else numbers only for
    // the tabs not shown (the right side keeps room for the badges).
    let current = app.current;
    let label = |v: ViewId, level: u8| match level {
        _ if v == current => format!(" {} {} ", v.key(), v.title()),
        0 => format!(" {} {} ", v.key(), v.title()),
        1 => format!(" {} {} ", v.key(), v.short()),
        _ => format!(" {} ", v.key()),
    };
    let room = (area.width as usize).saturating_sub(10 + 24);
    let level = (0..2u8)
        .find(|l| ViewId::ALL.iter().map(|v| text_width(&label(*v, *l))).sum::<usize>() <= room)
        .unwrap_or(2);
    let mut x = area.x + 10;
    for v in ViewId::ALL.iter() {
        let label = label(*v, level);
        let w = text_width(&label) as u16;
        let style = if *v == current {
            t.get(Slot::TabActive)
        } else {
            t.get(Slot::Tab)
        };
        app.hits.push(Hit {
            area: Rect::new(x, area.y, w, 1),
            key: KeyCode::Char(v.key()),
        });
        x += w;
        spans.push(Span::styled(label, style));
    }
    let mut right = Vec::new();
    let running = app.jobs.running();
    if running > 0 {
        right.push(Span::styled(
            format!(" ⟳ {running} job{} ", if running == 1 { "" } else { "s" }),
            t.get(Slot::Warn),
        ));
    }
    if app.info.read_only {
        right.push(Span::styled(" READ-ONLY ", t.get(Slot::Danger)));
    }
    frame.render_widget(Paragraph::new(Line::from(spans)).style(t.get(Slot::Bar)), area);
    let rw: u16 = right.iter().map(|s| s.width() as u16).sum();
    if rw > 0 && rw < area.width {
        let r = Rect::new(area.x + area.width - rw, area.y, rw, 1);
        frame.render_widget(Paragraph::new(Line::from(right)).style(t.get(Slot::Bar)), r);
    }
}

fn footer(app: &App, frame: &mut Frame, area: Rect) {
    let t = &app.theme;
    if app.filtering.is_some() {
        let text = safe(app.view(app.current).filter());
        let line = Line::from(vec![
            Span::styled(" / ", t.get(Slot::HintKey)),
            Span::styled(format!(" {text}▏"), t.get(Slot::Input)),
            Span::styled("  Enter keep · Esc clear", t.get(Slot::Dim)),
        ]);
        frame.render_widget(Paragraph::new(line).style(t.get(Slot::Bar)), area);
        return;
    }
    if let Some((level, text, _)) = &app.status {
        let slot = match level {
            Level::Info => Slot::Hint,
            Level::Ok => Slot::Ok,
            Level::Warn => Slot::Warn,
            Level::Error => Slot::Error,
        };
        let line = Line::from(Span::styled(
            format!(" {}", clip(&safe(text), (area.width as usize).saturating_sub(1))),
            t.get(slot),
        ));
        frame.render_widget(Paragraph::new(line).style(t.get(Slot::Bar)), area);
        return;
    }
    let mut spans = Vec::new();
    let mut used = 0usize;
    for (key, cmd) in app.keymap.hints(app.current, app.info.read_only) {
        let w = text_width(&key) + cmd.len() + 3;
        if used + w > area.width as usize {
            break;
        }
        used += w;
        spans.push(Span::styled(format!(" {key} "), t.get(Slot::HintKey)));
        spans.push(Span::styled(format!("{cmd} "), t.get(Slot::Hint)));
    }
    frame.render_widget(Paragraph::new(Line::from(spans)).style(t.get(Slot::Bar)), area);
}

/// Lines of text wrapped at word boundaries to `width`: how many rows
/// they take (as the paragraph's word wrap lays them out).
pub(super) fn wrapped_rows(lines: &[Line], width: u16) -> u16 {
    let w = width.max(1) as usize;
    let mut rows = 0usize;
    for l in lines {
        let text: String = l.spans.iter().map(|s| s.content.as_ref()).collect();
        let mut line = 0usize;
        let mut n = 1usize;
        for word in text.split(' ') {
            let ww = text_width(word);
            let need = if line == 0 { ww } else { line + 1 + ww };
            if need <= w {
                line = need;
            } else if ww <= w {
                n += 1;
                line = ww;
            } else {
                // A word longer than a row starts a row of its own and is
                // broken across as many as it needs.
                if line > 0 {
                    n += 1;
                }
                n += ww.div_ceil(w) - 1;
                line = match ww % w {
                    0 => w,
                    r => r,
                };
            }
        }
        rows += n;
    }
    rows as u16
}

fn overlay(app: &mut App, o: &Overlay, frame: &mut Frame, area: Rect) {
    let t = app.theme.clone();
    match o {
        Overlay::Help { view, scroll } => {
            let mut lines = vec![];
            for (title, local) in [("This view", true), ("Everywhere", false)] {
                lines.push(Line::from(Span::styled(title, t.get(Slot::Header))));
                for s in action::offered(*view, app.info.read_only) {
                    if matches!(s.scope, Scope::Views(_)) != local {
                        continue;
                    }
                    let mark = if s.destructive { "!" } else { " " };
                    let room = (78.min(area.width) as usize).saturating_sub(16);
                    lines.push(Line::from(vec![
                        Span::styled(format!("{:>11} ", app.keymap.label(s)), t.get(Slot::Accent)),
                        Span::styled(mark, t.get(Slot::Warn)),
                        Span::styled(format!(" {}", clip(s.help, room)), t.get(Slot::Popup)),
                    ]));
                }
            }
            let note = if app.info.read_only {
                Span::styled(
                    format!(
                        "read-only: {} that change data are hidden",
                        super::widgets::plural(action::hidden_by_read_only(*view) as u64, "action", "actions")
                    ),
                    t.get(Slot::Warn),
                )
            } else {
                Span::styled(
                    "! changes data: confirmed first, hidden in --read-only",
                    t.get(Slot::Dim),
                )
            };
            lines.insert(0, Line::from(note));
            let h = (lines.len() as u16 + 2).min(area.height);
            let r = centered(area, 78.min(area.width), h);
            frame.render_widget(Clear, r);
            frame.render_widget(
                Paragraph::new(lines)
                    .scroll((*scroll, 0))
                    .style(t.get(Slot::Popup))
                    .block(panel(format!("Keys · {} (Esc closes, j/k scroll)", view.title()), &t)),
                r,
            );
        }
        Overlay::Palette(p) => palette(app, p, frame, area),
        Overlay::Confirm(c) => {
            // The question wraps; the answer line is always shown below it.
            let w = 64.min(area.width);
            let inner = w.saturating_sub(2);
            let body: Vec<Line> = c.lines.iter().map(|l| Line::from(safe(l))).collect();
            let answer_rows: u16 = if c.word.is_some() { 2 } else { 1 };
            let max_body = area.height.saturating_sub(answer_rows + 3);
            let body_rows = wrapped_rows(&body, inner).min(max_body);
            let h = body_rows + answer_rows + 3;
            let r = centered(area, w, h);
            frame.render_widget(Clear, r);
            let title_style = if c.danger {
                t.get(Slot::Danger)
            } else {
                t.get(Slot::Title)
            };
            let block = ratatui::widgets::Block::default()
                .borders(ratatui::widgets::Borders::ALL)
                .border_type(ratatui::widgets::BorderType::Rounded)
                .border_style(t.get(Slot::Border))
                .title(Span::styled(format!(" {} ", safe(&c.title)), title_style));
            let inside = block.inner(r);
            frame.render_widget(block.style(t.get(Slot::Popup)), r);
            let [text_area, _, answer_area] = Layout::vertical([
                Constraint::Length(body_rows),
                Constraint::Length(1),
                Constraint::Length(answer_rows),
            ])
            .areas(inside);
            frame.render_widget(
                Paragraph::new(body)
                    .wrap(Wrap { trim: false })
                    .style(t.get(Slot::Popup)),
                text_area,
            );
            let answer = match &c.word {
                None => {
                    let x = answer_area.x;
                    app.hits.push(Hit {
                        area: Rect::new(x, answer_area.y, 8, 1),
                        key: KeyCode::Char('y'),
                    });
                    app.hits.push(Hit {
                        area: Rect::new(x + 9, answer_area.y, 14, 1),
                        key: KeyCode::Char('n'),
                    });
                    vec![Line::from(vec![
                        Span::styled(" y ", t.get(Slot::HintKey)),
                        Span::raw(" yes   "),
                        Span::styled(" n ", t.get(Slot::HintKey)),
                        Span::raw(" no / Esc"),
                    ])]
                }
                Some(word) => vec![
                    Line::from(format!("Type '{}' and press Enter (Esc cancels):", safe(word))),
                    Line::from(Span::styled(format!(" {}▏", safe(&c.typed)), t.get(Slot::Input))),
                ],
            };
            frame.render_widget(Paragraph::new(answer).style(t.get(Slot::Popup)), answer_area);
        }
        Overlay::Picker(p) => {
            let items = p.visible();
            let h = (items.len() as u16 + 4).clamp(6, area.height.min(20));
            let r = centered(area, 60.min(area.width), h);
            frame.render_widget(Clear, r);
            let inner_h = h.saturating_sub(4) as usize;
            let top = p.selected.saturating_sub(inner_h.saturating_sub(1));
            let mut lines = vec![Line::from(vec![
                Span::styled(" filter ", t.get(Slot::Dim)),
                Span::styled(format!("{}▏", safe(&p.filter)), t.get(Slot::Input)),
                Span::styled("  ↑↓ move · type filters", t.get(Slot::Dim)),
            ])];
            lines.push(Line::from(""));
            for (i, item) in items.iter().enumerate().skip(top).take(inner_h) {
                let style = if i == p.selected {
                    t.get(Slot::Selected)
                } else {
                    t.get(Slot::Popup)
                };
                lines.push(Line::from(Span::styled(format!(" {} ", clip(&safe(item), 56)), style)));
            }
            frame.render_widget(
                Paragraph::new(lines)
                    .style(t.get(Slot::Popup))
                    .block(panel(format!("{} ({} · Enter picks)", safe(&p.title), items.len()), &t)),
                r,
            );
        }
        Overlay::Choose(c) => c.render(&t, frame, area),
        Overlay::Input(i) => {
            let r = centered(area, 60.min(area.width), if i.error.is_some() { 6 } else { 5 });
            frame.render_widget(Clear, r);
            let mut lines = vec![
                Line::from(safe(&i.prompt)),
                Line::from(Span::styled(format!(" {}▏", safe(&i.value)), t.get(Slot::Input))),
            ];
            if let Some(e) = &i.error {
                lines.push(Line::from(Span::styled(safe(e), t.get(Slot::Error))));
            }
            frame.render_widget(
                Paragraph::new(lines)
                    .wrap(Wrap { trim: false })
                    .style(t.get(Slot::Popup))
                    .block(panel(&*i.title, &t)),
                r,
            );
        }
        Overlay::Describe(d) => describe(&t, d, frame, area),
    }
}

/// Every field of a row, each value wrapped under its label.
fn describe(t: &super::theme::Theme, d: &Describe, frame: &mut Frame, area: Rect) {
    let w = area.width.saturating_sub(4).min(100);
    let mut lines = Vec::new();
    for (label, value) in &d.fields {
        lines.push(Line::from(Span::styled(safe(label), t.get(Slot::Accent))));
        let text = sanitize::text(value);
        for l in text.lines() {
            lines.push(Line::from(Span::styled(format!("  {}", safe(l)), t.get(Slot::Popup))));
        }
        if text.is_empty() {
            lines.push(Line::from(Span::styled("  -", t.get(Slot::Dim))));
        }
    }
    let rows = wrapped_rows(&lines, w.saturating_sub(2));
    let h = (rows + 2).min(area.height);
    let r = centered(area, w, h);
    frame.render_widget(Clear, r);
    frame.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .scroll((d.scroll, 0))
            .style(t.get(Slot::Popup))
            .block(
                panel(safe(&d.title), t).title_bottom(
                    Line::from(Span::styled(" Esc closes · j/k scroll ", t.get(Slot::Dim))).right_aligned(),
                ),
            ),
        r,
    );
}

fn palette(app: &App, p: &Palette, frame: &mut Frame, area: Rect) {
    let t = &app.theme;
    let c = p.candidates();
    let shown = c.len().min(10);
    let h = shown as u16 + 3;
    let w = 64.min(area.width);
    let r = Rect::new(area.x + (area.width - w) / 2, area.y + 1, w, h.min(area.height));
    frame.render_widget(Clear, r);
    let mut lines = vec![Line::from(vec![
        Span::styled(":", t.get(Slot::Accent)),
        Span::styled(format!("{}▏", safe(&p.input)), t.get(Slot::Input)),
    ])];
    for (i, (name, help, _)) in c.iter().take(shown).enumerate() {
        let style = if i == p.selected {
            t.get(Slot::Selected)
        } else {
            t.get(Slot::Popup)
        };
        lines.push(Line::from(vec![
            Span::styled(format!(" {name:<12}"), style),
            Span::styled(
                format!(" {}", clip(help, (w as usize).saturating_sub(17))),
                t.get(Slot::Dim),
            ),
        ]));
    }
    frame.render_widget(
        Paragraph::new(lines)
            .style(t.get(Slot::Popup))
            .block(panel("Go to / run (↑↓, Enter, Esc)", t)),
        r,
    );
}
