//! Topics of the one-connection stream (`GET /v1/stream?topics=T1,T2,…`): `video:{id}`,
//! `conversation:{id}` and `presence:{member}`, each id `^[A-Za-z0-9_-]{1,64}$`.
//!
//! A [`Topic`] prints back exactly as it was parsed (`video:v1`), so it can be the
//! `"topic"` field of every event and the key of a connection's topic set.

use std::fmt;
use std::str::FromStr;

use crate::{ConversationId, InvalidInput, MemberId, VideoId};

/// Default of `--max-topics`: most topics on one connection.
pub const DEFAULT_MAX_TOPICS: usize = 64;

/// One topic of a stream connection.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Topic {
    /// `video:{id}`: a live video's snapshot, comments, likes, viewers, resets.
    Video(VideoId),
    /// `conversation:{id}`: read receipts (snapshot, then `read`) and `typing`.
    Conversation(ConversationId),
    /// `presence:{member}`: whether a member is online.
    Presence(MemberId),
}

/// Why a topic (or a list of topics) was refused; the message names what is wrong and is
/// safe to send to the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TopicError {
    /// No `:` between kind and id.
    #[error("topic {0:?} must be \"kind:id\" (video:…, conversation:… or presence:…)")]
    Malformed(String),
    /// A kind other than `video`, `conversation`, `presence`.
    #[error("unknown topic kind {0:?}: expected video, conversation or presence")]
    UnknownKind(String),
    /// The id after the kind is not `^[A-Za-z0-9_-]{1,64}$`.
    #[error("bad id in topic {topic:?}: {reason}")]
    BadId { topic: String, reason: InvalidInput },
    /// An empty list (`?topics=`).
    #[error("at least one topic is required")]
    Empty,
    /// More than the connection may hold (`--max-topics`).
    #[error("at most {max} topics per connection")]
    TooMany { max: usize },
}

/// Longest topic string printed back in an error (an attacker's input is cut there).
const MAX_ECHO: usize = 80;

fn echo(s: &str) -> String {
    s.chars().take(MAX_ECHO).collect()
}

impl Topic {
    /// Parses `kind:id`.
    pub fn parse(s: &str) -> Result<Self, TopicError> {
        let (kind, id) = s
            .split_once(':')
            .ok_or_else(|| TopicError::Malformed(echo(s)))?;
        let bad = |reason| TopicError::BadId {
            topic: echo(s),
            reason,
        };
        match kind {
            "video" => VideoId::parse(id).map(Topic::Video).map_err(bad),
            "conversation" => ConversationId::parse(id)
                .map(Topic::Conversation)
                .map_err(bad),
            "presence" => MemberId::parse(id).map(Topic::Presence).map_err(bad),
            other => Err(TopicError::UnknownKind(echo(other))),
        }
    }

    /// Parses a comma-separated list (the `topics` query parameter): at least one, at
    /// most `max`, duplicates dropped (first occurrence kept, order kept).
    pub fn parse_list(s: &str, max: usize) -> Result<Vec<Topic>, TopicError> {
        let mut topics: Vec<Topic> = Vec::new();
        for part in s.split(',').filter(|p| !p.is_empty()) {
            let topic = Topic::parse(part)?;
            if !topics.contains(&topic) {
                if topics.len() == max {
                    return Err(TopicError::TooMany { max });
                }
                topics.push(topic);
            }
        }
        if topics.is_empty() {
            return Err(TopicError::Empty);
        }
        Ok(topics)
    }

    /// The kind before the `:`.
    pub fn kind(&self) -> &'static str {
        match self {
            Topic::Video(_) => "video",
            Topic::Conversation(_) => "conversation",
            Topic::Presence(_) => "presence",
        }
    }

    /// The id after the `:`.
    pub fn id(&self) -> &str {
        match self {
            Topic::Video(v) => v.as_str(),
            Topic::Conversation(c) => c.as_str(),
            Topic::Presence(m) => m.as_str(),
        }
    }
}

impl fmt::Display for Topic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.kind(), self.id())
    }
}

impl FromStr for Topic {
    type Err = TopicError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Topic::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_parse_and_print_back() {
        for s in [
            "video:v-1_A",
            "conversation:c1",
            "presence:alice",
            &format!("video:{}", "x".repeat(64)),
        ] {
            let t = Topic::parse(s).unwrap();
            assert_eq!(t.to_string(), s);
            assert_eq!(s.parse::<Topic>().unwrap(), t);
        }
        assert_eq!(
            Topic::parse("conversation:c1").unwrap(),
            Topic::Conversation(ConversationId::parse("c1").unwrap())
        );
        assert_eq!(Topic::parse("presence:bob").unwrap().kind(), "presence");
        assert_eq!(Topic::parse("presence:bob").unwrap().id(), "bob");
    }

    #[test]
    fn errors_name_what_is_wrong() {
        assert_eq!(
            Topic::parse("chat:c1"),
            Err(TopicError::UnknownKind("chat".into()))
        );
        assert_eq!(
            Topic::parse("Video:c1"),
            Err(TopicError::UnknownKind("Video".into()))
        );
        assert_eq!(
            Topic::parse("video"),
            Err(TopicError::Malformed("video".into()))
        );
        for bad in [
            "video:",
            "video:a.b",
            "video:a:b",
            "conversation:*",
            "conversation:>",
            "presence:a b",
            "presence:é",
        ] {
            match Topic::parse(bad) {
                Err(e @ TopicError::BadId { .. }) => {
                    let msg = e.to_string();
                    assert!(msg.contains(bad), "{msg}");
                }
                other => panic!("{bad}: {other:?}"),
            }
        }
        let long = format!("video:{}", "x".repeat(100));
        assert_eq!(
            Topic::parse(&long).unwrap_err().to_string(),
            format!(
                "bad id in topic {:?}: video must be 1 to 64 characters",
                &long[..MAX_ECHO]
            )
        );
        assert_eq!(
            Topic::parse("conversation:a.b").unwrap_err().to_string(),
            "bad id in topic \"conversation:a.b\": conversation may contain only A-Z, a-z, 0-9, '_' and '-'"
        );
    }

    #[test]
    fn lists_are_bounded_and_deduplicated() {
        let list = Topic::parse_list("video:a,conversation:a,video:a,presence:m", 3).unwrap();
        assert_eq!(
            list.iter().map(ToString::to_string).collect::<Vec<_>>(),
            ["video:a", "conversation:a", "presence:m"]
        );
        assert_eq!(
            Topic::parse_list("video:a,video:b,video:c", 2),
            Err(TopicError::TooMany { max: 2 })
        );
        assert_eq!(Topic::parse_list("", 2), Err(TopicError::Empty));
        assert_eq!(Topic::parse_list(",,", 2), Err(TopicError::Empty));
        assert!(matches!(
            Topic::parse_list("video:a,nope:b", 2),
            Err(TopicError::UnknownKind(_))
        ));
    }
}
