//! An SSE response read incrementally: HTTP/1.1 status line and headers, then the body
//! (chunked or plain) fed through the SSE parser.

use crate::chunked::Chunked;
use sse_parse::{Item, Parser};

/// Largest response head accepted.
const MAX_HEAD: usize = 16 * 1024;

/// Why a response could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// The server answered, but not with 200.
    Status(u16),
    Protocol(&'static str),
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Status(s) => write!(f, "HTTP status {s}"),
            Error::Protocol(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for Error {}

/// What one `feed` call observed besides the events.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Fed {
    /// The 200 head was completed by this input: the stream is open.
    pub opened: bool,
    /// The chunked body ended: the server closed the stream.
    pub ended: bool,
}

/// The parsed parts of a response head that matter here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Head {
    pub status: u16,
    pub chunked: bool,
}

/// Parses a complete head (`buf` holds at least the status line and headers). Returns the
/// head and its length including the blank line, or `None` when more input is needed.
pub fn parse_head(buf: &[u8]) -> Result<Option<(Head, usize)>, Error> {
    let Some(end) = find_head_end(buf) else {
        return Ok(None);
    };
    let text = std::str::from_utf8(&buf[..end]).map_err(|_| Error::Protocol("non-UTF-8 head"))?;
    let mut lines = text.lines();
    let status_line = lines.next().unwrap_or_default();
    let mut parts = status_line.split(' ');
    let version = parts.next().unwrap_or_default();
    if !version.starts_with("HTTP/1.") {
        return Err(Error::Protocol("not an HTTP/1.x response"));
    }
    let status = parts
        .next()
        .and_then(|s| s.parse().ok())
        .ok_or(Error::Protocol("bad status line"))?;
    let mut chunked = false;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        if name.trim().eq_ignore_ascii_case("transfer-encoding")
            && value.to_ascii_lowercase().contains("chunked")
        {
            chunked = true;
        }
    }
    Ok(Some((Head { status, chunked }, end)))
}

/// Index just past the blank line ending the head (`\r\n\r\n`, or a lenient `\n\n`).
fn find_head_end(buf: &[u8]) -> Option<usize> {
    let mut i = 0;
    while let Some(p) = buf[i..].iter().position(|&b| b == b'\n') {
        let nl = i + p;
        match buf.get(nl + 1) {
            Some(b'\n') => return Some(nl + 2),
            Some(b'\r') if buf.get(nl + 2) == Some(&b'\n') => return Some(nl + 3),
            _ => i = nl + 1,
        }
    }
    None
}

#[derive(Debug)]
enum Body {
    Chunked(Chunked),
    Plain,
}

/// The decoder of one SSE response, from the first response byte on.
#[derive(Debug, Default)]
pub struct Decoder {
    /// Head bytes buffered until the head is complete (only while `body` is `None`).
    head: Vec<u8>,
    body: Option<Body>,
    sse: Parser,
}

impl Decoder {
    /// Whether the 200 head has been read.
    pub fn is_open(&self) -> bool {
        self.body.is_some()
    }

    /// Feeds bytes read from the socket; events go to `f`.
    pub fn feed(&mut self, mut input: &[u8], f: &mut impl FnMut(Item<'_>)) -> Result<Fed, Error> {
        let mut fed = Fed::default();
        if self.body.is_none() {
            let (head, len) = if self.head.is_empty() {
                match parse_head(input)? {
                    Some(found) => found,
                    None => {
                        self.buffer_head(input)?;
                        return Ok(fed);
                    }
                }
            } else {
                let before = self.head.len();
                self.buffer_head(input)?;
                match parse_head(&self.head)? {
                    Some((head, len)) => (head, len - before),
                    None => return Ok(fed),
                }
            };
            self.head = Vec::new();
            if head.status != 200 {
                return Err(Error::Status(head.status));
            }
            self.body = Some(if head.chunked {
                Body::Chunked(Chunked::default())
            } else {
                Body::Plain
            });
            fed.opened = true;
            input = &input[len..];
        }
        let sse = &mut self.sse;
        match self.body.as_mut() {
            Some(Body::Chunked(c)) => {
                let mut err = Ok(());
                fed.ended = c
                    .feed(input, &mut |data| {
                        if err.is_ok() {
                            err = sse.feed(data, f);
                        }
                    })
                    .map_err(Error::Protocol)?;
                err.map_err(|_| Error::Protocol("SSE line too long"))?;
            }
            _ => sse
                .feed(input, f)
                .map_err(|_| Error::Protocol("SSE line too long"))?,
        }
        Ok(fed)
    }

    fn buffer_head(&mut self, input: &[u8]) -> Result<(), Error> {
        if self.head.len() + input.len() > MAX_HEAD {
            return Err(Error::Protocol("response head too large"));
        }
        self.head.extend_from_slice(input);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WIRE: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n\
        cache-control: no-cache\r\ntransfer-encoding: chunked\r\n\r\n\
        2f\r\nretry: 2000\nevent: snapshot\ndata: {\"likes\":3}\n\n\r\n\
        46\r\nevent: comment\nid: 12\ndata: {\"id\":\"12\",\"user\":\"u\",\"text\":\"hi\",\"ts\":1}\n\r\n\
        1\r\n\n\r\n6\r\n: hb\n\n\r\n0\r\n\r\n";

    #[test]
    fn chunked_sse_response_on_any_split() {
        for step in 1..=WIRE.len() {
            let mut d = Decoder::default();
            let mut got = Vec::new();
            let (mut opened, mut ended) = (0, false);
            for part in WIRE.chunks(step) {
                let fed = d
                    .feed(part, &mut |item| {
                        got.push(match item {
                            Item::Event(e) => format!(
                                "{}:{}:{}",
                                String::from_utf8_lossy(e.name),
                                String::from_utf8_lossy(e.id.unwrap_or_default()),
                                e.data.len()
                            ),
                            Item::Comment(_) => "hb".into(),
                            Item::Retry(ms) => format!("retry {ms}"),
                        })
                    })
                    .unwrap();
                opened += u32::from(fed.opened);
                ended |= fed.ended;
            }
            assert_eq!(opened, 1, "step {step}");
            assert!(ended, "step {step}");
            assert_eq!(
                got,
                ["retry 2000", "snapshot::11", "comment:12:41", "hb"],
                "step {step}"
            );
        }
    }

    #[test]
    fn non_200_is_an_error() {
        let mut d = Decoder::default();
        let r = d.feed(
            b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\n\r\n",
            &mut |_| {},
        );
        assert_eq!(r, Err(Error::Status(503)));
    }
}
