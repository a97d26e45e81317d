//! The users view's "authorities" pane: what each authority whose schools
//! include the selected user holds for it — present, missing, differing
//! (field by field against what would be sent now), or the error that kept
//! the console from asking. The engine looks the user up on the targets
//! only while this pane is shown.

use super::RenderCtx;
use super::users::UserPane;
use super::users_render::pane_title;
use crate::engine::sync::holdings::{AuthorityHolding, Holding, short_value};
use crate::tui::theme::Slot;
use crate::tui::widgets::safe;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};

fn slot(h: Holding) -> Slot {
    match h {
        Holding::Present | Holding::Absent => Slot::Ok,
        Holding::Missing | Holding::Differs | Holding::Unexpected => Slot::Warn,
        Holding::Error => Slot::Error,
    }
}

/// The lines of the pane (`None`: still asking).
pub fn holding_lines<'a>(held: Option<&[AuthorityHolding]>, rc: &RenderCtx) -> Vec<Line<'a>> {
    let t = rc.theme;
    let mut lines = Vec::new();
    let Some(held) = held else {
        lines.push(Line::from(Span::styled(
            "asking the authorities… (each answers on its own)",
            t.get(Slot::Dim),
        )));
        return lines;
    };
    if held.is_empty() {
        lines.push(Line::from(Span::styled(
            "no active authority syncs this user's schools",
            t.get(Slot::Dim),
        )));
        return lines;
    }
    for h in held {
        lines.push(Line::from(vec![
            Span::styled(format!("{:<14} ", safe(&h.authority)), t.get(Slot::Accent)),
            Span::styled(format!("{:<8} ", h.kind), t.get(Slot::Dim)),
            Span::styled(format!("{:<10} ", h.holding.as_str()), t.get(slot(h.holding))),
            Span::styled(format!("expected {}", h.expected), t.get(Slot::Dim)),
        ]));
        if let Some(id) = &h.id {
            lines.push(Line::from(Span::styled(format!("  id {}", safe(id)), t.get(Slot::Dim))));
        }
        for d in &h.differences {
            lines.push(Line::from(vec![
                Span::styled(format!("  {:<16} ", safe(&d.attribute)), t.get(Slot::Base)),
                Span::styled(safe(&short_value(&d.actual)), t.get(Slot::DiffOld)),
                Span::styled(" → ", t.get(Slot::Dim)),
                Span::styled(safe(&short_value(&d.expected)), t.get(Slot::DiffNew)),
            ]));
        }
        if let Some(e) = &h.error {
            lines.push(Line::from(Span::styled(format!("  {}", safe(e)), t.get(Slot::Error))));
        }
    }
    lines.push(Line::from(""));
    let mut hint = "held → would be sent · ^r asks again".to_string();
    if !rc.info.read_only {
        hint.push_str(" · y schedules a sync");
    }
    lines.push(Line::from(Span::styled(hint, t.get(Slot::Dim))));
    lines
}

pub fn render_holdings(user: &str, held: Option<&[AuthorityHolding]>, frame: &mut Frame, area: Rect, rc: &RenderCtx) {
    frame.render_widget(
        Paragraph::new(holding_lines(held, rc))
            .wrap(Wrap { trim: false })
            .block(crate::tui::widgets::panel(
                pane_title(user, UserPane::Authorities),
                rc.theme,
            )),
        area,
    );
}
