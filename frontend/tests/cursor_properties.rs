//! Property tests of the `Last-Event-ID` parser, which reads a header or query value
//! chosen by the client: it never panics, and accepts exactly an optional run of 1–20
//! ASCII digits (surrounded by whitespace) that fits a u64.

use frontend::cursor::parse;
use proptest::prelude::*;

proptest! {
    #[test]
    fn arbitrary_input_never_panics(raw in "(?s).{0,64}") {
        let _ = parse(&raw);
    }

    #[test]
    fn numbers_round_trip(n in any::<u64>(), pad in "[ \t]{0,3}") {
        prop_assert_eq!(parse(&format!("{pad}{n}{pad}")), Some(Some(n)));
    }

    #[test]
    fn accepts_exactly_decimal_u64(raw in "[0-9+e. -]{0,24}|0{0,3}[0-9]{17,20}") {
        let trimmed = raw.trim();
        let want = if trimmed.is_empty() {
            Some(None)
        } else if trimmed.len() <= 20 && trimmed.bytes().all(|b| b.is_ascii_digit()) {
            trimmed.parse::<u64>().ok().map(Some)
        } else {
            None
        };
        prop_assert_eq!(parse(&raw), want);
    }
}
