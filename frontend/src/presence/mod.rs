//! Members' presence: each frontend says which members it has connections of
//! ([`Announcer`], deciding with the pure [`members::Members`]) on
//! `presence.v1.{region}.{member}`, which reaches only the frontends watching the member
//! (a `presence:{member}` topic, a [`PresenceRoom`], following every frontend's say with
//! the pure [`watch::Watch`]).
//!
//! A room that opens asks the region's publishers who holds the member (one request per
//! region on `presence.query.v1.{region}`, answered from the frontends' member reports,
//! see [`crate::audience`]), so it knows the state within [`QUERY_WAIT`] instead of a
//! refresh period. Cost: per online member one message per TTL/3 per frontend holding
//! it, to its watchers; one message per change, to its watchers; one request per region
//! per room opened — none of it grows with the number of frontends.

pub mod members;
pub mod watch;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use live_proto::{MemberId, subjects, v1};
use prost::Message as _;
use tokio::sync::{Notify, broadcast};
use tokio::time::Instant;

use crate::hub::Hub;
use crate::node::Node;
use crate::occupancy::{Occupancy, Occupied};
use crate::sse::{self, Frame, Kind};
use members::{Announce, Members};
use watch::Watch;

/// How long a room that opens waits for the publishers' answers to its query.
pub const QUERY_WAIT: Duration = Duration::from_millis(500);

/// One watched member on this node.
pub struct PresenceRoom {
    pub member: MemberId,
    pub hub: Hub,
    watch: Mutex<Watch>,
}

impl Occupied for PresenceRoom {
    fn occupancy(&self) -> &Occupancy {
        &self.hub.occupancy
    }
}

impl PresenceRoom {
    pub fn new(member: MemberId, queue: usize) -> Arc<Self> {
        Arc::new(PresenceRoom {
            hub: Hub::new(format!("presence:{member}"), queue),
            watch: Mutex::new(Watch::default()),
            member,
        })
    }

    fn watch(&self) -> std::sync::MutexGuard<'_, Watch> {
        self.watch.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn event(&self, online: bool) -> Frame {
        let data = serde_json::json!({ "member": self.member.as_str(), "online": online });
        sse::topic_event(Kind::Presence, "presence", &self.hub.topic, &data, 0)
    }

    /// The feed, then the current state as the first `presence` event.
    pub fn join(&self) -> (broadcast::Receiver<Frame>, bytes::Bytes) {
        let watch = self.watch();
        let feed = self.hub.subscribe();
        (feed, self.event(watch.online()).tagged)
    }

    /// Applies a change under the watch's lock (a joining stream sees it in its first
    /// event or in its feed).
    fn apply(&self, change: impl FnOnce(&mut Watch) -> Option<bool>) {
        let mut watch = self.watch();
        if let Some(online) = change(&mut watch) {
            self.hub.broadcast(self.event(online));
        }
    }

    fn on_message(&self, msg: async_nats::Message) {
        let Ok(p) = v1::MemberPresence::decode(msg.payload) else {
            return undecodable();
        };
        if p.member != self.member.as_str() {
            return undecodable();
        }
        let ttl = Duration::from_millis(p.ttl_ms.clamp(1_000, 300_000).into());
        self.apply(|w| w.observe(&p.node, p.online, ttl, Instant::now()));
    }
}

/// The room's task: subscribes to every frontend's state of the member, asks the
/// publishers who holds it (and this node's `own` members), and follows it until the
/// room is idle past its grace period (and `release` agrees) or the node stops.
pub async fn run<F>(room: Arc<PresenceRoom>, node: Arc<Node>, own: Arc<Announcer>, release: F)
where
    F: Fn(&Arc<PresenceRoom>) -> bool + Send + 'static,
{
    let mut sub = node
        .subscribe(subjects::member_presence_all(&room.member))
        .await;
    // Subscribed first: a change after the answers were made arrives on `sub`, and is
    // applied after them.
    let now = Instant::now();
    if own.members().is_online(&room.member) {
        room.apply(|w| w.observe(&node.id, true, node.settings.presence_ttl, now));
    }
    for holder in holders(&node, &room.member).await {
        let ttl = Duration::from_millis(holder.ttl_ms.min(300_000).into());
        room.apply(|w| w.observe(&holder.node, true, ttl, now));
    }
    room.hub.set_ready();
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    let vacated = room.hub.occupancy.vacated(node.settings.room_grace);
    tokio::pin!(vacated);
    loop {
        tokio::select! {
            msg = sub.next() => match msg {
                Some(msg) => room.on_message(msg),
                None => break,
            },
            _ = tick.tick() => room.apply(|w| w.expire(Instant::now())),
            _ = &mut vacated => {
                if release(&room) {
                    break;
                }
                // Somebody came back meanwhile.
                vacated.set(room.hub.occupancy.vacated(node.settings.room_grace));
            }
            _ = node.stopped.cancelled() => break,
        }
    }
    let _ = sub.unsubscribe().await;
}

/// Every region's frontends holding `member` online, as the regions' publishers know
/// them: one request per region, all at once, each bounded by [`QUERY_WAIT`]. A region
/// that does not answer (no publisher ready) adds nothing: its holders' next refresh
/// will.
async fn holders(node: &Node, member: &MemberId) -> Vec<v1::MemberHolder> {
    let query: bytes::Bytes = v1::MemberQuery {
        members: vec![member.to_string()],
    }
    .encode_to_vec()
    .into();
    let asks = node.regions.all().iter().map(|region| {
        let request = node
            .client
            .request(subjects::presence_query(region), query.clone());
        async move {
            match tokio::time::timeout(QUERY_WAIT, request).await {
                Ok(Ok(reply)) => match v1::MemberHolders::decode(reply.payload) {
                    Ok(answer) => answer.holders,
                    Err(_) => {
                        undecodable();
                        Vec::new()
                    }
                },
                Ok(Err(e)) => {
                    tracing::debug!(%region, error = %e, "presence query unanswered");
                    Vec::new()
                }
                Err(_) => {
                    tracing::debug!(%region, "presence query timed out");
                    Vec::new()
                }
            }
        }
    });
    futures::future::join_all(asks)
        .await
        .into_iter()
        .flatten()
        .filter(|h| h.member == member.as_str())
        .collect()
}

/// This node's members: connections count them in and out; [`run_announcer`] says so.
pub struct Announcer {
    members: Mutex<Members>,
    wake: Notify,
}

impl Announcer {
    pub fn new(grace: Duration, ttl: Duration) -> Arc<Self> {
        Arc::new(Announcer {
            members: Mutex::new(Members::new(grace, ttl)),
            wake: Notify::new(),
        })
    }

    fn members(&self) -> std::sync::MutexGuard<'_, Members> {
        self.members.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A connection of `member` opened (never awaits: the announcer publishes).
    pub fn connect(&self, member: &MemberId) {
        if self.members().connect(member) {
            self.wake.notify_one();
        }
    }

    /// Each member this node counts online, with its connections (1 within the grace
    /// period): what it reports to the region's publishers.
    pub fn counts(&self) -> Vec<(MemberId, u64)> {
        self.members().counts()
    }

    /// A connection of `member` closed (called from a drop: never awaits).
    pub fn disconnect(&self, member: &MemberId) {
        self.members().disconnect(member, Instant::now());
        self.wake.notify_one();
    }
}

/// Publishes what [`Members`] decides. Ends when the node stops, without saying
/// offline: a stopping node's members reconnect elsewhere, and those that do not drop
/// out after the TTL.
pub async fn run_announcer(announcer: Arc<Announcer>, node: Arc<Node>) {
    let far = Instant::now() + Duration::from_secs(86_400 * 365);
    loop {
        let next = announcer.members().next_due();
        tokio::select! {
            _ = announcer.wake.notified() => {}
            _ = tokio::time::sleep_until(next.unwrap_or(far)), if next.is_some() => {}
            _ = node.stopped.cancelled() => break,
        }
        let due = announcer.members().due(Instant::now());
        for announce in due {
            match announce {
                Announce::Online(m) => publish(&node, &m, true).await,
                Announce::Offline(m) => publish(&node, &m, false).await,
            }
        }
        metrics::gauge!("frontend_members_online").set(announcer.members().len() as f64);
    }
}

async fn publish(node: &Node, member: &MemberId, online: bool) {
    let msg = v1::MemberPresence {
        member: member.to_string(),
        node: node.id.clone(),
        online,
        at_ms: live_proto::now_ms(),
        ttl_ms: node.settings.presence_ttl.as_millis() as u32,
        region: node.regions.own().to_string(),
    };
    let subject = subjects::member_presence(node.regions.own(), member);
    if let Err(e) = node
        .client
        .publish(subject, msg.encode_to_vec().into())
        .await
    {
        tracing::debug!(error = %e, "presence not published");
    }
}

fn undecodable() {
    metrics::counter!("frontend_undecodable_total").increment(1);
}
