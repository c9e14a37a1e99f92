//! Secrets (the TD API key, p13n tokens): a type that never prints its value.
//!
//! `Debug` and `Display` print `<redacted>`; the raw value is reachable only through
//! [`Secret::expose`], which is called where a request header is built and nowhere else.

use std::fmt;
use std::sync::Arc;

#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(Arc<str>);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(Arc::from(value.into().trim().to_string()))
    }

    /// The raw value, for building an `Authorization` or `WP13n-Token` header.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Replaces every occurrence of this secret in `text` with `<redacted>`: a last line of
    /// defence for text that came from elsewhere (an error message echoing a header, say).
    pub fn scrub(&self, text: &str) -> String {
        if self.0.len() < 4 || !text.contains(&*self.0) {
            return text.to_string();
        }
        text.replace(&*self.0, "<redacted>")
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_prints_its_value() {
        let s = Secret::new("1/abcdef0123456789");
        assert_eq!(format!("{s}"), "<redacted>");
        assert_eq!(format!("{s:?}"), "<redacted>");
        assert_eq!(format!("{:?}", Some(s.clone())), "Some(<redacted>)");
        assert_eq!(s.expose(), "1/abcdef0123456789");
    }

    #[test]
    fn scrub_removes_the_value_from_text() {
        let s = Secret::new("1/abcdef0123456789");
        assert_eq!(
            s.scrub("header TD1 1/abcdef0123456789 refused"),
            "header TD1 <redacted> refused"
        );
    }

    #[test]
    fn trims_file_newlines() {
        assert_eq!(Secret::new("key\n").expose(), "key");
    }
}
