//! The resume cursor: a viewer's `Last-Event-ID`, the id of the last comment it saw.

/// Parses a `Last-Event-ID` value (a comment id: a decimal stream sequence, 1–20
/// digits). `None` for anything else; an empty value means "no cursor" and is `Some(None)`.
pub fn parse(raw: &str) -> Option<Option<u64>> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Some(None);
    }
    if raw.len() > 20 || !raw.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    raw.parse::<u64>().ok().map(Some)
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn cursors() {
        assert_eq!(parse("42"), Some(Some(42)));
        assert_eq!(parse(" 7 "), Some(Some(7)));
        assert_eq!(parse(""), Some(None));
        assert_eq!(parse("18446744073709551615"), Some(Some(u64::MAX)));
        for bad in [
            "-1",
            "1e3",
            "abc",
            "18446744073709551616",
            "99999999999999999999999",
            "4 2",
            "+3",
        ] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }
}
