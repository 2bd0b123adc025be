//! NATS subject names and stream names. The table is in `proto/README.md`.
//!
//! Every function takes a [`VideoId`], so a subject can only be built from a validated id.

use crate::VideoId;

/// JetStream stream holding every accepted comment (`store.v1.*.comment`).
pub const COMMENTS_STREAM: &str = "COMMENTS";
/// JetStream counter stream holding each video's likes total (`likes.v1.*`).
pub const LIKES_STREAM: &str = "LIKES";

/// Subjects of the COMMENTS stream.
pub const STORE_COMMENTS_ALL: &str = "store.v1.*.comment";
/// Subjects of the LIKES stream.
pub const LIKES_ALL: &str = "likes.v1.*";
/// Everything ingest clients may publish (the publisher's queue subscription).
pub const INGEST_ALL: &str = "ingest.v1.*.*";
/// Queue group of the publishers on [`INGEST_ALL`].
pub const INGEST_QUEUE: &str = "publisher";
/// Republish mapping of the COMMENTS stream: stored → live.
pub const REPUBLISH_SRC: &str = "store.v1.>";
pub const REPUBLISH_DEST: &str = "live.v1.>";

/// Where the publisher stores a comment (COMMENTS stream).
pub fn store_comment(video: &VideoId) -> String {
    format!("store.v1.{video}.comment")
}

/// The video's counter in the LIKES stream.
pub fn likes_counter(video: &VideoId) -> String {
    format!("likes.v1.{video}")
}

/// Everything live about one video: a frontend's single subscription per video.
pub fn live_all(video: &VideoId) -> String {
    format!("live.v1.{video}.*")
}

/// Stored comments as republished by JetStream.
pub fn live_comment(video: &VideoId) -> String {
    format!("live.v1.{video}.comment")
}

/// Coalesced likes.
pub fn live_likes(video: &VideoId) -> String {
    format!("live.v1.{video}.likes")
}

/// Frontends' viewer counts.
pub fn live_presence(video: &VideoId) -> String {
    format!("live.v1.{video}.presence")
}

/// Ingest of likes (request-reply, answered with `IngestReply`).
pub fn ingest_like(video: &VideoId) -> String {
    format!("ingest.v1.{video}.like")
}

/// Ingest of comments (request-reply, answered with `IngestReply`).
pub fn ingest_comment(video: &VideoId) -> String {
    format!("ingest.v1.{video}.comment")
}

/// What arrives on a `live.v1.{video}.*` subscription.
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

/// Splits `live.v1.{video}.{kind}`; `None` for anything else.
pub fn parse_live(subject: &str) -> Option<(&str, LiveKind)> {
    let rest = subject.strip_prefix("live.v1.")?;
    let (video, kind) = rest.rsplit_once('.')?;
    let kind = match kind {
        "comment" => LiveKind::Comment,
        "likes" => LiveKind::Likes,
        "presence" => LiveKind::Presence,
        _ => return None,
    };
    Some((video, kind))
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
        assert_eq!(
            parse_live(&live_comment(&v)),
            Some(("v-1_A", LiveKind::Comment))
        );
        assert_eq!(
            parse_live(&live_likes(&v)),
            Some(("v-1_A", LiveKind::Likes))
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
        assert_eq!(parse_live("live.v2.a.comment"), None);
    }
}
