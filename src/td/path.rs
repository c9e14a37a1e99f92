//! URLs from a base and path segments, each segment percent-encoded.
//!
//! Names reach request paths from the configuration and from TD itself (discovery). A segment is
//! data, never structure: `/`, `?`, `#`, `%`, spaces and non-ASCII are encoded, and a segment that
//! is `.` or `..` has its dots encoded too. WHATWG URL parsers (browsers, many proxies) still read
//! `%2E%2E` as `..`, so such names are refused before they reach a request: [`acceptable`] is the
//! test the configuration check and discovery apply.

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

/// Everything but RFC 3986's unreserved characters (`A-Z a-z 0-9 - . _ ~`).
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// One path segment, encoded.
pub fn segment(s: &str) -> String {
    if s.is_empty() || s.chars().all(|c| c == '.') {
        // "" would merge two slashes, "." and ".." are dot-segments that servers resolve.
        return s.replace('.', "%2E");
    }
    utf8_percent_encode(s, SEGMENT).to_string()
}

/// Whether `s` can be a path segment: not empty, not `.` or `..` (also when percent-encoded), no
/// control characters. Everything else is sent encoded.
pub fn acceptable(s: &str) -> Result<(), &'static str> {
    let decoded = percent_encoding::percent_decode_str(s).decode_utf8_lossy();
    if s.is_empty() {
        Err("is empty")
    } else if decoded.chars().all(|c| c == '.') {
        Err("is a dot-segment (. or ..)")
    } else if s.chars().any(char::is_control) {
        Err("has control characters")
    } else {
        Ok(())
    }
}

/// `base` (scheme, host, optional path prefix; a trailing `/` is dropped) followed by `segments`.
pub fn join(base: &str, segments: &[&str]) -> String {
    let mut url = base.trim_end_matches('/').to_string();
    for s in segments {
        url.push('/');
        url.push_str(&segment(s));
    }
    url
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_segments_stay_segments() {
        assert_eq!(segment("product_recs"), "product_recs");
        assert_eq!(segment("a/../b"), "a%2F..%2Fb");
        assert_eq!(segment(".."), "%2E%2E");
        assert_eq!(segment("."), "%2E");
        assert_eq!(segment("x?y#z%20"), "x%3Fy%23z%2520");
        assert_eq!(segment("a b"), "a%20b");
        assert_eq!(segment("café"), "caf%C3%A9");
        assert_eq!(
            join("https://h/", &["audiences", "..", "x"]),
            "https://h/audiences/%2E%2E/x"
        );
    }

    #[test]
    fn encoded_paths_parse_to_the_same_segments() {
        for name in [
            "a/b", "a/../b", "?", "#", "%", " ", "ü", "a%2Fb", "..x", "%2E%2E/",
        ] {
            assert_eq!(acceptable(name), Ok(()));
            let u =
                url::Url::parse(&join("http://h/base", &["audiences", name, "metrics"])).unwrap();
            let segs: Vec<&str> = u.path_segments().unwrap().collect();
            assert_eq!(segs.len(), 4, "{name}: {u}");
            assert_eq!(segs[0], "base");
            assert_eq!(segs[3], "metrics");
            assert_eq!(u.query(), None);
            assert_eq!(u.fragment(), None);
            let decoded = percent_encoding::percent_decode_str(segs[2])
                .decode_utf8()
                .unwrap();
            assert_eq!(decoded, name);
        }
        for name in ["", ".", "..", "%2e%2E", "a\nb"] {
            assert!(acceptable(name).is_err(), "{name:?}");
        }
    }
}
