//! Moderation: deleting a comment, banning a user from a video, and slow mode.
//!
//! **Deleting** stores a tombstone (`CommentDeleted`) on `store.v1.{region}.{video}.deleted`
//! in the moderator's region's COMMENTS stream; the comment itself stays stored until its
//! retention ends, but no frontend sends it again. Why a tombstone and not a JetStream
//! message delete: other regions keep *mirrors* of a region's stream and a mirror does not
//! replay deletes, so a viewer resuming in another region would get the comment back; a
//! deleted sequence would look to a room's gap detection (`Nats-Last-Sequence`) like a
//! comment still on its way, and to a resuming viewer like retained history that ended
//! (`reset`). A tombstone is an ordinary stored message: mirrored, republished live,
//! readable by direct get, on its own subject so the comments' sequence chain is
//! untouched. Frontends read every tombstone of a video when its room opens and drop the
//! comment from their ring, from live delivery and from every replay.
//!
//! **Bans and slow mode** are settings in the region's JetStream key-value bucket
//! `MODERATION_{region}` (keys `ban.{video}.{user}`, `slow.{video}`; value a
//! `Moderation` message), written by the moderator's region's publisher; every other
//! region keeps a mirror of that bucket's stream (like the comment streams), so a
//! setting survives restarts and reaches every region, and a region keeps enforcing what
//! it knows while cut off. Each publisher holds every region's settings in memory:
//! read from the buckets and mirrors at start and every [`RELOAD`], and updated at once
//! from a subscription to each region's bucket subjects (`$KV.MODERATION_{region}.>`), which reaches
//! every region's publishers through the gateways. Across regions, the setting with the
//! latest `at_ms` wins, so a ban set in one region can be lifted from another.
//!
//! Slow mode is counted per publisher process (last accepted comment per user and video,
//! in memory): with several publishers per region, a user may get one comment per
//! publisher per window.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, message::PublishMessage};
use futures::StreamExt;
use live_proto::subjects::{self, ModerationKey};
use live_proto::{Partitions, Regions, UserId, VideoId, v1};
use prost::Message as _;

use crate::retry;

/// Longest ban.
pub const MAX_BAN_SECS: u64 = 365 * 86_400;
/// Longest slow-mode window.
pub const MAX_SLOW_MODE_SECS: u64 = 86_400;
/// How often every region's settings are read again in full (the subscription may have
/// missed some, e.g. during a NATS reconnect).
const RELOAD: Duration = Duration::from_secs(10);
/// Slow-mode entries kept before the expired ones are swept.
const SWEEP_AT: usize = 100_000;

#[derive(Debug, thiserror::Error)]
pub enum ModerationError {
    #[error("{0}")]
    BadInput(String),
    #[error("{0}")]
    NotFound(String),
    #[error("storage is unavailable: {0}")]
    Unavailable(String),
}

/// Every region's moderation settings, latest write per key.
#[derive(Debug, Default)]
pub struct Table {
    entries: HashMap<ModerationKey, v1::Moderation>,
}

impl Table {
    /// Applies a setting read from a bucket; an older one than what is known is ignored.
    pub fn apply(&mut self, key: ModerationKey, value: v1::Moderation) {
        let newer = |old: &v1::Moderation| (value.at_ms, &value.region) > (old.at_ms, &old.region);
        match self.entries.get(&key) {
            Some(old) if !newer(old) => {}
            _ => {
                self.entries.insert(key, value);
            }
        }
    }

    /// Forgets `key` if the known setting came from `region` (its bucket lost the key).
    pub fn remove(&mut self, key: &ModerationKey, region: &str) {
        if self.entries.get(key).is_some_and(|v| v.region == region) {
            self.entries.remove(key);
        }
    }

    /// Until when (UNIX ms) `user` is banned from `video`, if now (`now_ms`) banned.
    pub fn banned_until(&self, video: &VideoId, user: &UserId, now_ms: i64) -> Option<i64> {
        let key = ModerationKey::Ban(video.clone(), user.clone());
        self.entries
            .get(&key)
            .map(|v| v.until_ms)
            .filter(|&until| until > now_ms)
    }

    /// The video's slow-mode window in seconds (0: off).
    pub fn slow_mode(&self, video: &VideoId) -> u64 {
        self.entries
            .get(&ModerationKey::SlowMode(video.clone()))
            .map_or(0, |v| v.seconds)
    }
}

/// Slow mode: when each user last commented on each video (this process).
#[derive(Debug, Default)]
pub struct SlowModeClock {
    last: HashMap<(VideoId, UserId), Instant>,
}

impl SlowModeClock {
    /// Takes the user's turn if the last one is at least `window` ago; else
    /// `Err(seconds to wait)`.
    pub fn take(
        &mut self,
        video: &VideoId,
        user: &UserId,
        window: Duration,
        now: Instant,
    ) -> Result<(), u64> {
        if window.is_zero() {
            return Ok(());
        }
        if self.last.len() >= SWEEP_AT {
            // Windows are at most a day: older turns never refuse anything.
            let day = Duration::from_secs(MAX_SLOW_MODE_SECS);
            self.last.retain(|_, at| now.duration_since(*at) < day);
        }
        let key = (video.clone(), user.clone());
        if let Some(at) = self.last.get(&key) {
            let since = now.duration_since(*at);
            if since < window {
                return Err((window - since).as_secs_f64().ceil().max(1.0) as u64);
            }
        }
        self.last.insert(key, now);
        Ok(())
    }

    /// Gives a turn back (the comment was not stored).
    pub fn give_back(&mut self, video: &VideoId, user: &UserId, taken: Instant) {
        let key = (video.clone(), user.clone());
        if self.last.get(&key) == Some(&taken) {
            self.last.remove(&key);
        }
    }
}

pub struct Moderation {
    js: jetstream::Context,
    client: async_nats::Client,
    regions: Regions,
    partitions: Partitions,
    bucket: jetstream::kv::Store,
    table: Mutex<Table>,
    slow: Mutex<SlowModeClock>,
}

impl Moderation {
    pub fn new(
        js: jetstream::Context,
        client: async_nats::Client,
        regions: Regions,
        partitions: Partitions,
        bucket: jetstream::kv::Store,
    ) -> Self {
        Self {
            js,
            client,
            regions,
            partitions,
            bucket,
            table: Mutex::new(Table::default()),
            slow: Mutex::new(SlowModeClock::default()),
        }
    }

    fn table(&self) -> std::sync::MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn slow(&self) -> std::sync::MutexGuard<'_, SlowModeClock> {
        self.slow.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Until when `user` is banned from `video` (UNIX ms), if now banned.
    pub fn banned_until(&self, video: &VideoId, user: &UserId) -> Option<i64> {
        self.table().banned_until(video, user, live_proto::now_ms())
    }

    /// Takes `user`'s slow-mode turn on `video`: `Ok(Some(at))` if taken (give it back
    /// with [`Self::give_back`] if the comment is not stored), `Ok(None)` if slow mode is
    /// off, `Err((window, seconds to wait))` if it is too early.
    pub fn slow_mode_turn(
        &self,
        video: &VideoId,
        user: &UserId,
    ) -> Result<Option<Instant>, (u64, u64)> {
        let seconds = self.table().slow_mode(video);
        if seconds == 0 {
            return Ok(None);
        }
        let now = Instant::now();
        self.slow()
            .take(video, user, Duration::from_secs(seconds), now)
            .map(|()| Some(now))
            .map_err(|wait| (seconds, wait))
    }

    pub fn give_back(&self, video: &VideoId, user: &UserId, taken: Instant) {
        self.slow().give_back(video, user, taken);
    }

    /// Bans `user` from `video` for `seconds` (0 lifts a ban), durably.
    pub async fn ban(
        &self,
        video: &VideoId,
        user: &UserId,
        seconds: u64,
        by: Option<&UserId>,
    ) -> Result<(), ModerationError> {
        if seconds > MAX_BAN_SECS {
            return Err(ModerationError::BadInput(format!(
                "seconds must be 0 to {MAX_BAN_SECS}"
            )));
        }
        let now = live_proto::now_ms();
        let until_ms = if seconds == 0 {
            0
        } else {
            now + (seconds as i64) * 1000
        };
        let value = self.setting(until_ms, seconds, by, now);
        self.put(
            ModerationKey::Ban(video.clone(), user.clone()),
            subjects::ban_key(video, user),
            value,
        )
        .await
    }

    /// Sets the video's slow mode to `seconds` (0: off), durably.
    pub async fn set_slow_mode(
        &self,
        video: &VideoId,
        seconds: u64,
        by: Option<&UserId>,
    ) -> Result<(), ModerationError> {
        if seconds > MAX_SLOW_MODE_SECS {
            return Err(ModerationError::BadInput(format!(
                "seconds must be 0 to {MAX_SLOW_MODE_SECS}"
            )));
        }
        let value = self.setting(0, seconds, by, live_proto::now_ms());
        self.put(
            ModerationKey::SlowMode(video.clone()),
            subjects::slow_mode_key(video),
            value,
        )
        .await
    }

    fn setting(
        &self,
        until_ms: i64,
        seconds: u64,
        by: Option<&UserId>,
        now: i64,
    ) -> v1::Moderation {
        v1::Moderation {
            until_ms,
            seconds,
            by: by.map(|u| u.to_string()).unwrap_or_default(),
            at_ms: now,
            region: self.regions.own().to_string(),
        }
    }

    async fn put(
        &self,
        key: ModerationKey,
        kv_key: String,
        value: v1::Moderation,
    ) -> Result<(), ModerationError> {
        let payload = bytes::Bytes::from(value.encode_to_vec());
        retry::until_deadline(retry::WRITE_DEADLINE, || {
            self.bucket.put(&kv_key, payload.clone())
        })
        .await
        .map_err(|e| ModerationError::Unavailable(e.to_string()))?;
        // In force here at once; elsewhere when the subscription or a reload brings it.
        self.table().apply(key, value);
        metrics::counter!("publisher_moderation_total", "action" => "setting").increment(1);
        Ok(())
    }

    /// Deletes comment `id` of `video`: checks that it is one of the video's stored
    /// comments, then stores its tombstone (see the module docs).
    pub async fn delete_comment(
        &self,
        video: &VideoId,
        id: &str,
        by: Option<&UserId>,
    ) -> Result<(), ModerationError> {
        let Some((r, seq)) = self.regions.parse_comment_id(id) else {
            let form = if self.regions.is_multi() {
                "\"{region}:{n}\""
            } else {
                "a number"
            };
            return Err(ModerationError::BadInput(format!(
                "invalid comment id: expected {form}, as the comment was answered with"
            )));
        };
        self.check_comment(video, id, r, seq).await?;
        let tombstone = v1::CommentDeleted {
            video: video.to_string(),
            id: id.to_owned(),
            by: by.map(|u| u.to_string()).unwrap_or_default(),
            accepted_at_ms: live_proto::now_ms(),
            region: self.regions.own().to_string(),
        };
        let payload = bytes::Bytes::from(tombstone.encode_to_vec());
        let subject = subjects::store_deleted(self.regions.own(), self.partitions.of(video), video);
        // A repeated delete within the duplicate window is stored once.
        let msg_id = format!("deleted.{video}.{id}");
        retry::until_deadline(retry::WRITE_DEADLINE, || {
            let publish = PublishMessage::build()
                .payload(payload.clone())
                .message_id(&msg_id);
            let subject = subject.clone();
            async move {
                let ack = self.js.send_publish(subject, publish).await?;
                ack.await
            }
        })
        .await
        .map_err(|e| ModerationError::Unavailable(e.to_string()))?;
        metrics::counter!("publisher_moderation_total", "action" => "delete").increment(1);
        Ok(())
    }

    /// Checks that comment `seq` of region `r` is one of `video`'s: in this region's copy
    /// of region `r`'s stream, else (another region's comment this region's mirror may
    /// not have yet) in the origin stream itself.
    async fn check_comment(
        &self,
        video: &VideoId,
        id: &str,
        r: usize,
        seq: u64,
    ) -> Result<(), ModerationError> {
        let origin = &self.regions.all()[r];
        let p = self.partitions.of(video);
        let subject = subjects::store_comment(origin, p, video);
        let own = subjects::comments_stream(origin, p);
        let mut streams = vec![subjects::readable_stream(
            own.clone(),
            origin,
            self.regions.own(),
        )];
        if streams[0] != own {
            streams.push(own);
        }
        let mut unavailable = None;
        for name in streams {
            let stream = match self.js.get_stream_no_info(&name).await {
                Ok(s) => s,
                Err(e) => {
                    unavailable = Some(e.to_string());
                    continue;
                }
            };
            match stream.direct_get(seq).await {
                Ok(msg) if msg.subject.as_str() == subject => return Ok(()),
                Ok(_) => break,
                Err(e) if e.kind() == jetstream::stream::DirectGetErrorKind::NotFound => {}
                Err(e) => unavailable = Some(e.to_string()),
            }
        }
        match unavailable {
            Some(cause) => Err(ModerationError::Unavailable(cause)),
            None => Err(ModerationError::NotFound(format!(
                "no comment {id} on video {video}"
            ))),
        }
    }

    /// Keeps the settings current until `stopped`: reads every region's bucket (or this
    /// region's mirror of it) now and every [`RELOAD`], and applies each write the
    /// subscription to the buckets' subjects brings.
    pub async fn follow(&self, stopped: impl std::future::Future<Output = ()>) {
        tokio::pin!(stopped);
        let mut sub = loop {
            match self.subscribe_all().await {
                Ok(sub) => break sub,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot follow moderation settings; retrying");
                    tokio::select! {
                        _ = &mut stopped => return,
                        _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    }
                }
            }
        };
        let mut reload = tokio::time::interval(RELOAD);
        reload.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = &mut stopped => break,
                _ = reload.tick() => self.reload().await,
                msg = sub.next() => match msg {
                    Some(msg) => self.on_write(&msg.subject, msg.headers.as_ref(), &msg.payload),
                    None => break,
                },
            }
        }
        for sub in sub.iter_mut() {
            let _ = sub.unsubscribe().await;
        }
    }

    /// One subscription per region's bucket (`$KV.MODERATION_{region}.>`), merged.
    async fn subscribe_all(
        &self,
    ) -> Result<futures::stream::SelectAll<async_nats::Subscriber>, async_nats::SubscribeError>
    {
        let mut all = Vec::new();
        for region in self.regions.all() {
            all.push(
                self.client
                    .subscribe(subjects::moderation_all(region))
                    .await?,
            );
        }
        Ok(futures::stream::select_all(all))
    }

    /// Reads every region's settings.
    pub async fn reload(&self) {
        for origin in self.regions.all() {
            let stream = subjects::readable_stream(
                subjects::moderation_stream(origin),
                origin,
                self.regions.own(),
            );
            let subject = format!("$KV.{}.>", subjects::moderation_bucket(origin));
            match live_common::direct::read(
                &self.client,
                "$JS.API",
                &stream,
                &subject,
                0,
                u64::MAX,
                usize::MAX,
            )
            .await
            {
                Ok(msgs) => {
                    for m in msgs {
                        self.on_write(&m.subject, m.headers.as_ref(), &m.payload);
                    }
                }
                Err(e) => {
                    tracing::debug!(%stream, error = %e, "moderation settings not read")
                }
            }
        }
    }

    /// A write to a bucket (`$KV.MODERATION_{region}.{key}`).
    fn on_write(&self, subject: &str, headers: Option<&async_nats::HeaderMap>, payload: &[u8]) {
        let Some((region, key)) = subjects::parse_moderation(subject) else {
            metrics::counter!("publisher_ingest_undecodable_total").increment(1);
            return;
        };
        let op = headers
            .and_then(|h| h.get("KV-Operation"))
            .map(|v| v.as_str());
        if matches!(op, Some("DEL" | "PURGE")) {
            self.table().remove(&key, region);
            return;
        }
        match v1::Moderation::decode(payload) {
            Ok(value) => self.table().apply(key, value),
            Err(_) => metrics::counter!("publisher_ingest_undecodable_total").increment(1),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids() -> (VideoId, UserId) {
        (VideoId::parse("v").unwrap(), UserId::parse("bob").unwrap())
    }

    fn setting(until_ms: i64, seconds: u64, at_ms: i64, region: &str) -> v1::Moderation {
        v1::Moderation {
            until_ms,
            seconds,
            at_ms,
            region: region.into(),
            ..Default::default()
        }
    }

    #[test]
    fn the_latest_setting_wins_across_regions() {
        let (v, u) = ids();
        let mut t = Table::default();
        let ban = ModerationKey::Ban(v.clone(), u.clone());
        t.apply(ban.clone(), setting(5_000, 0, 100, "east"));
        assert_eq!(t.banned_until(&v, &u, 1_000), Some(5_000));
        assert_eq!(t.banned_until(&v, &u, 5_000), None, "ended");
        // An older write (a reload, another region's earlier ban) changes nothing.
        t.apply(ban.clone(), setting(9_000, 0, 50, "west"));
        assert_eq!(t.banned_until(&v, &u, 1_000), Some(5_000));
        // A later lift from another region wins.
        t.apply(ban.clone(), setting(0, 0, 200, "west"));
        assert_eq!(t.banned_until(&v, &u, 1_000), None);
        t.remove(&ban, "east");
        assert!(
            t.entries.contains_key(&ban),
            "only the writer's region removes"
        );
        t.remove(&ban, "west");
        assert!(!t.entries.contains_key(&ban));
        assert_eq!(t.slow_mode(&v), 0);
        t.apply(
            ModerationKey::SlowMode(v.clone()),
            setting(0, 30, 1, "east"),
        );
        assert_eq!(t.slow_mode(&v), 30);
        assert_eq!(t.banned_until(&VideoId::parse("w").unwrap(), &u, 0), None);
    }

    #[test]
    fn slow_mode_allows_one_per_window() {
        let (v, u) = ids();
        let other = UserId::parse("eve").unwrap();
        let mut c = SlowModeClock::default();
        let t0 = Instant::now();
        let w = Duration::from_secs(10);
        assert_eq!(c.take(&v, &u, w, t0), Ok(()));
        assert_eq!(c.take(&v, &u, w, t0 + Duration::from_millis(500)), Err(10));
        assert_eq!(c.take(&v, &u, w, t0 + Duration::from_millis(9_100)), Err(1));
        assert_eq!(c.take(&v, &other, w, t0), Ok(()), "users are independent");
        assert_eq!(c.take(&v, &u, w, t0 + w), Ok(()));
        assert_eq!(c.take(&v, &u, Duration::ZERO, t0 + w), Ok(()), "off");
        c.give_back(&v, &u, t0 + w);
        assert_eq!(c.take(&v, &u, w, t0 + w), Ok(()), "given back");
    }
}
