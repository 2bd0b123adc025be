//! Server-Sent Events framing. Every shared event is encoded here once per node into a
//! [`Frame`], whose bytes all viewers of the video share.

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
    out.push_str(&json);
    out.push_str("\n\n");
    Bytes::from(out)
}

/// `comment` number `seq` of region `region`: `id` is the comment's id (in the data),
/// `cursor` the position to resume from after it (the SSE `id:`; the same as `id` with
/// one region).
pub fn comment(region: u8, seq: u64, id: &str, cursor: &str, c: &live_proto::v1::Comment) -> Frame {
    let data = CommentData {
        id,
        user: &c.user,
        text: &c.text,
        ts: c.accepted_at_ms,
    };
    Frame {
        kind: Kind::Comment,
        seq,
        region,
        accepted_at_ms: c.accepted_at_ms,
        bytes: event("comment", Some(cursor), &data),
    }
}

/// `likes`: `count` likes since the previous one, `total` the durable total.
pub fn likes(count: u64, total: u64, accepted_at_ms: i64) -> Frame {
    Frame {
        kind: Kind::Likes,
        seq: 0,
        region: 0,
        accepted_at_ms,
        bytes: event(
            "likes",
            None,
            &serde_json::json!({ "count": count, "total": total }),
        ),
    }
}

/// `comment_deleted`: comment `id` was deleted by a moderator (no SSE `id:`: it is not
/// a position in the comment sequence; a resumed stream never replays the comment).
pub fn comment_deleted(id: &str) -> Frame {
    Frame {
        kind: Kind::Deleted,
        seq: 0,
        region: 0,
        accepted_at_ms: 0,
        bytes: event("comment_deleted", None, &serde_json::json!({ "id": id })),
    }
}

/// `viewers`: viewers of the video on all frontends.
pub fn viewers(count: u64) -> Frame {
    Frame {
        kind: Kind::Viewers,
        seq: 0,
        region: 0,
        accepted_at_ms: 0,
        bytes: event("viewers", None, &serde_json::json!({ "count": count })),
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
        let f = comment(0, 42, "42", "42", &c);
        let s = std::str::from_utf8(&f.bytes).unwrap();
        assert_eq!(
            s,
            "id: 42\nevent: comment\ndata: {\"id\":\"42\",\"user\":\"u\",\"text\":\"a\\nb\\r\\n\\ndata: x\",\"ts\":5}\n\n"
        );
        assert!(f.is_comment());
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
