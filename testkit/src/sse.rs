//! A minimal Server-Sent Events client, enough to read what a browser's `EventSource`
//! reads: `event:`, `data:`, `id:`, `retry:` and comment lines, parsed by `sse-parse`
//! (the same parser as the load generator's).

use std::collections::VecDeque;
use std::time::Duration;

use futures::StreamExt;
use futures::stream::BoxStream;
use sse_parse::{Item, Parser};

/// One dispatched event. Comment lines (heartbeats) are reported with `event == ":"`
/// and the comment's text (trimmed) as `data`; an unnamed event is `message`; `retry`
/// is a `retry:` field seen since the previous event (the frontend sends it with the
/// snapshot); `id` is the event's own `id:` field, if it had one.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SseEvent {
    pub event: String,
    pub data: String,
    pub id: Option<String>,
    pub retry: Option<u64>,
}

impl SseEvent {
    /// The data parsed as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.data).unwrap_or_else(|e| {
            panic!("event {} data is not JSON ({e}): {}", self.event, self.data)
        })
    }
}

pub struct SseClient {
    pub status: reqwest::StatusCode,
    pub headers: reqwest::header::HeaderMap,
    body: BoxStream<'static, reqwest::Result<bytes::Bytes>>,
    parser: Parser,
    /// Items parsed from the chunks read so far, not yet returned.
    ready: VecDeque<SseEvent>,
    /// A `retry:` waiting for the next event, which carries it.
    retry: Option<u64>,
    /// The last `id:` seen, like `EventSource.lastEventId`.
    pub last_event_id: Option<String>,
}

/// Longest line the client accepts: far beyond any event of the system under test.
const MAX_LINE: usize = 16 << 20;

impl SseClient {
    /// Opens `url`; `last_event_id` is sent as the `Last-Event-ID` header.
    pub async fn connect(url: &str, last_event_id: Option<&str>) -> reqwest::Result<Self> {
        let client = reqwest::Client::new();
        let mut request = client.get(url).header("Accept", "text/event-stream");
        if let Some(id) = last_event_id {
            request = request.header("Last-Event-ID", id);
        }
        let response = request.send().await?;
        Ok(SseClient {
            status: response.status(),
            headers: response.headers().clone(),
            body: response.bytes_stream().boxed(),
            parser: Parser::with_max_line(MAX_LINE),
            ready: VecDeque::new(),
            retry: None,
            last_event_id: last_event_id.map(str::to_owned),
        })
    }

    /// The next event or comment, `None` when the stream ended (or broke the SSE format).
    pub async fn next_any(&mut self) -> Option<SseEvent> {
        loop {
            if let Some(event) = self.ready.pop_front() {
                if let Some(id) = &event.id {
                    self.last_event_id = Some(id.clone());
                }
                return Some(event);
            }
            let chunk = match self.body.next().await {
                Some(Ok(chunk)) => chunk,
                _ => return None,
            };
            let (ready, retry) = (&mut self.ready, &mut self.retry);
            let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
            let parsed = self.parser.feed(&chunk, &mut |item| match item {
                Item::Event(e) => ready.push_back(SseEvent {
                    event: if e.name.is_empty() {
                        "message".into()
                    } else {
                        text(e.name)
                    },
                    data: text(e.data),
                    id: e.id.map(text),
                    retry: retry.take(),
                }),
                Item::Comment(c) => ready.push_back(SseEvent {
                    event: ":".into(),
                    data: text(c).trim().to_owned(),
                    ..Default::default()
                }),
                Item::Retry(ms) => *retry = Some(ms),
            });
            if parsed.is_err() {
                self.body = futures::stream::empty().boxed();
            }
        }
    }

    /// The next event (heartbeat comments skipped), `None` when the stream ended.
    pub async fn next(&mut self) -> Option<SseEvent> {
        loop {
            let event = self.next_any().await?;
            if event.event != ":" {
                return Some(event);
            }
        }
    }

    /// The next event within `timeout`; panics on timeout or end of stream.
    pub async fn expect(&mut self, timeout: Duration) -> SseEvent {
        tokio::time::timeout(timeout, self.next())
            .await
            .expect("timed out waiting for an SSE event")
            .expect("SSE stream ended")
    }

    /// The next event named `name` within `timeout`, skipping others.
    pub async fn expect_named(&mut self, name: &str, timeout: Duration) -> SseEvent {
        tokio::time::timeout(timeout, async {
            loop {
                let e = self.next().await.expect("SSE stream ended");
                if e.event == name {
                    return e;
                }
            }
        })
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for SSE event {name}"))
    }
}
