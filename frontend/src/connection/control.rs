//! Changing a connection's topics from any frontend: the connection's id names the node
//! that holds it (`{node key}-{connection key}`, both random hex), the node subscribes
//! once to `stream.v1.{node key}.*`, and any frontend asked to change a connection sends
//! the change there as a NATS request and answers after the holder applied it. Nobody
//! answering means nobody holds it: 404. No table of connections outside the node that
//! holds them, no sticky sessions.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use live_common::ApiError;
use live_proto::{Topic, subjects};
use rand::Rng;
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};

use super::Change;
use crate::node::Node;

/// Changes queued per connection (each is answered before the next is read).
const CHANGES_QUEUED: usize = 8;
/// How long a change may take, end to end (joining a topic's room included).
const CHANGE_TIMEOUT: Duration = Duration::from_secs(8);

/// The connections this node holds, by their key.
pub struct Connections {
    node_key: String,
    table: Mutex<HashMap<String, mpsc::Sender<Change>>>,
}

/// A connection's place in the table; dropped, it leaves.
pub struct Entry {
    id: String,
    key: String,
    connections: Arc<Connections>,
}

impl Entry {
    pub fn id(&self) -> &str {
        &self.id
    }
}

impl Drop for Entry {
    fn drop(&mut self) {
        self.connections.lock().remove(&self.key);
    }
}

/// The request to the holding node.
#[derive(Serialize, Deserialize)]
struct Request {
    add: bool,
    topic: String,
    caller: Option<String>,
}

/// Its answer: an HTTP status and, for an error, its message.
#[derive(Serialize, Deserialize)]
struct Reply {
    status: u16,
    error: Option<String>,
}

impl Connections {
    pub fn new() -> Arc<Self> {
        Arc::new(Connections {
            node_key: format!("{:08x}", rand::rng().random::<u32>()),
            table: Mutex::new(HashMap::new()),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, mpsc::Sender<Change>>> {
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A new connection's id and the queue of changes it is to apply.
    pub fn register(self: &Arc<Self>) -> (Entry, mpsc::Receiver<Change>) {
        let (tx, rx) = mpsc::channel(CHANGES_QUEUED);
        let key = format!("{:016x}", rand::rng().random::<u64>());
        self.lock().insert(key.clone(), tx);
        let entry = Entry {
            id: format!("{}-{key}", self.node_key),
            key,
            connections: self.clone(),
        };
        (entry, rx)
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    /// Subscribes to the changes sent to this node's connections (before the node
    /// serves HTTP, so a connection it hands out is reachable at once).
    pub async fn subscribe(&self, node: &Node) -> async_nats::Subscriber {
        node.subscribe(subjects::stream_control_all(&self.node_key))
            .await
    }

    /// Answers the changes arriving on `requests`, until the node stops.
    pub async fn serve(self: Arc<Self>, node: Arc<Node>, mut requests: async_nats::Subscriber) {
        loop {
            let msg = tokio::select! {
                msg = requests.next() => match msg {
                    Some(msg) => msg,
                    None => break,
                },
                _ = node.stopped.cancelled() => break,
            };
            let Some(reply_to) = msg.reply.clone() else {
                continue;
            };
            let key = msg.subject.rsplit('.').next().unwrap_or("").to_owned();
            let sender = self.lock().get(&key).cloned();
            let client = node.client.clone();
            // Each change is applied by its connection; this loop does not wait for it.
            tokio::spawn(async move {
                let reply = match sender {
                    None => error_reply(&ApiError::NoSuch("no such connection".into())),
                    Some(sender) => apply(sender, &msg.payload).await,
                };
                let body = serde_json::to_vec(&reply).expect("a reply serializes");
                let _ = client.publish(reply_to, body.into()).await;
            });
        }
    }
}

async fn apply(sender: mpsc::Sender<Change>, payload: &[u8]) -> Reply {
    let Ok(request) = serde_json::from_slice::<Request>(payload) else {
        return error_reply(&ApiError::BadRequest("malformed change".into()));
    };
    let topic = match Topic::parse(&request.topic) {
        Ok(t) => t,
        Err(e) => return error_reply(&ApiError::BadRequest(e.to_string())),
    };
    let (reply, answer) = oneshot::channel();
    let change = Change {
        add: request.add,
        topic,
        caller: request.caller,
        reply,
    };
    if sender.send(change).await.is_err() {
        return error_reply(&ApiError::NoSuch("no such connection".into()));
    }
    match answer.await {
        Ok(Ok(())) => Reply {
            status: if request.add { 200 } else { 204 },
            error: None,
        },
        Ok(Err(e)) => error_reply(&e),
        // The connection ended meanwhile.
        Err(_) => error_reply(&ApiError::NoSuch("no such connection".into())),
    }
}

fn error_reply(e: &ApiError) -> Reply {
    Reply {
        status: e.status().as_u16(),
        error: Some(e.to_string()),
    }
}

/// Whether `id` is a connection id this system hands out (so it is safe to put in a
/// subject): `{8 hex}-{16 hex}`.
fn split_id(id: &str) -> Option<(&str, &str)> {
    let (node, key) = id.split_once('-')?;
    let hex = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_hexdigit());
    (hex(node, 8) && hex(key, 16)).then_some((node, key))
}

/// Adds (`add`) or drops `topic` on connection `id`, wherever it is held, as `caller`
/// (the token's `sub`, with auth on). Answers after the holder applied it.
pub async fn change(
    client: &async_nats::Client,
    id: &str,
    add: bool,
    topic: &Topic,
    caller: Option<String>,
) -> Result<(), ApiError> {
    let unknown = || ApiError::NoSuch("no such connection".into());
    let (node, key) = split_id(id).ok_or_else(unknown)?;
    let request = Request {
        add,
        topic: topic.to_string(),
        caller,
    };
    let body = serde_json::to_vec(&request).expect("a request serializes");
    let answer = tokio::time::timeout(
        CHANGE_TIMEOUT,
        client.request(subjects::stream_control(node, key), body.into()),
    )
    .await;
    let msg = match answer {
        Ok(Ok(msg)) => msg,
        Ok(Err(e)) if e.kind() == async_nats::RequestErrorKind::NoResponders => {
            return Err(unknown());
        }
        Ok(Err(e)) if e.kind() == async_nats::RequestErrorKind::TimedOut => {
            return Err(unknown());
        }
        Ok(Err(e)) => return Err(ApiError::unavailable("NATS", e)),
        Err(_) => return Err(ApiError::unavailable("the connection's node", "timed out")),
    };
    let reply: Reply = serde_json::from_slice(&msg.payload)
        .map_err(|e| ApiError::Internal(format!("bad change reply: {e}")))?;
    match reply.status {
        200 | 204 => Ok(()),
        404 => Err(unknown()),
        400 => Err(ApiError::BadRequest(reply.error.unwrap_or_default())),
        403 => Err(ApiError::Forbidden(reply.error.unwrap_or_default())),
        503 => Err(ApiError::Unavailable {
            message: reply.error.unwrap_or_default(),
            retry_after_secs: 1,
        }),
        _ => Err(ApiError::Internal(reply.error.unwrap_or_default())),
    }
}

#[cfg(test)]
mod tests {
    use super::split_id;

    #[test]
    fn only_ids_we_hand_out_become_subjects() {
        assert_eq!(
            split_id("0a1b2c3d-0123456789abcdef"),
            Some(("0a1b2c3d", "0123456789abcdef"))
        );
        for bad in [
            "",
            "0a1b2c3d",
            "0a1b2c3d-0123456789abcde",
            "0a1b2c3d-0123456789abcdefg",
            "0a1b2c3d-*123456789abcdef",
            "0a1b.c3d-0123456789abcdef",
            "0a1b2c3d-01234567>9abcdef",
        ] {
            assert_eq!(split_id(bad), None, "{bad}");
        }
    }
}
