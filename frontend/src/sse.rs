//! Server-Sent Events framing. Every shared event is encoded here once per node into a
//! [`Frame`], whose bytes all viewers of the topic share: once as the per-video stream
//! writes it, and once `tagged` with its `"topic"` first in the data, as the
//! one-connection stream (`/v1/stream`) writes it. A tagged comment has no `id:` line:
//! its connection writes its own, the position in every video it watches.

use bytes::Bytes;
use serde::Serialize;

/// What a frame is. Every kind travels through the room's one broadcast channel, so a
/// viewer waits on a single queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Comment,
    Likes,
    Viewers,
    Heartbeat,
    /// `comment_deleted`: a moderator deleted a comment.
    Deleted,
    /// Not written: the node is shutting down, the viewer's stream ends soon.
    Drain,
    /// `typing` of a conversation topic.
    Typing,
    /// `read` of a conversation topic.
    Read,
    /// `presence` of a presence topic.
    Presence,
}

/// One encoded event, shared by every viewer of a video.
#[derive(Debug, Clone)]
pub struct Frame {
    pub kind: Kind,
    /// The comment's sequence in its region's stream; 0 for frames that are not comments.
    pub seq: u64,
    /// The comment's region (index in `--regions`).
    pub region: u8,
    /// When the publisher accepted what this frame carries (UNIX ms); 0 if nothing.
    pub accepted_at_ms: i64,
    pub bytes: Bytes,
    /// The same event with `"topic"` in its data, without an `id:` line.
    pub tagged: Bytes,
}

impl Frame {
    pub fn is_comment(&self) -> bool {
        self.kind == Kind::Comment
    }
}

#[derive(Serialize)]
struct CommentData<'a> {
    id: &'a str,
    user: &'a str,
    text: &'a str,
    ts: i64,
}

fn event(name: &str, id: Option<&str>, data: &impl Serialize) -> Bytes {
    let json = serde_json::to_string(data).expect("event data serializes");
    frame_bytes(name, id, &json)
}

fn frame_bytes(name: &str, id: Option<&str>, json: &str) -> Bytes {
    let mut out = String::with_capacity(json.len() + name.len() + 32);
    if let Some(id) = id {
        out.push_str("id: ");
        out.push_str(id);
        out.push('\n');
    }
    out.push_str("event: ");
    out.push_str(name);
    out.push_str("\ndata: ");
    // serde_json never emits raw newlines, so the data is one line.
    out.push_str(json);
    out.push_str("\n\n");
    Bytes::from(out)
}

/// Event `name` of `topic`: the data object with `"topic"` as its first field.
pub fn tagged(name: &str, topic: &str, data: &impl Serialize) -> Bytes {
    let json = serde_json::to_string(data).expect("event data serializes");
    frame_bytes(name, None, &with_topic(topic, &json))
}

/// `{"topic":…,` followed by the rest of the object `json`.
fn with_topic(topic: &str, json: &str) -> String {
    let topic = serde_json::to_string(topic).expect("a string serializes");
    match json.strip_prefix('{') {
        Some("}") => format!("{{\"topic\":{topic}}}"),
        Some(rest) => format!("{{\"topic\":{topic},{rest}"),
        None => unreachable!("event data is a JSON object"),
    }
}

/// Both encodings of an event without an `id:`.
fn both(name: &str, topic: &str, data: &impl Serialize) -> (Bytes, Bytes) {
    let json = serde_json::to_string(data).expect("event data serializes");
    (
        frame_bytes(name, None, &json),
        frame_bytes(name, None, &with_topic(topic, &json)),
    )
}

/// `comment` number `seq` of region `region`: `id` is the comment's id (in the data),
/// `cursor` the position to resume from after it (the SSE `id:`; the same as `id` with
/// one region).
pub fn comment(
    topic: &str,
    region: u8,
    seq: u64,
    id: &str,
    cursor: &str,
    c: &live_proto::v1::Comment,
) -> Frame {
    let data = CommentData {
        id,
        user: &c.user,
        text: &c.text,
        ts: c.accepted_at_ms,
    };
    let json = serde_json::to_string(&data).expect("event data serializes");
    Frame {
        kind: Kind::Comment,
        seq,
        region,
        accepted_at_ms: c.accepted_at_ms,
        bytes: frame_bytes("comment", Some(cursor), &json),
        tagged: frame_bytes("comment", None, &with_topic(topic, &json)),
    }
}

/// `likes`: `count` likes since the previous one, `total` the durable total.
pub fn likes(topic: &str, count: u64, total: u64, accepted_at_ms: i64) -> Frame {
    let (bytes, tagged) = both(
        "likes",
        topic,
        &serde_json::json!({ "count": count, "total": total }),
    );
    Frame {
        kind: Kind::Likes,
        seq: 0,
        region: 0,
        accepted_at_ms,
        bytes,
        tagged,
    }
}

/// `comment_deleted`: comment `id` was deleted by a moderator (no SSE `id:`: it is not
/// a position in the comment sequence; a resumed stream never replays the comment).
pub fn comment_deleted(topic: &str, id: &str) -> Frame {
    let (bytes, tagged) = both("comment_deleted", topic, &serde_json::json!({ "id": id }));
    Frame {
        kind: Kind::Deleted,
        seq: 0,
        region: 0,
        accepted_at_ms: 0,
        bytes,
        tagged,
    }
}

/// `viewers`: viewers of the video on all frontends.
pub fn viewers(topic: &str, count: u64) -> Frame {
    let (bytes, tagged) = both("viewers", topic, &serde_json::json!({ "count": count }));
    Frame {
        kind: Kind::Viewers,
        seq: 0,
        region: 0,
        accepted_at_ms: 0,
        bytes,
        tagged,
    }
}

/// An event of a conversation or presence topic (only the one-connection stream carries
/// them, so only `tagged` is set): `typing`, `read`, `presence`.
pub fn topic_event(
    kind: Kind,
    name: &str,
    topic: &str,
    data: &impl Serialize,
    accepted_at_ms: i64,
) -> Frame {
    Frame {
        kind,
        seq: 0,
        region: 0,
        accepted_at_ms,
        bytes: Bytes::new(),
        tagged: tagged(name, topic, data),
    }
}

/// The heartbeat comment line.
pub fn heartbeat() -> Frame {
    Frame {
        kind: Kind::Heartbeat,
        seq: 0,
        region: 0,
        accepted_at_ms: 0,
        bytes: Bytes::from_static(b": heartbeat\n\n"),
        tagged: Bytes::from_static(b": heartbeat\n\n"),
    }
}

/// The signal that the node is draining (never written to a viewer).
pub fn drain() -> Frame {
    Frame {
        kind: Kind::Drain,
        seq: 0,
        region: 0,
        accepted_at_ms: 0,
        bytes: Bytes::new(),
        tagged: Bytes::new(),
    }
}

/// The first bytes of every stream: `retry:` and `snapshot`.
pub fn prelude(retry_ms: u64, likes: u64, viewers: u64) -> Bytes {
    let snapshot = event(
        "snapshot",
        None,
        &serde_json::json!({ "likes": likes, "viewers": viewers }),
    );
    let mut out = format!("retry: {retry_ms}\n").into_bytes();
    out.extend_from_slice(&snapshot);
    Bytes::from(out)
}

/// `expired`: the viewer's token expired; the stream ends after it (the page gets a fresh
/// token and resumes with `Last-Event-ID`).
pub fn expired(reason: &str) -> Bytes {
    event("expired", None, &serde_json::json!({ "reason": reason }))
}

/// The first bytes of a `/v1/stream`: `retry:` and `connected` with the connection's id.
pub fn connected(retry_ms: u64, connection: &str) -> Bytes {
    let connected = event(
        "connected",
        None,
        &serde_json::json!({ "connection": connection }),
    );
    let mut out = format!("retry: {retry_ms}\n").into_bytes();
    out.extend_from_slice(&connected);
    Bytes::from(out)
}

/// `reset`: what the viewer missed cannot be replayed.
pub fn reset(reason: &str, likes: u64, viewers: u64) -> Bytes {
    event(
        "reset",
        None,
        &serde_json::json!({ "reason": reason, "likes": likes, "viewers": viewers }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comment_text_with_newlines_stays_one_data_line() {
        let c = live_proto::v1::Comment {
            user: "u".into(),
            text: "a\nb\r\n\ndata: x".into(),
            accepted_at_ms: 5,
            ..Default::default()
        };
        let f = comment("video:v", 0, 42, "42", "42", &c);
        let s = std::str::from_utf8(&f.bytes).unwrap();
        assert_eq!(
            s,
            "id: 42\nevent: comment\ndata: {\"id\":\"42\",\"user\":\"u\",\"text\":\"a\\nb\\r\\n\\ndata: x\",\"ts\":5}\n\n"
        );
        assert!(f.is_comment());
        assert_eq!(
            std::str::from_utf8(&f.tagged).unwrap(),
            "event: comment\ndata: {\"topic\":\"video:v\",\"id\":\"42\",\"user\":\"u\",\"text\":\"a\\nb\\r\\n\\ndata: x\",\"ts\":5}\n\n"
        );
    }

    #[test]
    fn tagged_events_have_the_topic_first() {
        let f = likes("video:v", 2, 9, 0);
        assert_eq!(
            std::str::from_utf8(&f.tagged).unwrap(),
            "event: likes\ndata: {\"topic\":\"video:v\",\"count\":2,\"total\":9}\n\n"
        );
        assert_eq!(
            std::str::from_utf8(&f.bytes).unwrap(),
            "event: likes\ndata: {\"count\":2,\"total\":9}\n\n"
        );
        let empty = tagged("x", "presence:m", &serde_json::json!({}));
        assert_eq!(
            std::str::from_utf8(&empty).unwrap(),
            "event: x\ndata: {\"topic\":\"presence:m\"}\n\n"
        );
    }

    #[test]
    fn prelude_has_retry_then_snapshot() {
        let p = prelude(1500, 7, 3);
        assert_eq!(
            std::str::from_utf8(&p).unwrap(),
            "retry: 1500\nevent: snapshot\ndata: {\"likes\":7,\"viewers\":3}\n\n"
        );
    }
}
