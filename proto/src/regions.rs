//! Regions: the one a service runs in and all regions of the supercluster, and the ids
//! that depend on them.
//!
//! Each region stores the comments and likes it accepts in its own streams, so comment
//! sequences are per region. With one region, a comment id is its sequence (`"42"`); with
//! several, it names its region (`"east:42"`).

use std::fmt;

use crate::InvalidInput;

/// A region's name: `^[A-Za-z0-9-]{1,32}$` (no `_`, which separates it in stream names).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Region(String);

impl Region {
    pub fn parse(s: &str) -> Result<Self, InvalidInput> {
        if s.is_empty()
            || s.len() > 32
            || !s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return Err(InvalidInput(format!(
                "region {s:?} must be 1 to 32 of A-Z, a-z, 0-9 and '-'"
            )));
        }
        Ok(Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The service's own region and every region of the deployment, in a fixed order that
/// every service shares (the order of `--regions`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Regions {
    all: Vec<Region>,
    own: usize,
}

impl Regions {
    /// `own` must be one of `all`; an empty `all` means just `own`.
    pub fn new(own: &str, all: &[String]) -> Result<Self, InvalidInput> {
        let own = Region::parse(own)?;
        let all: Vec<Region> = if all.is_empty() {
            vec![own.clone()]
        } else {
            all.iter()
                .map(|r| Region::parse(r))
                .collect::<Result<_, _>>()?
        };
        let mut sorted = all.clone();
        sorted.sort();
        sorted.dedup();
        if sorted.len() != all.len() {
            return Err(InvalidInput("--regions lists a region twice".into()));
        }
        let own = all
            .iter()
            .position(|r| *r == own)
            .ok_or_else(|| InvalidInput(format!("--region {own} is not in --regions")))?;
        Ok(Regions { all, own })
    }

    /// One region, named `name` (tests, single-region deployments).
    pub fn single(name: &str) -> Self {
        Self::new(name, &[]).expect("valid region name")
    }

    pub fn own(&self) -> &Region {
        &self.all[self.own]
    }

    pub fn own_index(&self) -> usize {
        self.own
    }

    pub fn all(&self) -> &[Region] {
        &self.all
    }

    pub fn len(&self) -> usize {
        self.all.len()
    }

    pub fn is_empty(&self) -> bool {
        self.all.is_empty()
    }

    pub fn is_multi(&self) -> bool {
        self.all.len() > 1
    }

    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.all.iter().position(|r| r.as_str() == name)
    }

    /// A comment's id: `"42"` with one region, `"east:42"` with several.
    pub fn comment_id(&self, region: usize, seq: u64) -> String {
        if self.is_multi() {
            format!("{}:{seq}", self.all[region])
        } else {
            seq.to_string()
        }
    }

    /// Parses a comment id made by [`comment_id`](Self::comment_id) into its region and
    /// sequence; `None` if malformed, naming an unknown region, or sequence 0.
    pub fn parse_comment_id(&self, raw: &str) -> Option<(usize, u64)> {
        let (region, seq) = if self.is_multi() {
            let (name, seq) = raw.split_once(':')?;
            (self.index_of(name)?, seq)
        } else {
            (0, raw)
        };
        if seq.is_empty() || seq.len() > 20 || !seq.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let seq: u64 = seq.parse().ok()?;
        (seq > 0).then_some((region, seq))
    }

    /// Formats a position per region (a resume cursor): `"42"` with one region,
    /// `"east:42.west:17"` with several.
    pub fn format_cursor(&self, positions: &[u64]) -> String {
        if !self.is_multi() {
            return positions.first().copied().unwrap_or(0).to_string();
        }
        let mut out = String::new();
        for (region, seq) in self.all.iter().zip(positions) {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(region.as_str());
            out.push(':');
            out.push_str(&seq.to_string());
        }
        out
    }

    /// Parses a cursor made by [`format_cursor`](Self::format_cursor); regions it does
    /// not name are at 0. `None` if malformed or naming an unknown region.
    pub fn parse_cursor(&self, raw: &str) -> Option<Vec<u64>> {
        fn seq(s: &str) -> Option<u64> {
            if s.is_empty() || s.len() > 20 || !s.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            s.parse().ok()
        }
        let raw = raw.trim();
        let mut positions = vec![0; self.all.len()];
        if !self.is_multi() {
            positions[0] = seq(raw)?;
            return Some(positions);
        }
        for part in raw.split('.') {
            let (region, n) = part.split_once(':')?;
            let i = self.index_of(region)?;
            positions[i] = seq(n)?;
        }
        Some(positions)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_region_ids_are_plain_sequences() {
        let r = Regions::single("local");
        assert_eq!(r.comment_id(0, 42), "42");
        assert_eq!(r.format_cursor(&[42]), "42");
        assert_eq!(r.parse_cursor("42"), Some(vec![42]));
        assert_eq!(r.parse_cursor("local:42"), None);
        assert_eq!(r.parse_cursor("-1"), None);
    }

    #[test]
    fn multi_region_cursors_round_trip() {
        let r = Regions::new("west", &["east".into(), "west".into()]).unwrap();
        assert_eq!(r.own_index(), 1);
        assert_eq!(r.comment_id(0, 7), "east:7");
        let c = r.format_cursor(&[42, 17]);
        assert_eq!(c, "east:42.west:17");
        assert_eq!(r.parse_cursor(&c), Some(vec![42, 17]));
        assert_eq!(r.parse_cursor("west:3"), Some(vec![0, 3]));
        for bad in ["42", "north:1", "east:", "east:x", "east:1,west:2", ""] {
            assert_eq!(r.parse_cursor(bad), None, "{bad}");
        }
    }

    #[test]
    fn comment_ids_round_trip() {
        let one = Regions::single("local");
        assert_eq!(one.parse_comment_id("42"), Some((0, 42)));
        let two = Regions::new("west", &["east".into(), "west".into()]).unwrap();
        assert_eq!(two.parse_comment_id(&two.comment_id(1, 9)), Some((1, 9)));
        for bad in [
            "",
            "0",
            "-1",
            "4 2",
            "local:4",
            "+4",
            "99999999999999999999999",
        ] {
            assert_eq!(one.parse_comment_id(bad), None, "{bad}");
        }
        for bad in ["42", "north:1", "east:", "east:0", "east:1:2", "east:x"] {
            assert_eq!(two.parse_comment_id(bad), None, "{bad}");
        }
    }

    #[test]
    fn regions_are_checked() {
        assert!(Regions::new("north", &["east".into()]).is_err());
        assert!(Regions::new("east", &["east".into(), "east".into()]).is_err());
        assert!(Region::parse("a_b").is_err());
        assert!(Region::parse("a.b").is_err());
    }
}
