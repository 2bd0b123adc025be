//! The resume cursor: a viewer's `Last-Event-ID`, its position in every region's comment
//! sequence (`"42"` with one region, `"east:42.west:17"` with several).

use live_proto::Regions;

/// A position per region, in the order of `--regions`.
pub type Cursor = Vec<u64>;

/// Parses a `Last-Event-ID` value. `None` if malformed; an empty value means "no
/// cursor" and is `Some(None)`.
pub fn parse(regions: &Regions, raw: &str) -> Option<Option<Cursor>> {
    if raw.trim().is_empty() {
        return Some(None);
    }
    regions.parse_cursor(raw).map(Some)
}

#[cfg(test)]
mod tests {
    use super::parse;
    use live_proto::Regions;

    #[test]
    fn single_region_cursors() {
        let r = Regions::single("local");
        assert_eq!(parse(&r, "42"), Some(Some(vec![42])));
        assert_eq!(parse(&r, " 7 "), Some(Some(vec![7])));
        assert_eq!(parse(&r, ""), Some(None));
        assert_eq!(
            parse(&r, "18446744073709551615"),
            Some(Some(vec![u64::MAX]))
        );
        for bad in [
            "-1",
            "1e3",
            "abc",
            "18446744073709551616",
            "99999999999999999999999",
            "4 2",
            "+3",
        ] {
            assert_eq!(parse(&r, bad), None, "{bad}");
        }
    }

    #[test]
    fn multi_region_cursors() {
        let r = Regions::new("east", &["east".into(), "west".into()]).unwrap();
        assert_eq!(parse(&r, "east:4.west:9"), Some(Some(vec![4, 9])));
        assert_eq!(parse(&r, "4"), None);
    }
}
