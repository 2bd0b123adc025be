//! Property tests of the `Last-Event-ID` parser, which reads a header or query value
//! chosen by the client: it never panics; with one region it accepts exactly an optional
//! run of 1–20 ASCII digits (surrounded by whitespace) that fits a u64; with several,
//! what it formats it parses back.

use frontend::cursor::parse;
use live_proto::Regions;
use proptest::prelude::*;

fn single() -> Regions {
    Regions::single("local")
}

fn multi() -> Regions {
    Regions::new("east", &["east".into(), "west".into()]).unwrap()
}

proptest! {
    #[test]
    fn arbitrary_input_never_panics(raw in "(?s).{0,64}") {
        let _ = parse(&single(), &raw);
        let _ = parse(&multi(), &raw);
    }

    #[test]
    fn numbers_round_trip(n in any::<u64>(), pad in "[ \t]{0,3}") {
        prop_assert_eq!(parse(&single(), &format!("{pad}{n}{pad}")), Some(Some(vec![n])));
    }

    #[test]
    fn multi_region_cursors_round_trip(a in any::<u64>(), b in any::<u64>()) {
        let regions = multi();
        let raw = regions.format_cursor(&[a, b]);
        prop_assert_eq!(parse(&regions, &raw), Some(Some(vec![a, b])));
    }

    #[test]
    fn accepts_exactly_decimal_u64(raw in "[0-9+e. -]{0,24}|0{0,3}[0-9]{17,20}") {
        let trimmed = raw.trim();
        let want = if trimmed.is_empty() {
            Some(None)
        } else if trimmed.len() <= 20 && trimmed.bytes().all(|b| b.is_ascii_digit()) {
            trimmed.parse::<u64>().ok().map(|n| Some(vec![n]))
        } else {
            None
        };
        prop_assert_eq!(parse(&single(), &raw), want);
    }
}
