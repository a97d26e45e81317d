//! Draws one frame: the top bar (views, read-only badge, running jobs), the
//! current view, the footer (hints from the action table, a message, or the
//! filter being typed) and the open overlay.

use super::action::{self, Scope};
use super::app::App;
use super::overlay::{Overlay, Palette};
use super::theme::Slot;
use super::views::{Level, RenderCtx, ViewId};
use super::widgets::{centered, clip, panel};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Modifier;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Paragraph, Wrap};

pub fn render(app: &mut App, frame: &mut Frame) {
    let [top, body, foot] =
        Layout::vertical([Constraint::Length(1), Constraint::Min(1), Constraint::Length(1)]).areas(frame.area());
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
    if let Some(o) = &app.overlay {
        overlay(app, o, frame, body);
    }
}

fn top_bar(app: &App, frame: &mut Frame, area: Rect) {
    let t = &app.theme;
    let mut spans = vec![Span::styled(
        " rollcall ",
        t.get(Slot::TabActive).add_modifier(Modifier::BOLD),
    )];
    // Full titles when they fit, else short ones, else numbers only for
    // the tabs not shown (the right side keeps room for the badges).
    let label = |v: ViewId, level: u8| match level {
        _ if v == app.current => format!(" {} {} ", v.key(), v.title()),
        0 => format!(" {} {} ", v.key(), v.title()),
        1 => format!(" {} {} ", v.key(), short(v)),
        _ => format!(" {} ", v.key()),
    };
    let room = (area.width as usize).saturating_sub(10 + 24);
    let level = (0..2u8)
        .find(|l| ViewId::ALL.iter().map(|v| label(*v, *l).chars().count()).sum::<usize>() <= room)
        .unwrap_or(2);
    for v in ViewId::ALL.iter() {
        let label = label(*v, level);
        let style = if *v == app.current {
            t.get(Slot::TabActive)
        } else {
            t.get(Slot::Tab)
        };
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

fn short(v: ViewId) -> &'static str {
    match v {
        ViewId::Dashboard => "Dash",
        ViewId::Schools => "Schools",
        ViewId::Users => "Users",
        ViewId::Limbo => "Limbo",
        ViewId::Queues => "Queues",
        ViewId::Trash => "Trash",
        ViewId::Jobs => "Jobs",
        ViewId::Log => "Log",
        ViewId::Verify => "Verify",
        ViewId::SyncSchools => "Assign",
    }
}

fn footer(app: &App, frame: &mut Frame, area: Rect) {
    let t = &app.theme;
    if app.filtering.is_some() {
        let text = app.view(app.current).filter();
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
            format!(" {}", clip(text, area.width as usize - 1)),
            t.get(slot),
        ));
        frame.render_widget(Paragraph::new(line).style(t.get(Slot::Bar)), area);
        return;
    }
    let mut spans = Vec::new();
    let mut used = 0usize;
    for (key, cmd) in action::hints(app.current, app.info.read_only) {
        let w = key.chars().count() + cmd.len() + 3;
        if used + w > area.width as usize {
            break;
        }
        used += w;
        spans.push(Span::styled(format!(" {key} "), t.get(Slot::HintKey)));
        spans.push(Span::styled(format!("{cmd} "), t.get(Slot::Hint)));
    }
    frame.render_widget(Paragraph::new(Line::from(spans)).style(t.get(Slot::Bar)), area);
}

fn overlay(app: &App, o: &Overlay, frame: &mut Frame, area: Rect) {
    let t = &app.theme;
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
                    lines.push(Line::from(vec![
                        Span::styled(format!("{:>11} ", s.key_label()), t.get(Slot::Accent)),
                        Span::styled(mark, t.get(Slot::Warn)),
                        Span::styled(format!(" {}", s.help), t.get(Slot::Popup)),
                    ]));
                }
            }
            let note = if app.info.read_only {
                Span::styled(
                    format!(
                        "read-only: {} action(s) that change data are hidden",
                        action::hidden_by_read_only(*view)
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
                    .block(panel(format!("Keys · {} (Esc closes, j/k scroll)", view.title()), t)),
                r,
            );
        }
        Overlay::Palette(p) => palette(app, p, frame, area),
        Overlay::Confirm(c) => {
            let mut lines: Vec<Line> = c.lines.iter().map(|l| Line::from(l.clone())).collect();
            lines.push(Line::from(""));
            match &c.word {
                None => lines.push(Line::from(vec![
                    Span::styled(" y ", t.get(Slot::HintKey)),
                    Span::raw(" yes   "),
                    Span::styled(" n ", t.get(Slot::HintKey)),
                    Span::raw(" no / Esc"),
                ])),
                Some(word) => {
                    lines.push(Line::from(format!("Type '{word}' and press Enter (Esc cancels):")));
                    lines.push(Line::from(Span::styled(format!(" {}▏", c.typed), t.get(Slot::Input))));
                }
            }
            let w = 64.min(area.width);
            let h = (lines.len() as u16 + 4).min(area.height);
            let r = centered(area, w, h);
            frame.render_widget(Clear, r);
            let title_style = if c.danger {
                t.get(Slot::Danger)
            } else {
                t.get(Slot::Title)
            };
            let block = panel("", t).title(Span::styled(format!(" {} ", c.title), title_style));
            frame.render_widget(
                Paragraph::new(lines)
                    .wrap(Wrap { trim: false })
                    .style(t.get(Slot::Popup))
                    .block(block),
                r,
            );
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
                Span::styled(format!("{}▏", p.filter), t.get(Slot::Input)),
            ])];
            lines.push(Line::from(""));
            for (i, item) in items.iter().enumerate().skip(top).take(inner_h) {
                let style = if i == p.selected {
                    t.get(Slot::Selected)
                } else {
                    t.get(Slot::Popup)
                };
                lines.push(Line::from(Span::styled(format!(" {item} "), style)));
            }
            frame.render_widget(
                Paragraph::new(lines)
                    .style(t.get(Slot::Popup))
                    .block(panel(format!("{} ({} · Enter picks)", p.title, items.len()), t)),
                r,
            );
        }
        Overlay::Choose(c) => c.render(t, frame, area),
        Overlay::Input(i) => {
            let r = centered(area, 60.min(area.width), 5);
            frame.render_widget(Clear, r);
            let lines = vec![
                Line::from(i.prompt.clone()),
                Line::from(Span::styled(format!(" {}▏", i.value), t.get(Slot::Input))),
            ];
            frame.render_widget(
                Paragraph::new(lines)
                    .style(t.get(Slot::Popup))
                    .block(panel(&*i.title, t)),
                r,
            );
        }
    }
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
        Span::styled(format!("{}▏", p.input), t.get(Slot::Input)),
    ])];
    for (i, (name, help, _)) in c.iter().take(shown).enumerate() {
        let style = if i == p.selected {
            t.get(Slot::Selected)
        } else {
            t.get(Slot::Popup)
        };
        lines.push(Line::from(vec![
            Span::styled(format!(" {name:<12}"), style),
            Span::styled(format!(" {}", clip(help, w as usize - 17)), t.get(Slot::Dim)),
        ]));
    }
    frame.render_widget(
        Paragraph::new(lines)
            .style(t.get(Slot::Popup))
            .block(panel("Go to / run (Enter, Esc)", t)),
        r,
    );
}
