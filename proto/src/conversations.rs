//! Read receipts of a conversation as a reader (a frontend) holds them: the snapshot read
//! from every region's `RECEIPTS_{region}` bucket merged with the live `read` events,
//! never going backwards.
//!
//! How a reader uses it, per `conversation:{id}` topic:
//! 1. subscribe to [`subjects::conversation_live_all`] first (buffering what arrives);
//! 2. for every region `r` of the deployment, read the current entries of
//!    [`subjects::receipts_of`]`(r, id)` from this region's copy of `r`'s bucket
//!    (stream [`subjects::readable_stream`]`(`[`subjects::receipts_stream`]`(r), r, own)`,
//!    e.g. with `live_common::direct::read`, which gives each entry's subject, sequence
//!    and payload) and [`ReadReceipts::apply_stored`] each;
//! 3. send `snapshot` `{"read": `[`ReadReceipts::snapshot`]`}`;
//! 4. then [`ReadReceipts::apply_live`] every buffered and later `read` event, and send
//!    `read` `{"user","message"}` only when it returns `true`.
//!
//! Both the stored entries and the live events carry the region and the KV revision
//! (a stored entry's revision is its stream sequence; mirrors keep the origin's
//! sequences), so a live event already in the snapshot, or older than it, is dropped.

use std::collections::BTreeMap;

use prost::Message as _;

use crate::subjects;
use crate::{ConversationId, MessageId, UserId, v1};

/// Whether receipt `candidate` of a user replaces `current` of the same user: from the
/// same region, the higher KV revision wins (one bucket orders its writes); from
/// different regions, the later `(accepted_at_ms, region)` (the clocks of two regions'
/// publishers; a tie goes to the greater region name, so every reader agrees).
pub fn is_newer(candidate: &v1::ReadReceipt, current: &v1::ReadReceipt) -> bool {
    if candidate.region == current.region {
        candidate.revision > current.revision
    } else {
        (candidate.accepted_at_ms, &candidate.region) > (current.accepted_at_ms, &current.region)
    }
}

/// Why a stored entry or a live event was not applied (a reader counts and drops it).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReceiptError {
    #[error("not a receipts key of this conversation: {0:?}")]
    Subject(String),
    #[error("not a ReadReceipt")]
    Undecodable,
    #[error("receipt of another conversation or user, or with an invalid message id")]
    Mismatch,
}

/// The latest receipt of every user of one conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadReceipts {
    conversation: ConversationId,
    latest: BTreeMap<UserId, v1::ReadReceipt>,
}

impl ReadReceipts {
    pub fn new(conversation: ConversationId) -> Self {
        Self {
            conversation,
            latest: BTreeMap::new(),
        }
    }

    /// The conversation these receipts are of.
    pub fn conversation(&self) -> &ConversationId {
        &self.conversation
    }

    /// Applies a receipt; `true` if the user's latest message changed (a reader then
    /// sends `read`; a newer receipt of the same message is kept, quietly). A receipt of
    /// another conversation, or with a bad user or message id, is refused.
    pub fn apply(&mut self, receipt: v1::ReadReceipt) -> Result<bool, ReceiptError> {
        if receipt.conversation != self.conversation.as_str()
            || MessageId::parse(&receipt.message).is_err()
        {
            return Err(ReceiptError::Mismatch);
        }
        let user = UserId::parse(&receipt.user).map_err(|_| ReceiptError::Mismatch)?;
        let changed = match self.latest.get(&user) {
            Some(current) if !is_newer(&receipt, current) => return Ok(false),
            Some(current) => current.message != receipt.message,
            None => true,
        };
        self.latest.insert(user, receipt);
        Ok(changed)
    }

    /// Applies a KV entry as stored: `subject` `$KV.RECEIPTS_{region}.{conversation}.{user}`,
    /// `revision` its stream sequence (the KV revision), `payload` the `ReadReceipt`. A
    /// delete or purge marker (empty payload) is ignored: receipts are never deleted.
    pub fn apply_stored(
        &mut self,
        subject: &str,
        revision: u64,
        payload: &[u8],
    ) -> Result<bool, ReceiptError> {
        let (region, conversation, user) = subjects::parse_receipt(subject)
            .filter(|(_, c, _)| *c == self.conversation)
            .ok_or_else(|| ReceiptError::Subject(subject.chars().take(120).collect()))?;
        if payload.is_empty() {
            return Ok(false);
        }
        let mut receipt =
            v1::ReadReceipt::decode(payload).map_err(|_| ReceiptError::Undecodable)?;
        if receipt.region != region
            || receipt.user != user.as_str()
            || receipt.conversation != conversation.as_str()
        {
            return Err(ReceiptError::Mismatch);
        }
        receipt.revision = revision;
        self.apply(receipt)
    }

    /// Applies the payload of a live `conv.v1.{region}.{conversation}.read` event.
    pub fn apply_live(&mut self, payload: &[u8]) -> Result<bool, ReceiptError> {
        let receipt = v1::ReadReceipt::decode(payload).map_err(|_| ReceiptError::Undecodable)?;
        self.apply(receipt)
    }

    /// The user's latest receipt.
    pub fn get(&self, user: &UserId) -> Option<&v1::ReadReceipt> {
        self.latest.get(user)
    }

    /// The `snapshot` event's `"read"` map: user → the last message they read.
    pub fn snapshot(&self) -> BTreeMap<String, String> {
        self.latest
            .iter()
            .map(|(user, r)| (user.to_string(), r.message.clone()))
            .collect()
    }

    pub fn len(&self) -> usize {
        self.latest.len()
    }

    pub fn is_empty(&self) -> bool {
        self.latest.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn receipt(user: &str, message: &str, at: i64, region: &str, revision: u64) -> v1::ReadReceipt {
        v1::ReadReceipt {
            conversation: "c1".into(),
            user: user.into(),
            message: message.into(),
            accepted_at_ms: at,
            region: region.into(),
            revision,
        }
    }

    fn receipts() -> ReadReceipts {
        ReadReceipts::new(ConversationId::parse("c1").unwrap())
    }

    #[test]
    fn the_snapshot_then_live_never_goes_backwards() {
        let mut r = receipts();
        // The snapshot: bob's entry at revision 7.
        let stored = receipt("bob", "m7", 1_000, "east", 0).encode_to_vec();
        assert_eq!(
            r.apply_stored("$KV.RECEIPTS_east.c1.bob", 7, &stored),
            Ok(true)
        );
        // Live events buffered before the snapshot was read: older, the same, newer.
        for (rev, msg, expect) in [(5, "m5", false), (7, "m7", false), (9, "m9", true)] {
            let live = receipt("bob", msg, 900, "east", rev).encode_to_vec();
            assert_eq!(r.apply_live(&live), Ok(expect), "revision {rev}");
        }
        assert_eq!(r.snapshot(), BTreeMap::from([("bob".into(), "m9".into())]));
        // The same message again (a retried receipt): newer, but nothing to send.
        let again = receipt("bob", "m9", 950, "east", 10);
        assert_eq!(r.apply(again), Ok(false));
        assert_eq!(r.get(&UserId::parse("bob").unwrap()).unwrap().revision, 10);
    }

    #[test]
    fn regions_merge_by_time_then_name() {
        let mut r = receipts();
        assert_eq!(r.apply(receipt("bob", "a", 100, "east", 50)), Ok(true));
        // West's bucket has its own revisions: time decides.
        assert_eq!(r.apply(receipt("bob", "b", 99, "west", 900)), Ok(false));
        assert_eq!(r.apply(receipt("bob", "c", 101, "west", 1)), Ok(true));
        assert_eq!(r.apply(receipt("bob", "d", 101, "east", 51)), Ok(false));
        assert_eq!(r.apply(receipt("bob", "e", 101, "west", 2)), Ok(true));
        assert_eq!(r.get(&UserId::parse("bob").unwrap()).unwrap().message, "e");
        assert_eq!(r.apply(receipt("eve", "x", 1, "east", 1)), Ok(true));
        assert_eq!(r.len(), 2);
    }

    #[test]
    fn foreign_or_broken_entries_are_refused() {
        let mut r = receipts();
        let ok = receipt("bob", "m1", 1, "east", 0).encode_to_vec();
        assert!(matches!(
            r.apply_stored("$KV.RECEIPTS_east.c2.bob", 1, &ok),
            Err(ReceiptError::Subject(_))
        ));
        assert_eq!(
            r.apply_stored("$KV.RECEIPTS_east.c1.eve", 1, &ok),
            Err(ReceiptError::Mismatch)
        );
        assert_eq!(
            r.apply_stored("$KV.RECEIPTS_west.c1.bob", 1, &ok),
            Err(ReceiptError::Mismatch)
        );
        assert_eq!(
            r.apply_stored("$KV.RECEIPTS_east.c1.bob", 1, &[0xff, 0xff]),
            Err(ReceiptError::Undecodable)
        );
        assert_eq!(
            r.apply_stored("$KV.RECEIPTS_east.c1.bob", 1, &[]),
            Ok(false)
        );
        assert_eq!(
            r.apply(receipt("bob", "a.b", 1, "east", 1)),
            Err(ReceiptError::Mismatch)
        );
        let mut other = receipt("bob", "m", 1, "east", 1);
        other.conversation = "c2".into();
        assert_eq!(r.apply(other), Err(ReceiptError::Mismatch));
        assert!(r.is_empty());
    }
}
