//! The `Last-Event-ID` of a `/v1/stream` connection: its position in every video it
//! watches, `{video}@{cursor}` joined by `,` (e.g. `v1@42,v2@east:7.west:3`, each cursor
//! as on the per-video stream). EventSource keeps only the last id it got, so every
//! comment's id carries all of them. Pure.

use std::collections::BTreeMap;

use live_proto::{Regions, VideoId};

use crate::cursor::Cursor;

/// Parses a connection's `Last-Event-ID`: `None` if malformed. Empty: no positions.
pub fn parse(regions: &Regions, raw: &str) -> Option<BTreeMap<VideoId, Cursor>> {
    let mut out = BTreeMap::new();
    for part in raw.trim().split(',').filter(|p| !p.is_empty()) {
        let (video, cursor) = part.split_once('@')?;
        let video = VideoId::parse(video).ok()?;
        let cursor = crate::cursor::parse(regions, cursor)??;
        out.insert(video, cursor);
    }
    Some(out)
}

/// The id after an event: every video's position.
pub fn format<'a>(
    regions: &Regions,
    positions: impl Iterator<Item = (&'a VideoId, &'a [u64])>,
) -> String {
    let mut out = String::new();
    for (video, cursor) in positions {
        if !out.is_empty() {
            out.push(',');
        }
        out.push_str(video.as_str());
        out.push('@');
        out.push_str(&regions.format_cursor(cursor));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(id: &str) -> VideoId {
        VideoId::parse(id).unwrap()
    }

    #[test]
    fn round_trips_every_videos_position() {
        let regions = Regions::new("east", &["east".into(), "west".into()]).unwrap();
        let positions = [(v("a"), vec![4, 0]), (v("b"), vec![7, 3])];
        let id = format(&regions, positions.iter().map(|(v, c)| (v, &c[..])));
        assert_eq!(id, "a@east:4.west:0,b@east:7.west:3");
        let parsed = parse(&regions, &id).unwrap();
        assert_eq!(parsed[&v("a")], [4, 0]);
        assert_eq!(parsed[&v("b")], [7, 3]);
    }

    #[test]
    fn single_region_and_empty() {
        let regions = Regions::single("local");
        assert_eq!(parse(&regions, "x@42").unwrap()[&v("x")], [42]);
        assert!(parse(&regions, "").unwrap().is_empty());
        assert!(parse(&regions, " ").unwrap().is_empty());
    }

    #[test]
    fn malformed_ids_are_refused() {
        let regions = Regions::single("local");
        for bad in ["42", "x@", "x@-1", "a.b@4", "@4", "x@4,y", "x@abc"] {
            assert!(parse(&regions, bad).is_none(), "{bad}");
        }
    }
}
