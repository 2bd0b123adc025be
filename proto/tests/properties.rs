//! Property tests of the edges that take outside input: the id and text validators and
//! protobuf decoding of every message that arrives on NATS. None may panic, whatever the
//! input; what they accept is exactly what the contract allows.

use live_proto::subjects::{self, IngestKind};
use live_proto::{CommentText, UserId, VideoId, v1};
use proptest::prelude::*;
use prost::Message as _;

/// The contract's `^[A-Za-z0-9_-]{1,64}$`, written out independently of `ids.rs`.
fn is_valid_id(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

proptest! {
    #[test]
    fn ids_accept_exactly_the_contract(s in "\\PC{0,70}|[A-Za-z0-9_.*>$ -]{0,70}") {
        prop_assert_eq!(VideoId::parse(&s).is_ok(), is_valid_id(&s));
        prop_assert_eq!(UserId::parse(&s).is_ok(), is_valid_id(&s));
        if let Ok(v) = VideoId::parse(&s) {
            // A valid id is one subject token: no dots, no wildcards, no spaces.
            prop_assert_eq!(v.as_str(), s.as_str());
            prop_assert!(!s.contains(['.', '*', '>', ' ']));
            let like = subjects::ingest_like(&v);
            prop_assert_eq!(subjects::parse_ingest(&like), Some((v, IngestKind::Like)));
        }
    }

    #[test]
    fn comment_text_counts_characters(s in "\\PC{0,520}|(?s).{0,520}") {
        let chars = s.chars().count();
        match CommentText::parse(&s) {
            Ok(t) => {
                prop_assert!((1..=500).contains(&chars));
                prop_assert_eq!(t.as_str(), s.as_str());
            }
            Err(e) => {
                prop_assert!(chars == 0 || chars > 500);
                prop_assert!(!e.0.is_empty());
            }
        }
    }

    #[test]
    fn ingest_subjects_never_panic(s in "(?s).{0,80}|ingest\\.v1\\.[a-z.*>]{0,10}\\.(like|comment|x)") {
        if let Some((video, _)) = subjects::parse_ingest(&s) {
            prop_assert!(is_valid_id(video.as_str()));
        }
        let _ = subjects::parse_live(&s);
    }

    #[test]
    fn arbitrary_bytes_never_panic_any_decoder(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = v1::LikeRequest::decode(bytes.as_slice());
        let _ = v1::CommentRequest::decode(bytes.as_slice());
        let _ = v1::IngestReply::decode(bytes.as_slice());
        let _ = v1::Comment::decode(bytes.as_slice());
        let _ = v1::Likes::decode(bytes.as_slice());
        let _ = v1::CountReport::decode(bytes.as_slice());
        let _ = v1::MemberQuery::decode(bytes.as_slice());
        let _ = v1::MemberHolders::decode(bytes.as_slice());
        let _ = v1::ViewerTotal::decode(bytes.as_slice());
        let _ = v1::Aggregator::decode(bytes.as_slice());
        let _ = v1::TypingRequest::decode(bytes.as_slice());
        let _ = v1::ReadRequest::decode(bytes.as_slice());
        let _ = v1::Typing::decode(bytes.as_slice());
        let _ = v1::ReadReceipt::decode(bytes.as_slice());
        let mut receipts = live_proto::conversations::ReadReceipts::new(live_proto::ConversationId::parse("c").unwrap());
        let _ = receipts.apply_live(bytes.as_slice());
        let _ = receipts.apply_stored("$KV.RECEIPTS_r.c.u", 1, bytes.as_slice());
    }

    #[test]
    fn topics_accept_exactly_the_contract(kind in "video|conversation|presence|chat|", id in "\\PC{0,70}|[A-Za-z0-9_.*>:$ -]{0,70}") {
        let s = format!("{kind}:{id}");
        let known = ["video", "conversation", "presence"].contains(&kind.as_str());
        match live_proto::Topic::parse(&s) {
            Ok(t) => {
                prop_assert!(known && is_valid_id(&id));
                prop_assert_eq!(t.to_string(), s);
            }
            Err(e) => {
                prop_assert!(!known || !is_valid_id(&id));
                prop_assert!(!e.to_string().is_empty());
            }
        }
        if let Some((_, c, _)) = subjects::parse_conversation_live(&format!("conv.v1.r.{id}.read")) {
            prop_assert!(is_valid_id(c.as_str()));
        }
    }

    #[test]
    fn messages_round_trip(
        video in ".{0,70}", user in ".{0,70}", text in ".{0,600}",
        ts in any::<i64>(), count in any::<u64>(), viewers in any::<u32>(),
    ) {
        let comment = v1::Comment { video: video.clone(), user: user.clone(), text, accepted_at_ms: ts, region: "r".into() };
        prop_assert_eq!(v1::Comment::decode(comment.encode_to_vec().as_slice()).unwrap(), comment);
        let likes = v1::Likes { video: video.clone(), count, total: count, accepted_at_ms: ts, region: String::new() };
        prop_assert_eq!(v1::Likes::decode(likes.encode_to_vec().as_slice()).unwrap(), likes);
        let report = v1::CountReport { node: user.clone(), ttl_ms: viewers, counts: vec![v1::Count { id: video.clone(), n: viewers }], at_ms: ts };
        prop_assert_eq!(v1::CountReport::decode(report.encode_to_vec().as_slice()).unwrap(), report);
        let total = v1::ViewerTotal { video, region: user.clone(), viewers: count, at_ms: ts, ttl_ms: viewers, node: user };
        prop_assert_eq!(v1::ViewerTotal::decode(total.encode_to_vec().as_slice()).unwrap(), total);
    }

    #[test]
    fn truncated_or_corrupted_messages_never_panic(
        user in ".{0,40}", text in ".{0,100}", cut in any::<prop::sample::Index>(), flip in any::<u8>(),
    ) {
        let mut bytes = v1::CommentRequest { user, text, idempotency_key: String::new(), token: "t".into() }.encode_to_vec();
        let i = cut.index(bytes.len());
        bytes[i] ^= flip;
        let _ = v1::CommentRequest::decode(bytes.as_slice());
        let _ = v1::Comment::decode(&bytes[..i]);
    }
}

#[test]
fn older_clients_without_a_token_still_decode() {
    // A LikeRequest as encoded before `token` existed: field 1 "u", field 2 "k".
    let old = [0x0a, 1, b'u', 0x12, 1, b'k'];
    let decoded = v1::LikeRequest::decode(old.as_slice()).unwrap();
    assert_eq!((decoded.user.as_str(), decoded.token.as_str()), ("u", ""));
}
