//! TD's default hosts, derived from a site name.
//!
//! Sources: the p13n OpenAPI's `servers` (us01, eu01, ap01) and the CDP API hosts in
//! `shared/spec/td-api.md`. Tokyo is `ap01` in the p13n docs and `jp01` for the CDP API: both
//! names are accepted for it.

/// Default hosts derived from a site name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SiteHosts {
    pub personalization: String,
    pub p13n: Option<String>,
    pub cdp_api: String,
}

pub fn site_hosts(site: &str) -> Option<SiteHosts> {
    let (p13n, cdp_api) = match site {
        "us01" => (Some("us01"), "api-cdp.treasuredata.com"),
        "jp01" | "ap01" => (Some("ap01"), "api-cdp.treasuredata.co.jp"),
        "eu01" => (Some("eu01"), "api-cdp.eu01.treasuredata.com"),
        "ap02" => (None, "api-cdp.ap02.treasuredata.com"),
        "ap03" => (Some("ap03"), "api-cdp.ap03.treasuredata.com"),
        _ => return None,
    };
    Some(SiteHosts {
        // The source design's cdp host names Tokyo jp01.
        personalization: format!(
            "https://{}.cdp.treasuredata.com",
            if site == "ap01" { "jp01" } else { site }
        ),
        p13n: p13n.map(|p| format!("https://{p}.p13n.in.treasuredata.com")),
        cdp_api: format!("https://{cdp_api}"),
    })
}
