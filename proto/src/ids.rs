//! Validated identifiers: video, user, conversation and message ids, and comment texts.
//!
//! `{video}`, `user`, `{conversation}` and a read receipt's `message` match
//! `^[A-Za-z0-9_-]{1,64}$`, so they are always a single, wildcard-free NATS subject token
//! (or KV key token). A comment text is 1–500 characters of UTF-8.

use std::fmt;

/// Why an input was refused; the message is safe to show to the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidInput(pub String);

impl fmt::Display for InvalidInput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for InvalidInput {}

/// Longest video or user id.
pub const MAX_ID_LEN: usize = 64;
/// Longest comment, in characters (Unicode scalar values).
pub const MAX_COMMENT_CHARS: usize = 500;

fn check_token(kind: &str, s: &str) -> Result<(), InvalidInput> {
    if s.is_empty() || s.len() > MAX_ID_LEN {
        return Err(InvalidInput(format!(
            "{kind} must be 1 to {MAX_ID_LEN} characters"
        )));
    }
    if !s
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return Err(InvalidInput(format!(
            "{kind} may contain only A-Z, a-z, 0-9, '_' and '-'"
        )));
    }
    Ok(())
}

macro_rules! token_type {
    ($(#[$doc:meta])* $name:ident, $kind:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            /// Validates `s` against `^[A-Za-z0-9_-]{1,64}$`.
            pub fn parse(s: &str) -> Result<Self, InvalidInput> {
                check_token($kind, s)?;
                Ok(Self(s.to_owned()))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl std::str::FromStr for $name {
            type Err = InvalidInput;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::parse(s)
            }
        }
    };
}

token_type!(
    /// A live video's id; safe to use as one NATS subject token.
    VideoId,
    "video"
);
token_type!(
    /// A user's id; safe to use as one NATS subject token.
    UserId,
    "user"
);

token_type!(
    /// A conversation's id (`conversation:{id}` topics, `/v1/conversations/{id}/…`);
    /// safe to use as one NATS subject token. Conversations are created implicitly.
    ConversationId,
    "conversation"
);
token_type!(
    /// A message's id in a conversation, as a read receipt names it (the platform does
    /// not store conversation messages: the id is the client's, only validated).
    MessageId,
    "message"
);

/// A presence member (`presence:{member}` topics): the same ids as users (with auth on,
/// a token's `sub`).
pub type MemberId = UserId;

/// A comment's text: 1–500 characters, kept exactly as posted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommentText(String);

impl CommentText {
    pub fn parse(s: &str) -> Result<Self, InvalidInput> {
        let chars = s.chars().count();
        if chars == 0 || chars > MAX_COMMENT_CHARS {
            return Err(InvalidInput(format!(
                "text must be 1 to {MAX_COMMENT_CHARS} characters"
            )));
        }
        Ok(Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_accept_the_documented_alphabet() {
        for ok in ["a", "A-z_09", &"x".repeat(64)] {
            assert!(VideoId::parse(ok).is_ok(), "{ok}");
            assert!(UserId::parse(ok).is_ok(), "{ok}");
            assert!(ConversationId::parse(ok).is_ok(), "{ok}");
            assert!(MessageId::parse(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn ids_refuse_anything_that_could_change_a_subject() {
        for bad in [
            "",
            &"x".repeat(65),
            "a.b",
            "a*",
            ">",
            "a b",
            "a\tb",
            "é",
            "a/b",
            "a\0",
            "$SYS",
        ] {
            assert!(VideoId::parse(bad).is_err(), "{bad:?}");
            assert!(UserId::parse(bad).is_err(), "{bad:?}");
            assert!(ConversationId::parse(bad).is_err(), "{bad:?}");
            assert!(MessageId::parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            ConversationId::parse("a.b").unwrap_err().0,
            "conversation may contain only A-Z, a-z, 0-9, '_' and '-'"
        );
    }

    #[test]
    fn comment_length_counts_characters_not_bytes() {
        assert!(CommentText::parse(&"é".repeat(500)).is_ok());
        assert!(CommentText::parse(&"é".repeat(501)).is_err());
        assert!(CommentText::parse("").is_err());
        assert_eq!(
            CommentText::parse(" <b>hi</b>\n").unwrap().as_str(),
            " <b>hi</b>\n"
        );
    }
}
