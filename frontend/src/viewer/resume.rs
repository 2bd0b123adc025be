//! Resuming a viewer from its `Last-Event-ID`: what the room's snapshot decides alone
//! (a made-up cursor, a cursor the ring still covers), the reads from [`History`] when
//! the ring does not reach back far enough, and the merge of the regions' missed
//! comments into one stream whose every `id:` is the position right after it.

use std::collections::VecDeque;

use live_proto::{Regions, VideoId};

use crate::node::Node;
use crate::room::{Room, Snapshot};
use crate::sse::{self, Frame};
use crate::store::{History, Stored};

#[derive(Debug)]
pub enum Resume {
    /// Comments after the cursor; `complete` if they reach the live position.
    Frames { frames: Vec<Frame>, complete: bool },
    /// History before the cursor is gone (or the cursor is unknown).
    Reset(&'static str),
    /// History is unavailable right now: end after the snapshot, the client retries.
    Retry,
}

/// Resumes a viewer of `room` from `cursor`: what the snapshot decides, else what
/// history has (at most `--max-replay` comments, a bounded number of readers per node
/// at a time, so a reconnect storm queues instead of flooding JetStream).
///
/// A reconnect storm into a room whose ring does not reach back to the viewers' cursors
/// (typically a room the storm itself opened: it knows only what came after it opened)
/// reads JetStream once, not once per viewer: the first viewer reads and puts what it
/// read in front of the ring ([`Room::prefill`]); the others wait for it
/// ([`Room::backfill_turn`]) and take it from memory. Counted in
/// `frontend_resumes_total{from}`: `memory`, `history`, `reset`, `retry`.
pub async fn resume(node: &Node, room: &Room, cursor: &[u64], snap: &Snapshot) -> Resume {
    if let Some(outcome) = from_snapshot(&node.regions, cursor, snap) {
        return counted(outcome, "memory");
    }
    let capacity = node.settings.replay_buffer;
    let turn = room.backfill_turn(capacity).await;
    // Where the ring started when this viewer joined: what it lacks ends there.
    let upto: Vec<u64> = snap.positions.iter().map(|p| p.complete_since).collect();
    if turn.is_some()
        && let Some(mut frames) = room.ring_between(cursor, &upto)
    {
        // Another viewer's read filled the ring meanwhile.
        frames.extend(snap.ring.iter().cloned());
        return counted(
            Resume::Frames {
                frames,
                complete: true,
            },
            "memory",
        );
    }
    let Ok(_permit) = node.replays.acquire().await else {
        return counted(Resume::Retry, "retry");
    };
    let deleted = |r, seq| room.is_deleted(r, seq);
    let max = node.settings.max_replay;
    let outcome = from_history(
        &*node.history,
        &node.regions,
        &room.video,
        cursor,
        snap,
        max,
        deleted,
    )
    .await;
    if turn.is_some()
        && let Resume::Frames {
            frames,
            complete: true,
        } = &outcome
    {
        let n = room.prefill(cursor[0], upto[0], frames, capacity);
        metrics::counter!("frontend_ring_prefilled_comments_total").increment(n as u64);
    }
    counted(outcome, "history")
}

/// Counts a resume in `frontend_resumes_total{from}` (`from` if it replays comments).
fn counted(outcome: Resume, from: &'static str) -> Resume {
    let label = match &outcome {
        Resume::Frames { .. } => from,
        Resume::Reset(_) => "reset",
        Resume::Retry => "retry",
    };
    metrics::counter!("frontend_resumes_total", "from" => label).increment(1);
    outcome
}

/// What the snapshot decides without reading history: `None` if history must be read.
pub fn from_snapshot(regions: &Regions, cursor: &[u64], snap: &Snapshot) -> Option<Resume> {
    // A cursor beyond the newest comment is unknown (made up), except in another region's
    // sequence: a viewer who saw that region's comments live may be ahead of this
    // region's mirror of them (the mirror lags a little, and stalls while the gateway
    // between the regions is cut). It continues from its own position there.
    let own = regions.own_index();
    let unknown = cursor
        .iter()
        .zip(&snap.positions)
        .enumerate()
        .any(|(r, (c, p))| r == own && p.known && *c > p.last_seq);
    if unknown {
        return Some(Resume::Reset("unknown resume point"));
    }
    snap.covers_cursor.then(|| Resume::Frames {
        frames: snap.ring.clone(),
        complete: true,
    })
}

/// Reads what the ring does not cover from `history`, at most `max` comments, leaving
/// out those `is_deleted(region, seq)`; then the ring's comments after them.
pub async fn from_history(
    history: &dyn History,
    regions: &Regions,
    video: &VideoId,
    cursor: &[u64],
    snap: &Snapshot,
    max: usize,
    is_deleted: impl Fn(usize, u64) -> bool,
) -> Resume {
    let mut partial = false;
    let mut missed: Vec<VecDeque<Stored>> = Vec::with_capacity(cursor.len());
    for (r, (&after, position)) in cursor.iter().zip(&snap.positions).enumerate() {
        let upto = position.complete_since;
        if after >= upto {
            missed.push(VecDeque::new());
            continue;
        }
        let first = match history.first_comment_seq(r, video).await {
            Ok(first) => first,
            Err(e) => {
                tracing::warn!(%video, region = r, error = %e, "replay unavailable");
                return Resume::Retry;
            }
        };
        let truncated = match first {
            // Sequences are per stream, not per video: position 0 (the viewer saw none of
            // this region's comments, e.g. "east:0.west:7") is before any of them.
            Some(first) => after > 0 && first > after + 1,
            None => after < position.last_seq,
        };
        if truncated {
            return Resume::Reset("history before the resume point is no longer retained");
        }
        match history.comments(r, video, after, upto, max).await {
            Ok(mut comments) => {
                let reached = comments.last().map_or(after, |(seq, _)| *seq);
                if reached < upto && comments.len() >= max {
                    partial = true;
                }
                // Deleted by a moderator: never replayed.
                comments.retain(|(seq, _)| !is_deleted(r, *seq));
                missed.push(comments.into());
            }
            Err(e) => {
                tracing::warn!(%video, region = r, error = %e, "replay failed");
                return Resume::Retry;
            }
        }
    }
    let topic = format!("video:{video}");
    let (frames, complete) = merge(&topic, regions, cursor, missed, &snap.ring, max, partial);
    Resume::Frames { frames, complete }
}

/// Merges the regions' missed comments by acceptance time (each region in its own
/// order), at most `max`; every frame's SSE id is the viewer's position right after it.
/// If all of them fit (and no read was `partial`), the ring's comments after them
/// follow and the result is complete.
pub fn merge(
    topic: &str,
    regions: &Regions,
    cursor: &[u64],
    mut missed: Vec<VecDeque<Stored>>,
    ring: &[Frame],
    max: usize,
    partial: bool,
) -> (Vec<Frame>, bool) {
    let mut running = cursor.to_vec();
    let mut frames = Vec::new();
    while frames.len() < max {
        let next = missed
            .iter()
            .enumerate()
            .filter_map(|(r, q)| q.front().map(|(_, c)| (c.accepted_at_ms, r)))
            .min();
        let Some((_, r)) = next else { break };
        let Some((seq, comment)) = missed[r].pop_front() else {
            break;
        };
        running[r] = seq;
        frames.push(sse::comment(
            topic,
            r as u8,
            seq,
            &regions.comment_id(r, seq),
            &regions.format_cursor(&running),
            &comment,
        ));
    }
    let complete = !partial && missed.iter().all(VecDeque::is_empty);
    if complete {
        // Then the ring's comments, which start right after each region's replay.
        frames.extend(
            ring.iter()
                .filter(|f| f.seq > running[usize::from(f.region)])
                .cloned(),
        );
    }
    (frames, complete)
}

#[cfg(test)]
mod tests {
    use live_proto::v1;

    use super::*;
    use crate::room::{Position, Room};
    use crate::store::MemoryHistory;

    fn comment(text: &str, at: i64) -> v1::Comment {
        v1::Comment {
            user: "u".into(),
            text: text.into(),
            accepted_at_ms: at,
            ..Default::default()
        }
    }

    fn ring_frame(regions: &Regions, r: usize, seq: u64, at: i64) -> Frame {
        let id = regions.comment_id(r, seq);
        sse::comment("video:v", r as u8, seq, &id, &id, &comment("ring", at))
    }

    /// A snapshot at `last` in every region whose ring holds `ring` (and so is complete
    /// since just before its oldest frame, or `last` if empty).
    fn snapshot(last: &[u64], complete_since: &[u64], ring: Vec<Frame>, covers: bool) -> Snapshot {
        Snapshot {
            likes: 0,
            viewers: 1,
            positions: last
                .iter()
                .zip(complete_since)
                .map(|(&l, &c)| Position {
                    last_seq: l,
                    known: true,
                    complete_since: c,
                })
                .collect(),
            ring,
            covers_cursor: covers,
        }
    }

    fn texts(frames: &[Frame]) -> Vec<String> {
        frames
            .iter()
            .map(|f| {
                let s = std::str::from_utf8(&f.bytes).unwrap();
                let data = s.split("data: ").nth(1).unwrap();
                let v: serde_json::Value = serde_json::from_str(data.trim()).unwrap();
                v["text"].as_str().unwrap().to_owned()
            })
            .collect()
    }

    fn ids(frames: &[Frame]) -> Vec<String> {
        frames
            .iter()
            .map(|f| {
                let s = std::str::from_utf8(&f.bytes).unwrap();
                s.lines()
                    .next()
                    .unwrap()
                    .trim_start_matches("id: ")
                    .to_owned()
            })
            .collect()
    }

    #[test]
    fn a_cursor_beyond_this_regions_newest_comment_is_unknown() {
        let regions = Regions::single("local");
        let snap = snapshot(&[5], &[5], vec![], true);
        assert!(matches!(
            from_snapshot(&regions, &[6], &snap),
            Some(Resume::Reset("unknown resume point"))
        ));
        assert!(matches!(
            from_snapshot(&regions, &[5], &snap),
            Some(Resume::Frames { complete: true, .. })
        ));
    }

    #[test]
    fn ahead_of_another_regions_mirror_is_fine() {
        let regions = Regions::new("east", &["east".into(), "west".into()]).unwrap();
        // West's mirror here is at 3; the viewer saw west's 7 live.
        let snap = snapshot(&[5, 3], &[5, 3], vec![], true);
        assert!(matches!(
            from_snapshot(&regions, &[5, 7], &snap),
            Some(Resume::Frames { complete: true, .. })
        ));
        assert!(matches!(
            from_snapshot(&regions, &[6, 0], &snap),
            Some(Resume::Reset(_))
        ));
    }

    #[test]
    fn the_ring_alone_when_it_covers_the_cursor() {
        let regions = Regions::single("local");
        let ring = vec![ring_frame(&regions, 0, 4, 1), ring_frame(&regions, 0, 5, 2)];
        let snap = snapshot(&[5], &[3], ring, false);
        assert!(
            from_snapshot(&regions, &[2], &snap).is_none(),
            "needs history"
        );
    }

    #[tokio::test]
    async fn history_fills_in_before_the_ring_without_gap_or_duplicate() {
        let regions = Regions::single("local");
        let video = VideoId::parse("v").unwrap();
        let store = MemoryHistory::new(1);
        for i in 1..=6 {
            store.add_comment(0, &video, comment(&format!("c{i}"), i));
            store.skip(0); // another video's message in the same stream
        }
        // The ring holds 9 and 11 (c5, c6): complete since 7.
        let ring = vec![
            ring_frame(&regions, 0, 9, 5),
            ring_frame(&regions, 0, 11, 6),
        ];
        let snap = snapshot(&[11], &[7], ring, false);
        let r = from_history(&store, &regions, &video, &[3], &snap, 100, |_, _| false).await;
        let Resume::Frames { frames, complete } = r else {
            panic!("{r:?}")
        };
        assert!(complete);
        assert_eq!(texts(&frames), ["c3", "c4", "ring", "ring"]);
        assert_eq!(ids(&frames), ["5", "7", "9", "11"]);
    }

    #[tokio::test]
    async fn a_storm_into_a_new_room_reads_history_once() {
        let regions = Regions::single("local");
        let video = VideoId::parse("v").unwrap();
        let store = MemoryHistory::new(1);
        for i in 1..=6 {
            store.add_comment(0, &video, comment(&format!("c{i}"), i));
        }
        // A room opened when 6 was the newest, one live comment since.
        let room = Room::new(video.clone(), 64, 1);
        let seven = store.add_comment(0, &video, comment("c7", 7));
        room.open_at_for_tests(&regions, 6, &[(seven, comment("c7", 7))], 64);
        let mut replays = Vec::new();
        // 100 viewers of a dead node, all last saw comment 3.
        for _ in 0..100 {
            let (_, snap) = room.join(Some(&[3]));
            let upto = [snap.positions[0].complete_since];
            let frames = match room.ring_between(&[3], &upto) {
                Some(mut frames) => {
                    frames.extend(snap.ring.iter().cloned());
                    frames
                }
                None => {
                    let r = from_history(&store, &regions, &video, &[3], &snap, 100, |_, _| false)
                        .await;
                    let Resume::Frames { frames, complete } = r else {
                        panic!("{r:?}")
                    };
                    assert!(complete);
                    room.prefill(3, upto[0], &frames, 64);
                    frames
                }
            };
            replays.push(ids(&frames));
        }
        assert_eq!(
            store.reads(),
            2,
            "one first-sequence check, one comments read"
        );
        assert!(
            replays.iter().all(|r| r == &["4", "5", "6", "7"]),
            "{replays:?}"
        );
    }

    #[tokio::test]
    async fn deleted_comments_are_never_replayed() {
        let regions = Regions::single("local");
        let video = VideoId::parse("v").unwrap();
        let store = MemoryHistory::new(1);
        for i in 1..=3 {
            store.add_comment(0, &video, comment(&format!("c{i}"), i));
        }
        let snap = snapshot(&[3], &[3], vec![], false);
        let r = from_history(&store, &regions, &video, &[0], &snap, 100, |_, s| s == 2).await;
        let Resume::Frames { frames, .. } = r else {
            panic!("{r:?}")
        };
        assert_eq!(texts(&frames), ["c1", "c3"]);
    }

    #[tokio::test]
    async fn a_resume_point_no_longer_retained_resets() {
        let regions = Regions::single("local");
        let video = VideoId::parse("v").unwrap();
        let store = MemoryHistory::new(1);
        for i in 1..=5 {
            store.add_comment(0, &video, comment(&format!("c{i}"), i));
        }
        store.retain_from(0, &video, 4);
        let snap = snapshot(&[5], &[5], vec![], false);
        let r = from_history(&store, &regions, &video, &[2], &snap, 100, |_, _| false).await;
        assert!(matches!(r, Resume::Reset(_)), "{r:?}");
        // Right before the oldest retained one: nothing lost, so no reset.
        let r = from_history(&store, &regions, &video, &[3], &snap, 100, |_, _| false).await;
        assert!(matches!(r, Resume::Frames { complete: true, .. }), "{r:?}");
    }

    #[tokio::test]
    async fn an_unavailable_store_means_retry() {
        let regions = Regions::single("local");
        let video = VideoId::parse("v").unwrap();
        let store = MemoryHistory::new(1);
        store.add_comment(0, &video, comment("c1", 1));
        store.set_unavailable(true);
        let snap = snapshot(&[1], &[1], vec![], false);
        let r = from_history(&store, &regions, &video, &[0], &snap, 100, |_, _| false).await;
        assert!(matches!(r, Resume::Retry), "{r:?}");
    }

    #[tokio::test]
    async fn a_long_replay_is_partial_and_ends_where_the_client_continues() {
        let regions = Regions::single("local");
        let video = VideoId::parse("v").unwrap();
        let store = MemoryHistory::new(1);
        for i in 1..=10 {
            store.add_comment(0, &video, comment(&format!("c{i}"), i));
        }
        let ring = vec![ring_frame(&regions, 0, 11, 11)];
        let snap = snapshot(&[11], &[10], ring, false);
        let r = from_history(&store, &regions, &video, &[0], &snap, 4, |_, _| false).await;
        let Resume::Frames { frames, complete } = r else {
            panic!("{r:?}")
        };
        assert!(!complete, "the stream ends; the client resumes from c4");
        assert_eq!(texts(&frames), ["c1", "c2", "c3", "c4"]);
    }

    #[test]
    fn regions_merge_by_acceptance_time_each_in_its_own_order() {
        let regions = Regions::new("east", &["east".into(), "west".into()]).unwrap();
        let east: VecDeque<Stored> = [(10, comment("e1", 100)), (12, comment("e2", 300))].into();
        let west: VecDeque<Stored> = [(4, comment("w1", 200)), (9, comment("w2", 250))].into();
        let (frames, complete) = merge(
            "video:v",
            &regions,
            &[8, 2],
            vec![east, west],
            &[],
            100,
            false,
        );
        assert!(complete);
        assert_eq!(texts(&frames), ["e1", "w1", "w2", "e2"]);
        // Each id is the position in both regions right after that comment.
        assert_eq!(
            ids(&frames),
            [
                "east:10.west:2",
                "east:10.west:4",
                "east:10.west:9",
                "east:12.west:9"
            ]
        );
    }

    #[test]
    fn the_ring_after_a_merge_skips_what_was_replayed() {
        let regions = Regions::single("local");
        let replayed: VecDeque<Stored> = [(5, comment("c5", 5)), (6, comment("c6", 6))].into();
        let ring = vec![ring_frame(&regions, 0, 6, 6), ring_frame(&regions, 0, 7, 7)];
        let (frames, complete) =
            merge("video:v", &regions, &[4], vec![replayed], &ring, 100, false);
        assert!(complete);
        assert_eq!(ids(&frames), ["5", "6", "7"]);
    }
}
