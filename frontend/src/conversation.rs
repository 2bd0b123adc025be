//! A conversation on this node: the one NATS subscription for its live events
//! (`conv.v1.*.{id}.*`, every region), its read receipts (read from every region's
//! receipts bucket when it opens, then kept up to date by the live `read` events,
//! never going backwards: [`ReadReceipts`]), and `typing` indicators passed straight
//! through (ephemeral: nothing is kept; each says until when it shows).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use live_proto::conversations::ReadReceipts;
use live_proto::subjects::{self, ConversationEvent};
use live_proto::{ConversationId, v1};
use prost::Message as _;
use tokio::sync::broadcast;
use tokio::time::Instant;

use crate::hub::Hub;
use crate::node::Node;
use crate::occupancy::{Occupancy, Occupied};
use crate::sse::{self, Frame, Kind};

pub struct Conversation {
    pub id: ConversationId,
    pub hub: Hub,
    receipts: Mutex<ReadReceipts>,
}

impl Occupied for Conversation {
    fn occupancy(&self) -> &Occupancy {
        &self.hub.occupancy
    }
}

impl Conversation {
    pub fn new(id: ConversationId, queue: usize) -> Arc<Self> {
        Arc::new(Conversation {
            hub: Hub::new(format!("conversation:{id}"), queue),
            receipts: Mutex::new(ReadReceipts::new(id.clone())),
            id,
        })
    }

    fn receipts(&self) -> std::sync::MutexGuard<'_, ReadReceipts> {
        self.receipts.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The feed, then the `snapshot` (`{"read": {user: message}}`), under the receipts'
    /// lock, so a receipt is in one or the other.
    pub fn join(&self) -> (broadcast::Receiver<Frame>, bytes::Bytes) {
        let receipts = self.receipts();
        let feed = self.hub.subscribe();
        let snapshot = sse::tagged(
            "snapshot",
            &self.hub.topic,
            &serde_json::json!({ "read": receipts.snapshot() }),
        );
        (feed, snapshot)
    }

    fn on_message(&self, msg: async_nats::Message) {
        let Some((_, _, event)) = subjects::parse_conversation_live(&msg.subject) else {
            return undecodable();
        };
        match event {
            ConversationEvent::Typing => match v1::Typing::decode(msg.payload) {
                Ok(t) if t.conversation == self.id.as_str() => {
                    metrics::counter!("frontend_events_in_total", "kind" => "typing").increment(1);
                    let data = serde_json::json!({ "user": t.user, "until_ms": t.until_ms });
                    self.hub.broadcast(sse::topic_event(
                        Kind::Typing,
                        "typing",
                        &self.hub.topic,
                        &data,
                        t.accepted_at_ms,
                    ));
                }
                _ => undecodable(),
            },
            ConversationEvent::Read => {
                let Ok(receipt) = v1::ReadReceipt::decode(msg.payload) else {
                    return undecodable();
                };
                metrics::counter!("frontend_events_in_total", "kind" => "read").increment(1);
                let (user, message, at) = (
                    receipt.user.clone(),
                    receipt.message.clone(),
                    receipt.accepted_at_ms,
                );
                let mut receipts = self.receipts();
                match receipts.apply(receipt) {
                    // Under the lock: a joining stream has it in its snapshot or its feed.
                    Ok(true) => self.broadcast_read(&user, &message, at),
                    Ok(false) => {}
                    Err(_) => undecodable(),
                }
            }
        }
    }

    /// `read`: `user` has now read up to `message`.
    fn broadcast_read(&self, user: &str, message: &str, accepted_at_ms: i64) {
        let data = serde_json::json!({ "user": user, "message": message });
        let frame = sse::topic_event(Kind::Read, "read", &self.hub.topic, &data, accepted_at_ms);
        self.hub.broadcast(frame);
    }

    /// Reads every region's stored receipts (a region that does not answer is left
    /// out until the next read). Applying is idempotent; a receipt that changes what a
    /// member has read goes out as `read` (before the room is ready nobody listens).
    async fn load(&self, node: &Node) {
        for r in 0..node.regions.len() {
            match node.history.receipts(r, &self.id).await {
                Ok(entries) => {
                    let mut receipts = self.receipts();
                    for (subject, revision, payload) in entries {
                        match receipts.apply_stored(&subject, revision, &payload) {
                            Ok(true) => {
                                if let Some(r) = subjects::parse_receipt(&subject)
                                    .and_then(|(_, _, user)| receipts.get(&user))
                                {
                                    // Found late (its live event was lost): no latency
                                    // sample (0).
                                    self.broadcast_read(&r.user, &r.message, 0);
                                }
                            }
                            Ok(false) => {}
                            Err(_) => undecodable(),
                        }
                    }
                }
                Err(e) => {
                    tracing::warn!(conversation = %self.id, region = r, error = %e, "receipts unavailable")
                }
            }
        }
    }
}

/// How often an open conversation reads the receipts buckets again (jittered ±50 %):
/// a live `read` from another region lost on the way (a cut gateway) still reaches
/// this region's mirror.
const RELOAD: Duration = Duration::from_secs(5);

/// The conversation's task: subscribes, loads the receipts, then passes events on
/// until the room is idle past its grace period (and `release` agrees) or the node
/// stops.
pub async fn run<F>(conversation: Arc<Conversation>, node: Arc<Node>, release: F)
where
    F: Fn(&Arc<Conversation>) -> bool + Send + 'static,
{
    let mut sub = node
        .subscribe(subjects::conversation_live_all(&conversation.id))
        .await;
    // Subscribed first: a receipt stored while the snapshot is read arrives live too,
    // and the merge keeps the newer.
    conversation.load(&node).await;
    conversation.hub.set_ready();
    let jitter = || RELOAD.mul_f64(rand::random_range(0.5..1.5));
    let mut reload = Instant::now() + jitter();
    let mut reconnects = node.reconnects.clone();
    let vacated = conversation.hub.occupancy.vacated(node.settings.room_grace);
    tokio::pin!(vacated);
    loop {
        tokio::select! {
            msg = sub.next() => match msg {
                Some(msg) => conversation.on_message(msg),
                None => break,
            },
            // In its own task: the loop does not wait for JetStream.
            _ = tokio::time::sleep_until(reload) => {
                reload = Instant::now() + jitter();
                let (c, n) = (conversation.clone(), node.clone());
                tokio::spawn(async move { c.load(&n).await });
            }
            Ok(()) = reconnects.changed() => {
                let (c, n) = (conversation.clone(), node.clone());
                tokio::spawn(async move { c.load(&n).await });
            }
            _ = &mut vacated => {
                if release(&conversation) {
                    break;
                }
                // Somebody came back meanwhile.
                vacated.set(conversation.hub.occupancy.vacated(node.settings.room_grace));
            }
            _ = node.stopped.cancelled() => break,
        }
    }
    let _ = sub.unsubscribe().await;
}

fn undecodable() {
    metrics::counter!("frontend_undecodable_total").increment(1);
}
