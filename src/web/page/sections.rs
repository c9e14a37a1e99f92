//! "Sections" on `/`: per service, where its users land — the shares of its logs window and the
//! sections its probes got — as bars ([`super::svg`]).

use maud::{html, Markup};

use super::svg::{probe_bars, share_bars};
use super::titled_table;
use crate::history::Sections;

pub(super) fn services(list: &[Sections]) -> Markup {
    if list.is_empty() {
        return html! {};
    }
    let head = [
        "Parent segment",
        "Service",
        "Logs window (share of entries)",
        "Probes (kept results)",
    ];
    let rows = html! {
        @for s in list {
            @let key = format!("{}/{}", s.parent_segment, s.service);
            tr data-service=(key) {
                td { (s.parent_segment) }
                td { (s.service) }
                td { (share_bars(&key, &s.shares)) }
                td { (probe_bars(&key, &s.probe_sections)) }
            }
        }
    };
    titled_table("Sections", "sections", &head, rows)
}
