//! Incremental `text/event-stream` parser (the WHATWG SSE line format).
//!
//! Lines end in LF, CRLF or CR and may be split anywhere across `feed` calls; complete
//! lines inside one input are parsed in place, only a partial tail is buffered.

/// Longest line accepted; a longer one is a protocol error (protects memory).
const MAX_LINE: usize = 64 * 1024;

/// One dispatched event; the slices borrow the parser's buffers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Event<'a> {
    /// The `event:` field; empty means the default `message`.
    pub name: &'a [u8],
    /// The `data:` lines joined with `\n`.
    pub data: &'a [u8],
    /// The `id:` field when this event carried one.
    pub id: Option<&'a [u8]>,
}

/// What the stream yields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Item<'a> {
    Event(Event<'a>),
    /// A `: …` comment line (heartbeat).
    Comment,
    /// A `retry:` field, in milliseconds.
    Retry(u64),
}

/// Parser state: a partial line plus the fields of the event being built.
#[derive(Debug, Default)]
pub struct SseParser {
    line: Vec<u8>,
    event: Vec<u8>,
    data: Vec<u8>,
    id: Vec<u8>,
    has_data: bool,
    has_id: bool,
    /// The previous input ended in CR: a leading LF belongs to that line end.
    skip_lf: bool,
}

impl SseParser {
    /// Parses `input`, calling `f` for every complete item.
    pub fn feed(
        &mut self,
        mut input: &[u8],
        f: &mut impl FnMut(Item<'_>),
    ) -> Result<(), &'static str> {
        if self.skip_lf && !input.is_empty() {
            self.skip_lf = false;
            if input[0] == b'\n' {
                input = &input[1..];
            }
        }
        while let Some(pos) = input.iter().position(|&b| b == b'\n' || b == b'\r') {
            let end = input[pos];
            if self.line.is_empty() {
                self.line_done(&input[..pos], f);
            } else {
                let mut line = std::mem::take(&mut self.line);
                line.extend_from_slice(&input[..pos]);
                self.line_done(&line, f);
                line.clear();
                self.line = line;
            }
            input = &input[pos + 1..];
            if end == b'\r' {
                match input.first() {
                    Some(b'\n') => input = &input[1..],
                    Some(_) => {}
                    None => self.skip_lf = true,
                }
            }
        }
        if self.line.len() + input.len() > MAX_LINE {
            return Err("SSE line too long");
        }
        self.line.extend_from_slice(input);
        Ok(())
    }

    fn line_done(&mut self, line: &[u8], f: &mut impl FnMut(Item<'_>)) {
        if line.is_empty() {
            if self.has_data {
                f(Item::Event(Event {
                    name: &self.event,
                    data: &self.data,
                    id: self.has_id.then_some(&self.id[..]),
                }));
            }
            self.event.clear();
            self.data.clear();
            self.has_data = false;
            self.has_id = false;
            return;
        }
        if line[0] == b':' {
            f(Item::Comment);
            return;
        }
        let (field, value) = match line.iter().position(|&b| b == b':') {
            Some(i) => {
                let v = &line[i + 1..];
                (&line[..i], v.strip_prefix(b" ").unwrap_or(v))
            }
            None => (line, &[][..]),
        };
        match field {
            b"event" => {
                self.event.clear();
                self.event.extend_from_slice(value);
            }
            b"data" => {
                if self.has_data {
                    self.data.push(b'\n');
                }
                self.data.extend_from_slice(value);
                self.has_data = true;
            }
            b"id" if !value.contains(&0) => {
                self.id.clear();
                self.id.extend_from_slice(value);
                self.has_id = true;
            }
            b"retry" => {
                if let Some(ms) = std::str::from_utf8(value).ok().and_then(|s| s.parse().ok()) {
                    f(Item::Retry(ms));
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Renders items as strings, so a test can compare whole streams.
    pub fn collect(p: &mut SseParser, parts: &[&[u8]]) -> Vec<String> {
        let mut out = Vec::new();
        for part in parts {
            p.feed(part, &mut |item| {
                out.push(match item {
                    Item::Event(e) => format!(
                        "{}|{}|{}",
                        String::from_utf8_lossy(e.name),
                        String::from_utf8_lossy(e.data),
                        e.id.map(|i| String::from_utf8_lossy(i).into_owned())
                            .unwrap_or_default()
                    ),
                    Item::Comment => "comment".into(),
                    Item::Retry(ms) => format!("retry {ms}"),
                })
            })
            .unwrap();
        }
        out
    }

    #[test]
    fn parses_any_split_and_any_line_end() {
        let stream: &[u8] =
            b"retry: 1500\n: hb\r\nevent: comment\rid: 7\r\ndata: {\"a\":1}\r\ndata:x\n\n\
            event:likes\ndata: {}\n\n: ignored\ndata: plain\n\nevent: only-event\n\n";
        let want = vec![
            "retry 1500",
            "comment",
            "comment|{\"a\":1}\nx|7",
            "likes|{}|",
            "comment",
            "|plain|",
        ];
        for step in 1..=stream.len() {
            let parts: Vec<&[u8]> = stream.chunks(step).collect();
            assert_eq!(
                collect(&mut SseParser::default(), &parts),
                want,
                "step {step}"
            );
        }
    }

    #[test]
    fn crlf_split_between_inputs() {
        let mut p = SseParser::default();
        let got = collect(&mut p, &[b"data: a\r", b"\n\r", b"\n"]);
        assert_eq!(got, vec!["|a|"]);
    }
}
