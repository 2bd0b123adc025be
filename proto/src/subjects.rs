//! NATS subject and stream names. The table is in `proto/README.md`.
//!
//! Subjects are built only from a [`VideoId`] and a [`Region`], both validated, so a
//! user-supplied string can never add a token or a wildcard.

use crate::VideoId;
use crate::regions::Region;

/// The region's stream of accepted comments (`store.v1.{region}.*.comment`).
pub fn comments_stream(region: &Region) -> String {
    format!("COMMENTS_{region}")
}

/// The region's counter stream of likes totals (`likes.v1.{region}.*`).
pub fn likes_stream(region: &Region) -> String {
    format!("LIKES_{region}")
}

/// A mirror, kept in region `here`, of region `origin`'s stream `stream`
/// (e.g. `COMMENTS_east_west`): same subjects, same sequences.
pub fn mirror_stream(stream: &str, here: &Region) -> String {
    format!("{stream}_{here}")
}

/// The stream to read region `origin`'s data from, in region `here`: its own stream, or
/// the local mirror of it.
pub fn readable_stream(stream: String, origin: &Region, here: &Region) -> String {
    if origin == here {
        stream
    } else {
        mirror_stream(&stream, here)
    }
}

/// The value stored in a counter stream message (`{"val":"123"}`); `None` if it is not
/// one.
pub fn counter_value(payload: &[u8]) -> Option<u64> {
    let text = std::str::from_utf8(payload).ok()?;
    let rest = text.split_once("\"val\"")?.1.trim_start();
    let rest = rest.strip_prefix(':')?.trim_start().strip_prefix('"')?;
    rest.split_once('"')?.0.parse().ok()
}

/// Subjects of a region's COMMENTS stream.
pub fn store_comments_all(region: &Region) -> String {
    format!("store.v1.{region}.*.comment")
}

/// Subjects of a region's LIKES stream.
pub fn likes_all(region: &Region) -> String {
    format!("likes.v1.{region}.*")
}

/// Republish mapping of a region's COMMENTS stream: stored → live.
pub fn republish(region: &Region) -> (String, String) {
    (
        format!("store.v1.{region}.>"),
        format!("live.v1.{region}.>"),
    )
}

/// Everything ingest clients may publish (the publishers' queue subscription).
pub const INGEST_ALL: &str = "ingest.v1.*.*";
/// Queue group of the publishers on [`INGEST_ALL`]; with gateways, the local region's
/// publishers answer first.
pub const INGEST_QUEUE: &str = "publisher";

/// Where a region's publisher stores a comment.
pub fn store_comment(region: &Region, video: &VideoId) -> String {
    format!("store.v1.{region}.{video}.comment")
}

/// The video's counter in a region's LIKES stream.
pub fn likes_counter(region: &Region, video: &VideoId) -> String {
    format!("likes.v1.{region}.{video}")
}

/// Everything live about one video from every region: a frontend's single
/// subscription per video.
pub fn live_all(video: &VideoId) -> String {
    format!("live.v1.*.{video}.*")
}

/// Stored comments as republished by JetStream.
pub fn live_comment(region: &Region, video: &VideoId) -> String {
    format!("live.v1.{region}.{video}.comment")
}

/// Coalesced likes.
pub fn live_likes(region: &Region, video: &VideoId) -> String {
    format!("live.v1.{region}.{video}.likes")
}

/// Frontends' viewer counts.
pub fn live_presence(region: &Region, video: &VideoId) -> String {
    format!("live.v1.{region}.{video}.presence")
}

/// Ingest of likes (request-reply, answered with `IngestReply`).
pub fn ingest_like(video: &VideoId) -> String {
    format!("ingest.v1.{video}.like")
}

/// Ingest of comments (request-reply, answered with `IngestReply`).
pub fn ingest_comment(video: &VideoId) -> String {
    format!("ingest.v1.{video}.comment")
}

/// What arrives on a `live.v1.*.{video}.*` subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LiveKind {
    Comment,
    Likes,
    Presence,
}

/// What an ingest subject asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IngestKind {
    Like,
    Comment,
}

/// Splits `live.v1.{region}.{video}.{kind}` into `(region, video, kind)`.
pub fn parse_live(subject: &str) -> Option<(&str, &str, LiveKind)> {
    let rest = subject.strip_prefix("live.v1.")?;
    let (region, rest) = rest.split_once('.')?;
    let (video, kind) = rest.split_once('.')?;
    let kind = match kind {
        "comment" => LiveKind::Comment,
        "likes" => LiveKind::Likes,
        "presence" => LiveKind::Presence,
        _ => return None,
    };
    Some((region, video, kind))
}

/// Splits `ingest.v1.{video}.{like|comment}` and validates the video token.
pub fn parse_ingest(subject: &str) -> Option<(VideoId, IngestKind)> {
    let rest = subject.strip_prefix("ingest.v1.")?;
    let (video, kind) = rest.rsplit_once('.')?;
    let kind = match kind {
        "like" => IngestKind::Like,
        "comment" => IngestKind::Comment,
        _ => return None,
    };
    Some((VideoId::parse(video).ok()?, kind))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_round_trip() {
        let v = VideoId::parse("v-1_A").unwrap();
        let east = Region::parse("east").unwrap();
        assert_eq!(
            parse_live(&live_comment(&east, &v)),
            Some(("east", "v-1_A", LiveKind::Comment))
        );
        assert_eq!(
            parse_live(&live_likes(&east, &v)),
            Some(("east", "v-1_A", LiveKind::Likes))
        );
        assert_eq!(
            parse_ingest(&ingest_like(&v)),
            Some((v.clone(), IngestKind::Like))
        );
        assert_eq!(
            parse_ingest(&ingest_comment(&v)),
            Some((v, IngestKind::Comment))
        );
        assert_eq!(parse_ingest("ingest.v1.a.b.like"), None);
        assert_eq!(parse_ingest("ingest.v1.a.share"), None);
        assert_eq!(parse_live("live.v2.e.a.comment"), None);
        assert_eq!(parse_live("live.v1.e.a.b.comment"), None);
    }

    #[test]
    fn counter_values() {
        assert_eq!(counter_value(br#"{"val":"123"}"#), Some(123));
        assert_eq!(counter_value(br#"{ "val" : "0" }"#), Some(0));
        assert_eq!(counter_value(br#"{"val":"-1"}"#), None);
        assert_eq!(counter_value(b"garbage"), None);
    }

    #[test]
    fn streams_and_mirrors() {
        let (east, west) = (
            Region::parse("east").unwrap(),
            Region::parse("west").unwrap(),
        );
        assert_eq!(comments_stream(&east), "COMMENTS_east");
        assert_eq!(
            readable_stream(comments_stream(&east), &east, &west),
            "COMMENTS_east_west"
        );
        assert_eq!(
            readable_stream(likes_stream(&west), &west, &west),
            "LIKES_west"
        );
    }
}
