//! NATS subject and stream names. The table is in `proto/README.md`.
//!
//! Subjects are built only from a [`VideoId`] and a [`Region`], both validated, so a
//! user-supplied string can never add a token or a wildcard.

use crate::partitions::Partition;
use crate::regions::Region;
use crate::{ConversationId, MemberId, UserId, VideoId};

/// Partition `p` of the region's accepted comments (`store.v1.{region}.{p}.*.comment`),
/// e.g. `COMMENTS_east_p0`.
pub fn comments_stream(region: &Region, p: Partition) -> String {
    format!("COMMENTS_{region}_p{p}")
}

/// Partition `p` of the region's counter stream of likes totals
/// (`likes.v1.{region}.{p}.*`), e.g. `LIKES_east_p0`.
pub fn likes_stream(region: &Region, p: Partition) -> String {
    format!("LIKES_{region}_p{p}")
}

/// A mirror, kept in region `here`, of region `origin`'s stream `stream`
/// (e.g. `COMMENTS_east_p0_west`): same subjects, same sequences.
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

/// Subjects of partition `p` of a region's COMMENTS streams.
pub fn store_comments_all(region: &Region, p: Partition) -> String {
    format!("store.v1.{region}.{p}.*.comment")
}

/// Where a region's publisher stores a comment's tombstone (in the COMMENTS stream of the
/// video's partition `p`).
pub fn store_deleted(region: &Region, p: Partition, video: &VideoId) -> String {
    format!("store.v1.{region}.{p}.{video}.deleted")
}

/// Tombstone subjects of partition `p` of a region's COMMENTS streams.
pub fn store_deleted_all(region: &Region, p: Partition) -> String {
    format!("store.v1.{region}.{p}.*.deleted")
}

/// The region's key-value bucket of moderation settings (bans, slow mode).
pub fn moderation_bucket(region: &Region) -> String {
    format!("MODERATION_{region}")
}

/// The stream behind a region's moderation bucket (what other regions mirror).
pub fn moderation_stream(region: &Region) -> String {
    format!("KV_MODERATION_{region}")
}

/// Every key of a region's moderation bucket, as published (`$KV.{bucket}.{key}`). One
/// subscription per region: NATS wildcards match whole tokens only, so
/// `$KV.MODERATION_*.>` would match no subject at all.
pub fn moderation_all(region: &Region) -> String {
    format!("$KV.{}.>", moderation_bucket(region))
}

/// The key of a ban of `user` on `video`.
pub fn ban_key(video: &VideoId, user: &crate::UserId) -> String {
    format!("ban.{video}.{user}")
}

/// The key of a video's slow mode.
pub fn slow_mode_key(video: &VideoId) -> String {
    format!("slow.{video}")
}

/// What a moderation key names.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ModerationKey {
    Ban(VideoId, crate::UserId),
    SlowMode(VideoId),
}

/// Splits `$KV.MODERATION_{region}.{key}` into the region and the key; `None` for
/// anything else.
pub fn parse_moderation(subject: &str) -> Option<(&str, ModerationKey)> {
    let rest = subject.strip_prefix("$KV.MODERATION_")?;
    let (region, key) = rest.split_once('.')?;
    let mut parts = key.split('.');
    let key = match (parts.next()?, parts.next(), parts.next(), parts.next()) {
        ("ban", Some(video), Some(user), None) => ModerationKey::Ban(
            VideoId::parse(video).ok()?,
            crate::UserId::parse(user).ok()?,
        ),
        ("slow", Some(video), None, None) => ModerationKey::SlowMode(VideoId::parse(video).ok()?),
        _ => return None,
    };
    Some((region, key))
}

/// Subjects of partition `p` of a region's LIKES streams.
pub fn likes_all(region: &Region, p: Partition) -> String {
    format!("likes.v1.{region}.{p}.*")
}

/// Republish mapping of partition `p` of a region's COMMENTS streams (comments and
/// tombstones): stored → live, dropping the partition token
/// (`store.v1.east.3.{video}.comment` → `live.v1.east.{video}.comment`), so viewers'
/// subjects do not depend on partitions.
pub fn republish(region: &Region, p: Partition) -> (String, String) {
    (
        format!("store.v1.{region}.{p}.*.*"),
        format!("live.v1.{region}.{{{{wildcard(1)}}}}.{{{{wildcard(2)}}}}"),
    )
}

/// Everything ingest clients may publish (the publishers' queue subscription).
pub const INGEST_ALL: &str = "ingest.v1.*.*";
/// Queue group of the publishers on [`INGEST_ALL`]; with gateways, the local region's
/// publishers answer first.
pub const INGEST_QUEUE: &str = "publisher";

/// Where a region's publisher stores a comment (`p` is the video's partition).
pub fn store_comment(region: &Region, p: Partition, video: &VideoId) -> String {
    format!("store.v1.{region}.{p}.{video}.comment")
}

/// The video's counter in a region's LIKES stream (`p` is the video's partition).
pub fn likes_counter(region: &Region, p: Partition, video: &VideoId) -> String {
    format!("likes.v1.{region}.{p}.{video}")
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

/// A region's viewer total of a video (`ViewerTotal`), from the publisher owning its
/// shard.
pub fn live_viewers(region: &Region, video: &VideoId) -> String {
    format!("live.v1.{region}.{video}.viewers")
}

// --- Counts the region's publishers sum (viewers per video, members online) -----------

/// Shards of a region's count reports: an id's counts go to shard
/// `fnv1a_32(id) % REPORT_SHARDS`, and (viewer counts) one publisher of the region
/// publishes the shard's totals. Fixed, so frontends and publishers of any version agree.
pub const REPORT_SHARDS: u32 = 16;

/// The report shard of an id (a video's or a member's).
pub fn report_shard(id: &str) -> u32 {
    crate::partitions::fnv1a_32(id.as_bytes()) % REPORT_SHARDS
}

/// What a count report counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counted {
    /// Viewers per video: `viewers.report.v1.{region}.{shard}`.
    Viewers,
    /// Connections per member: `presence.report.v1.{region}.{shard}`.
    Members,
}

impl Counted {
    fn root(self) -> &'static str {
        match self {
            Counted::Viewers => "viewers.report.v1.",
            Counted::Members => "presence.report.v1.",
        }
    }
}

/// A frontend's counts of the ids of one shard (`CountReport`).
pub fn count_report(counted: Counted, region: &Region, shard: u32) -> String {
    format!("{}{region}.{shard}", counted.root())
}

/// Every shard's reports of a region: what each of its publishers subscribes to.
pub fn count_reports_all(counted: Counted, region: &Region) -> String {
    format!("{}{region}.*", counted.root())
}

/// Splits `{root}{region}.{shard}` into `(region, shard)`.
pub fn parse_count_report(counted: Counted, subject: &str) -> Option<(&str, u32)> {
    let rest = subject.strip_prefix(counted.root())?;
    let (region, shard) = rest.split_once('.')?;
    let shard: u32 = shard.parse().ok()?;
    (shard < REPORT_SHARDS).then_some((region, shard))
}

/// Asks the region's publishers which frontends hold members online (`MemberQuery`,
/// request-reply, queue group [`INGEST_QUEUE`]): `presence.query.v1.{region}`.
pub fn presence_query(region: &Region) -> String {
    format!("presence.query.v1.{region}")
}

/// The region's publishers taking part in summing viewer counts (`Aggregator`).
pub fn viewer_aggregators(region: &Region) -> String {
    format!("viewers.aggregators.v1.{region}")
}

/// Tombstones of deleted comments as republished by JetStream.
pub fn live_deleted(region: &Region, video: &VideoId) -> String {
    format!("live.v1.{region}.{video}.deleted")
}

/// Ingest of likes (request-reply, answered with `IngestReply`).
pub fn ingest_like(video: &VideoId) -> String {
    format!("ingest.v1.{video}.like")
}

/// Batched ingest of likes of one video (`LikeBatch`, answered with `IngestReply`).
pub fn ingest_like_batch(video: &VideoId) -> String {
    format!("ingest.v1.{video}.likes")
}

/// Ingest of comments (request-reply, answered with `IngestReply`).
pub fn ingest_comment(video: &VideoId) -> String {
    format!("ingest.v1.{video}.comment")
}

/// Moderation over ingest (request-reply, answered with `IngestReply`): `kind` is one of
/// [`IngestKind::DeleteComment`], [`IngestKind::Ban`], [`IngestKind::SlowMode`].
pub fn ingest_moderation(video: &VideoId, kind: IngestKind) -> String {
    format!("ingest.v1.{video}.{}", kind.token())
}

/// What arrives on a `live.v1.*.{video}.*` subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LiveKind {
    Comment,
    Likes,
    /// A region's viewer total (`ViewerTotal`).
    Viewers,
    /// A comment's tombstone.
    Deleted,
}

/// What an ingest subject asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IngestKind {
    Like,
    /// Many likes of one video at once (`LikeBatch`).
    LikeBatch,
    Comment,
    DeleteComment,
    Ban,
    SlowMode,
}

impl IngestKind {
    /// The subject's last token.
    pub fn token(self) -> &'static str {
        match self {
            IngestKind::Like => "like",
            IngestKind::LikeBatch => "likes",
            IngestKind::Comment => "comment",
            IngestKind::DeleteComment => "delete_comment",
            IngestKind::Ban => "ban",
            IngestKind::SlowMode => "slow_mode",
        }
    }
}

/// Splits `live.v1.{region}.{video}.{kind}` into `(region, video, kind)`.
pub fn parse_live(subject: &str) -> Option<(&str, &str, LiveKind)> {
    let rest = subject.strip_prefix("live.v1.")?;
    let (region, rest) = rest.split_once('.')?;
    let (video, kind) = rest.split_once('.')?;
    let kind = match kind {
        "comment" => LiveKind::Comment,
        "likes" => LiveKind::Likes,
        "viewers" => LiveKind::Viewers,
        "deleted" => LiveKind::Deleted,
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
        "likes" => IngestKind::LikeBatch,
        "comment" => IngestKind::Comment,
        "delete_comment" => IngestKind::DeleteComment,
        "ban" => IngestKind::Ban,
        "slow_mode" => IngestKind::SlowMode,
        _ => return None,
    };
    Some((VideoId::parse(video).ok()?, kind))
}

// --- Conversations (the platform) ---------------------------------------------------
//
// Their own subject roots, `conv.v1.` (live) and `ingest.conv.v1.` (ingest), so that no
// wildcard of the video path matches them by accident: not the frontends' per-video
// `live.v1.*.{video}.*` (a conversation id may equal a video id), nor `live.v1.>`, nor
// the publishers' `ingest.v1.*.*` / `ingest.v1.>`. Read receipts are in their own KV
// bucket, `RECEIPTS_{region}` (`$KV.RECEIPTS_{region}.{conversation}.{user}`).

/// What happens in a conversation, on its live and ingest subjects (the last token).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConversationEvent {
    /// A typing indicator (`Typing`; ingest `TypingRequest`). Not stored.
    Typing,
    /// A read receipt (`ReadReceipt`; ingest `ReadRequest`). Stored in `RECEIPTS_{region}`.
    Read,
}

impl ConversationEvent {
    /// The subject's last token, also the SSE event name (`typing`, `read`).
    pub fn token(self) -> &'static str {
        match self {
            ConversationEvent::Typing => "typing",
            ConversationEvent::Read => "read",
        }
    }

    fn parse(token: &str) -> Option<Self> {
        match token {
            "typing" => Some(ConversationEvent::Typing),
            "read" => Some(ConversationEvent::Read),
            _ => None,
        }
    }
}

/// Live events of a conversation accepted in `region` (core NATS, crossing regions
/// through the gateways by interest): `conv.v1.{region}.{conversation}.{typing|read}`.
pub fn conversation_live(
    region: &Region,
    conversation: &ConversationId,
    event: ConversationEvent,
) -> String {
    format!("conv.v1.{region}.{conversation}.{}", event.token())
}

/// Everything live about one conversation from every region: a frontend's single
/// subscription per conversation topic.
pub fn conversation_live_all(conversation: &ConversationId) -> String {
    format!("conv.v1.*.{conversation}.*")
}

/// Splits `conv.v1.{region}.{conversation}.{typing|read}`; validates the conversation.
pub fn parse_conversation_live(subject: &str) -> Option<(&str, ConversationId, ConversationEvent)> {
    let rest = subject.strip_prefix("conv.v1.")?;
    let (region, rest) = rest.split_once('.')?;
    let (conversation, event) = rest.split_once('.')?;
    Some((
        region,
        ConversationId::parse(conversation).ok()?,
        ConversationEvent::parse(event)?,
    ))
}

/// Ingest of a conversation event (request-reply, answered with `IngestReply`):
/// `ingest.conv.v1.{conversation}.{typing|read}`.
pub fn conversation_ingest(conversation: &ConversationId, event: ConversationEvent) -> String {
    format!("ingest.conv.v1.{conversation}.{}", event.token())
}

/// Every conversation ingest subject (the publishers' queue subscription, group
/// [`INGEST_QUEUE`]).
pub const CONVERSATION_INGEST_ALL: &str = "ingest.conv.v1.*.*";

/// Splits `ingest.conv.v1.{conversation}.{typing|read}`; validates the conversation.
pub fn parse_conversation_ingest(subject: &str) -> Option<(ConversationId, ConversationEvent)> {
    let rest = subject.strip_prefix("ingest.conv.v1.")?;
    let (conversation, event) = rest.split_once('.')?;
    Some((
        ConversationId::parse(conversation).ok()?,
        ConversationEvent::parse(event)?,
    ))
}

/// The region's KV bucket of read receipts (latest per conversation and user).
pub fn receipts_bucket(region: &Region) -> String {
    format!("RECEIPTS_{region}")
}

/// The stream behind a region's receipts bucket (what other regions mirror, as
/// `KV_RECEIPTS_{region}_{other}`; see [`readable_stream`]).
pub fn receipts_stream(region: &Region) -> String {
    format!("KV_RECEIPTS_{region}")
}

/// The key of `user`'s receipt in `conversation`: `{conversation}.{user}`.
pub fn receipt_key(conversation: &ConversationId, user: &UserId) -> String {
    format!("{conversation}.{user}")
}

/// Every receipt of one conversation in `region`'s bucket, as stored
/// (`$KV.RECEIPTS_{region}.{conversation}.*`): the subject filter of a snapshot read.
pub fn receipts_of(region: &Region, conversation: &ConversationId) -> String {
    format!("$KV.RECEIPTS_{region}.{conversation}.*")
}

/// Splits `$KV.RECEIPTS_{region}.{conversation}.{user}` into the region, the
/// conversation and the user; `None` for anything else.
pub fn parse_receipt(subject: &str) -> Option<(&str, ConversationId, UserId)> {
    let rest = subject.strip_prefix("$KV.RECEIPTS_")?;
    let (region, key) = rest.split_once('.')?;
    let (conversation, user) = key.split_once('.')?;
    Region::parse(region).ok()?;
    Some((
        region,
        ConversationId::parse(conversation).ok()?,
        UserId::parse(user).ok()?,
    ))
}

// --- Members' presence and stream connections ---------------------------------------
//
// Their own roots, `presence.v1.`, `presence.report.v1.`, `presence.query.v1.` and
// `stream.v1.`, so that no video or conversation wildcard matches them.

/// A frontend's state of `member` (`MemberPresence`): `presence.v1.{region}.{member}`.
pub fn member_presence(region: &Region, member: &MemberId) -> String {
    format!("presence.v1.{region}.{member}")
}

/// Every frontend's state of `member`, in every region: a frontend's one subscription
/// per `presence:{member}` topic.
pub fn member_presence_all(member: &MemberId) -> String {
    format!("presence.v1.*.{member}")
}

/// Splits `presence.v1.{region}.{member}`.
pub fn parse_member_presence(subject: &str) -> Option<(&str, MemberId)> {
    let rest = subject.strip_prefix("presence.v1.")?;
    let (region, member) = rest.split_once('.')?;
    Some((region, MemberId::parse(member).ok()?))
}

/// Changes of connection `connection` held by the frontend whose key is `node`
/// (request-reply): `stream.v1.{node}.{connection}`.
pub fn stream_control(node: &str, connection: &str) -> String {
    format!("stream.v1.{node}.{connection}")
}

/// Every connection of frontend `node`: its one subscription.
pub fn stream_control_all(node: &str) -> String {
    format!("stream.v1.{node}.*")
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
            parse_ingest(&ingest_like_batch(&v)),
            Some((v.clone(), IngestKind::LikeBatch))
        );
        assert_eq!(
            parse_ingest(&ingest_comment(&v)),
            Some((v.clone(), IngestKind::Comment))
        );
        assert_eq!(parse_ingest("ingest.v1.a.b.like"), None);
        assert_eq!(parse_ingest("ingest.v1.a.share"), None);
        for kind in [
            IngestKind::DeleteComment,
            IngestKind::Ban,
            IngestKind::SlowMode,
        ] {
            assert_eq!(
                parse_ingest(&ingest_moderation(&v, kind)),
                Some((v.clone(), kind))
            );
        }
        assert_eq!(
            parse_live(&live_deleted(&east, &v)),
            Some(("east", "v-1_A", LiveKind::Deleted))
        );
        assert_eq!(
            parse_live(&live_viewers(&east, &v)),
            Some(("east", "v-1_A", LiveKind::Viewers))
        );
        assert_eq!(parse_live("live.v1.e.a.presence"), None);
        assert_eq!(parse_live("live.v2.e.a.comment"), None);
        assert_eq!(parse_live("live.v1.e.a.b.comment"), None);
    }

    #[test]
    fn count_report_subjects() {
        let east = Region::parse("east").unwrap();
        for counted in [Counted::Viewers, Counted::Members] {
            for shard in 0..REPORT_SHARDS {
                assert_eq!(
                    parse_count_report(counted, &count_report(counted, &east, shard)),
                    Some(("east", shard))
                );
            }
        }
        assert_eq!(
            count_report(Counted::Members, &east, 3),
            "presence.report.v1.east.3"
        );
        assert_eq!(
            parse_count_report(Counted::Viewers, "presence.report.v1.east.3"),
            None
        );
        assert_eq!(
            parse_count_report(Counted::Viewers, "viewers.report.v1.east.16"),
            None
        );
        assert_eq!(
            parse_count_report(Counted::Viewers, "viewers.report.v1.east.x"),
            None
        );
        assert_eq!(
            parse_count_report(Counted::Viewers, "viewers.report.v1.east.1.2"),
            None
        );
        assert_eq!(
            count_reports_all(Counted::Viewers, &east),
            "viewers.report.v1.east.*"
        );
        // Stable: the shard is part of the wire protocol between frontends and publishers.
        assert_eq!(report_shard("a"), 0xe40c292c % 16);
        let spread: std::collections::HashSet<u32> =
            (0..200).map(|i| report_shard(&format!("v{i}"))).collect();
        assert_eq!(spread.len(), REPORT_SHARDS as usize);
    }

    #[test]
    fn moderation_keys() {
        let v = VideoId::parse("v1").unwrap();
        let u = crate::UserId::parse("bob").unwrap();
        let east = Region::parse("east").unwrap();
        let subject = format!("$KV.{}.{}", moderation_bucket(&east), ban_key(&v, &u));
        assert_eq!(
            parse_moderation(&subject),
            Some(("east", ModerationKey::Ban(v.clone(), u)))
        );
        let subject = format!("$KV.{}.{}", moderation_bucket(&east), slow_mode_key(&v));
        assert_eq!(
            parse_moderation(&subject),
            Some(("east", ModerationKey::SlowMode(v)))
        );
        for bad in [
            "$KV.MODERATION_east.ban.v1",
            "$KV.MODERATION_east.ban.v1.bob.x",
            "$KV.MODERATION_east.slow.v1.x",
            "$KV.MODERATION_east.mute.v1",
            "$KV.LIKE_KEYS_east.ban.v1.bob",
            "$KV.MODERATION_east.ban.v*.bob",
        ] {
            assert_eq!(parse_moderation(bad), None, "{bad}");
        }
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
        let p = crate::Partitions::new(4).unwrap().all().nth(2).unwrap();
        assert_eq!(comments_stream(&east, p), "COMMENTS_east_p2");
        assert_eq!(
            readable_stream(comments_stream(&east, p), &east, &west),
            "COMMENTS_east_p2_west"
        );
        assert_eq!(
            readable_stream(likes_stream(&west, p), &west, &west),
            "LIKES_west_p2"
        );
        let v = VideoId::parse("v1").unwrap();
        assert_eq!(store_comment(&east, p, &v), "store.v1.east.2.v1.comment");
        assert_eq!(likes_counter(&east, p, &v), "likes.v1.east.2.v1");
        assert_eq!(
            republish(&east, p),
            (
                "store.v1.east.2.*.*".to_owned(),
                "live.v1.east.{{wildcard(1)}}.{{wildcard(2)}}".to_owned()
            )
        );
    }

    #[test]
    fn conversation_subjects_round_trip() {
        let c = ConversationId::parse("c-1_A").unwrap();
        let u = UserId::parse("bob").unwrap();
        let east = Region::parse("east").unwrap();
        for event in [ConversationEvent::Typing, ConversationEvent::Read] {
            let live = conversation_live(&east, &c, event);
            assert_eq!(live, format!("conv.v1.east.c-1_A.{}", event.token()));
            assert_eq!(
                parse_conversation_live(&live),
                Some(("east", c.clone(), event))
            );
            let ingest = conversation_ingest(&c, event);
            assert_eq!(parse_conversation_ingest(&ingest), Some((c.clone(), event)));
            // Never a video subject, nor a video ingest subject.
            assert_eq!(parse_live(&live), None);
            assert_eq!(parse_ingest(&ingest), None);
        }
        assert_eq!(conversation_live_all(&c), "conv.v1.*.c-1_A.*");
        for bad in [
            "conv.v1.east.c.share",
            "conv.v1.east.c.d.read",
            "conv.v1.east.c*.read",
            "live.v1.east.c.read",
            "conv.v2.east.c.read",
        ] {
            assert_eq!(parse_conversation_live(bad), None, "{bad}");
        }
        for bad in [
            "ingest.conv.v1.c.like",
            "ingest.conv.v1.c.d.read",
            "ingest.v1.c.read",
            "ingest.conv.v1.>.read",
        ] {
            assert_eq!(parse_conversation_ingest(bad), None, "{bad}");
        }
        let key = format!("$KV.{}.{}", receipts_bucket(&east), receipt_key(&c, &u));
        assert_eq!(key, "$KV.RECEIPTS_east.c-1_A.bob");
        assert_eq!(parse_receipt(&key), Some(("east", c.clone(), u)));
        assert_eq!(receipts_of(&east, &c), "$KV.RECEIPTS_east.c-1_A.*");
        assert_eq!(receipts_stream(&east), "KV_RECEIPTS_east");
        for bad in [
            "$KV.RECEIPTS_east.c",
            "$KV.RECEIPTS_east.c.bob.x",
            "$KV.RECEIPTS_ea_st.c.bob",
            "$KV.MODERATION_east.c.bob",
        ] {
            assert_eq!(parse_receipt(bad), None, "{bad}");
        }
    }

    /// No wildcard the video path subscribes to, or the NATS permissions grant for it,
    /// matches a conversation subject (NATS matching: `*` one token, `>` the rest).
    #[test]
    fn no_video_wildcard_matches_a_conversation_subject() {
        fn matches(pattern: &str, subject: &str) -> bool {
            let (mut p, mut s) = (pattern.split('.'), subject.split('.'));
            loop {
                match (p.next(), s.next()) {
                    (Some(">"), Some(_)) => return true,
                    (Some("*"), Some(_)) => {}
                    (Some(a), Some(b)) if a == b => {}
                    (None, None) => return true,
                    _ => return false,
                }
            }
        }
        let c = ConversationId::parse("x").unwrap();
        let v = VideoId::parse("x").unwrap();
        let east = Region::parse("east").unwrap();
        let p = crate::Partitions::new(1).unwrap().all().next().unwrap();
        let video_wildcards = [
            live_all(&v),
            "live.v1.>".into(),
            "live.v1.*.*.viewers".into(),
            count_reports_all(Counted::Viewers, &east),
            count_reports_all(Counted::Members, &east),
            "live.v1.*.*.likes".into(),
            INGEST_ALL.into(),
            "ingest.v1.>".into(),
            "ingest.v1.*.like".into(),
            "ingest.v1.*.comment".into(),
            store_comments_all(&east, p),
            store_deleted_all(&east, p),
            republish(&east, p).0,
            likes_all(&east, p),
            "store.v1.*.*.*.comment".into(),
            "likes.v1.*.*.*".into(),
            moderation_all(&east),
        ];
        let ours = [
            conversation_live(&east, &c, ConversationEvent::Typing),
            conversation_live(&east, &c, ConversationEvent::Read),
            conversation_ingest(&c, ConversationEvent::Typing),
            conversation_ingest(&c, ConversationEvent::Read),
            format!("$KV.{}.{}", receipts_bucket(&east), "x.bob"),
        ];
        for pattern in &video_wildcards {
            for subject in &ours {
                assert!(!matches(pattern, subject), "{pattern} matches {subject}");
            }
        }
        // And ours match only ours.
        assert!(matches(&conversation_live_all(&c), &ours[0]));
        assert!(matches(CONVERSATION_INGEST_ALL, &ours[2]));
        assert!(!matches(CONVERSATION_INGEST_ALL, &ours[0]));
        assert!(!matches(&conversation_live_all(&c), &ingest_like(&v)));
    }

    #[test]
    fn presence_and_stream_subjects() {
        let east = Region::parse("east").unwrap();
        let m = MemberId::parse("m-1").unwrap();
        assert_eq!(member_presence(&east, &m), "presence.v1.east.m-1");
        assert_eq!(member_presence_all(&m), "presence.v1.*.m-1");
        assert_eq!(
            parse_member_presence("presence.v1.east.m-1"),
            Some(("east", m.clone()))
        );
        assert_eq!(parse_member_presence("presence.v1.east.m.1"), None);
        assert_eq!(presence_query(&east), "presence.query.v1.east");
        // A watcher's wildcard never matches the reports or queries of the publishers.
        assert!(!member_presence_all(&m).contains("report") && m.as_str() != "report");
        assert_eq!(stream_control("0a1b2c3d", "x"), "stream.v1.0a1b2c3d.x");
    }
}
