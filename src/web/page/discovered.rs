//! "Discovered in TD" on `/`: per discovering parent segment, the services TD lists that no
//! configured service covers.

use maud::{html, Markup};

use crate::poll::discovery::Coverage;

pub(super) fn inventory(inv: &[(String, Coverage)]) -> Markup {
    if inv.is_empty() {
        return html! {};
    }
    html! {
        h2 { "Discovered in TD" }
        table id="inventory" {
            thead {
                tr {
                    th { "Parent segment" } th { "Covered" }
                    th { "Not covered by any configured service" } th { "Ignored" } th { "Refused" }
                }
            }
            tbody {
                @for (ps, c) in inv {
                    tr.fail[!c.not_covered.is_empty()] {
                        td { (ps) }
                        td { (c.covered.len()) }
                        td {
                            @if c.not_covered.is_empty() {
                                "none"
                            } @else {
                                (c.not_covered.len()) ": " (c.not_covered.join(", "))
                            }
                        }
                        td { (c.ignored.len()) }
                        td { (c.refused) }
                    }
                }
            }
        }
    }
}
