//! A minimal Server-Sent Events client, enough to read what a browser's `EventSource`
//! reads: `event:`, `data:`, `id:`, `retry:` and comment lines.

use std::time::Duration;

use bytes::BytesMut;
use futures::StreamExt;
use futures::stream::BoxStream;

/// One dispatched event. Comment lines (heartbeats) are reported with `event == ":"`.
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
    buf: BytesMut,
    /// The last `id:` seen, like `EventSource.lastEventId`.
    pub last_event_id: Option<String>,
    pending: SseEvent,
}

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
            buf: BytesMut::new(),
            last_event_id: last_event_id.map(str::to_owned),
            pending: SseEvent::default(),
        })
    }

    /// The next event or comment, `None` when the stream ended.
    pub async fn next_any(&mut self) -> Option<SseEvent> {
        loop {
            while let Some(pos) = self.buf.iter().position(|&b| b == b'\n') {
                let line = self.buf.split_to(pos + 1);
                let line = String::from_utf8_lossy(&line[..pos])
                    .trim_end_matches('\r')
                    .to_owned();
                if let Some(event) = self.line(&line) {
                    return Some(event);
                }
            }
            match self.body.next().await {
                Some(Ok(chunk)) => self.buf.extend_from_slice(&chunk),
                _ => return None,
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

    fn line(&mut self, line: &str) -> Option<SseEvent> {
        if line.is_empty() {
            if self.pending.data.is_empty() && self.pending.event.is_empty() {
                self.pending = SseEvent::default();
                return None;
            }
            let mut event = std::mem::take(&mut self.pending);
            if event.event.is_empty() {
                event.event = "message".into();
            }
            if event.data.ends_with('\n') {
                event.data.pop();
            }
            return Some(event);
        }
        if let Some(comment) = line.strip_prefix(':') {
            return Some(SseEvent {
                event: ":".into(),
                data: comment.trim().to_owned(),
                ..Default::default()
            });
        }
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "event" => self.pending.event = value.to_owned(),
            "data" => {
                self.pending.data.push_str(value);
                self.pending.data.push('\n');
            }
            "id" => {
                self.pending.id = Some(value.to_owned());
                self.last_event_id = Some(value.to_owned());
            }
            "retry" => self.pending.retry = value.parse().ok(),
            _ => {}
        }
        None
    }
}
