//! `sse-parse`: an incremental `text/event-stream` parser that follows the WHATWG
//! "Server-sent events" interpretation rules (HTML §9.2.6), bytes in, events out.
//!
//! - Lines end in LF, CRLF or a lone CR, and may be split anywhere across [`Parser::feed`]
//!   calls (a CRLF split between two inputs is one line end).
//! - One leading UTF-8 byte order mark is ignored, even when split across inputs.
//! - `: …` lines are comments ([`Item::Comment`], e.g. heartbeats); a line without a
//!   colon is a field with an empty value; one space after the colon is dropped.
//! - `data:` lines are joined with `\n`; a blank line dispatches the event, unless no
//!   `data` field was seen (then the block is dropped, as a browser does).
//! - `id:` whose value contains NUL is ignored; `retry:` counts only if it is all ASCII
//!   digits; unknown fields are ignored.
//!
//! Complete lines inside one input are parsed in place; only a partial line at the end
//! of an input is copied (into a buffer reused for the whole stream), and event fields are
//! gathered in reused buffers: no allocation per event once the buffers have grown.
//! Fields are bytes, not `str`: decoding (UTF-8, JSON) is the caller's choice.

/// Longest line accepted by [`Parser::default`]; a longer one is an error (protects memory).
pub const DEFAULT_MAX_LINE: usize = 64 * 1024;

const BOM: &[u8; 3] = b"\xEF\xBB\xBF";

/// One dispatched event; the slices borrow the parser's buffers until the callback returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Event<'a> {
    /// The `event:` field; empty means the default type, `message`.
    pub name: &'a [u8],
    /// The `data:` lines joined with `\n` (no trailing `\n`).
    pub data: &'a [u8],
    /// The `id:` field when this event's block carried one (`Some(b"")` for an empty
    /// `id:`, which resets the last event id). The id that persists across events, like
    /// `EventSource.lastEventId`, is [`Parser::last_event_id`].
    pub id: Option<&'a [u8]>,
}

/// What the stream yields, in stream order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Item<'a> {
    Event(Event<'a>),
    /// A comment line: the bytes after the `:` (a leading space kept).
    Comment(&'a [u8]),
    /// A valid `retry:` field, in milliseconds (the reconnection time).
    Retry(u64),
}

/// Why the stream cannot be parsed further.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("SSE line longer than {limit} bytes")]
    LineTooLong { limit: usize },
}

/// Parser state: a partial line plus the fields of the event being built.
#[derive(Debug)]
pub struct Parser {
    max_line: usize,
    line: Vec<u8>,
    event: Vec<u8>,
    data: Vec<u8>,
    /// The last event id buffer (persists across events).
    last_id: Vec<u8>,
    has_data: bool,
    /// This block carried an `id:` field.
    block_id: bool,
    /// The previous input ended in CR: a leading LF belongs to that line end.
    skip_lf: bool,
    /// Bytes of a leading BOM matched so far; `BOM_DONE` once past the stream's start.
    bom: u8,
}

const BOM_DONE: u8 = u8::MAX;

impl Default for Parser {
    fn default() -> Self {
        Parser::with_max_line(DEFAULT_MAX_LINE)
    }
}

impl Parser {
    /// A parser that refuses lines longer than `max_line` bytes.
    pub fn with_max_line(max_line: usize) -> Self {
        Parser {
            max_line,
            line: Vec::new(),
            event: Vec::new(),
            data: Vec::new(),
            last_id: Vec::new(),
            has_data: false,
            block_id: false,
            skip_lf: false,
            bom: 0,
        }
    }

    /// The last event id seen so far (what a reconnect sends as `Last-Event-ID`): set by
    /// every `id:` field at the end of its block, kept across events, emptied by `id:`
    /// with an empty value.
    pub fn last_event_id(&self) -> &[u8] {
        &self.last_id
    }

    /// Parses `input`, calling `f` for every complete item. After an error the parser
    /// must not be fed again.
    pub fn feed(&mut self, mut input: &[u8], f: &mut impl FnMut(Item<'_>)) -> Result<(), Error> {
        if self.bom != BOM_DONE {
            input = self.skip_bom(input);
            if self.bom != BOM_DONE {
                return Ok(());
            }
        }
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
                if self.line.len() + pos > self.max_line {
                    return Err(Error::LineTooLong {
                        limit: self.max_line,
                    });
                }
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
        if self.line.len() + input.len() > self.max_line {
            return Err(Error::LineTooLong {
                limit: self.max_line,
            });
        }
        self.line.extend_from_slice(input);
        Ok(())
    }

    /// Consumes the part of a leading BOM in `input`; a partial BOM that turns out not to
    /// be one is content, put back in front of the line.
    fn skip_bom<'i>(&mut self, mut input: &'i [u8]) -> &'i [u8] {
        while let Some(&b) = input.first() {
            let matched = usize::from(self.bom);
            if b != BOM[matched] {
                self.line.extend_from_slice(&BOM[..matched]);
                self.bom = BOM_DONE;
                return input;
            }
            input = &input[1..];
            self.bom += 1;
            if usize::from(self.bom) == BOM.len() {
                self.bom = BOM_DONE;
                return input;
            }
        }
        input
    }

    fn line_done(&mut self, line: &[u8], f: &mut impl FnMut(Item<'_>)) {
        if line.is_empty() {
            if self.has_data {
                f(Item::Event(Event {
                    name: &self.event,
                    data: &self.data,
                    id: self.block_id.then_some(&self.last_id[..]),
                }));
            }
            self.event.clear();
            self.data.clear();
            self.has_data = false;
            self.block_id = false;
            return;
        }
        if line[0] == b':' {
            f(Item::Comment(&line[1..]));
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
                self.last_id.clear();
                self.last_id.extend_from_slice(value);
                self.block_id = true;
            }
            b"retry" if !value.is_empty() && value.iter().all(u8::is_ascii_digit) => {
                // All digits: only overflow can fail; a huge value saturates.
                let ms = std::str::from_utf8(value)
                    .ok()
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(u64::MAX);
                f(Item::Retry(ms));
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Renders items as strings (`name|data|id`, `: text`, `retry N`).
    fn collect(p: &mut Parser, parts: &[&[u8]]) -> Vec<String> {
        let mut out = Vec::new();
        for part in parts {
            p.feed(part, &mut |item| out.push(render(item))).unwrap();
        }
        out
    }

    fn render(item: Item<'_>) -> String {
        let s = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        match item {
            Item::Event(e) => format!("{}|{}|{}", s(e.name), s(e.data), e.id.map_or("-".into(), s)),
            Item::Comment(c) => format!(":{}", s(c)),
            Item::Retry(ms) => format!("retry {ms}"),
        }
    }

    /// The whole stream at once, and split into pieces of every size from 1 byte on.
    fn every_split(stream: &[u8]) -> Vec<String> {
        let whole = collect(&mut Parser::default(), &[stream]);
        for step in 1..=stream.len() {
            let parts: Vec<&[u8]> = stream.chunks(step).collect();
            assert_eq!(
                collect(&mut Parser::default(), &parts),
                whole,
                "split every {step} bytes"
            );
        }
        whole
    }

    #[test]
    fn any_split_and_any_line_end() {
        let stream: &[u8] =
            b"retry: 1500\n: hb\r\nevent: comment\rid: 7\r\ndata: {\"a\":1}\r\ndata:x\n\n\
            event:likes\ndata: {}\n\n: ignored\ndata: plain\n\nevent: only-event\n\n";
        assert_eq!(
            every_split(stream),
            [
                "retry 1500",
                ": hb",
                "comment|{\"a\":1}\nx|7",
                "likes|{}|-",
                ": ignored",
                "|plain|-",
            ]
        );
    }

    #[test]
    fn crlf_split_across_inputs_is_one_line_end() {
        let got = collect(&mut Parser::default(), &[b"data: a\r", b"\n\r", b"\n"]);
        assert_eq!(got, ["|a|-"]);
        // CR at the end of one input, then a non-LF: the CR alone ended the line.
        let got = collect(&mut Parser::default(), &[b"data: a\r", b"\r"]);
        assert_eq!(got, ["|a|-"]);
    }

    #[test]
    fn cr_alone_ends_lines() {
        assert_eq!(
            every_split(b"event: e\rdata: 1\rdata: 2\r\rdata: 3\r\r"),
            ["e|1\n2|-", "|3|-"]
        );
    }

    #[test]
    fn leading_bom_is_ignored_once() {
        assert_eq!(every_split(b"\xEF\xBB\xBFdata: a\n\n"), ["|a|-"]);
        // Only one BOM is stripped: a second one is part of the field name (unknown).
        assert_eq!(
            every_split(b"\xEF\xBB\xBF\xEF\xBB\xBFdata: a\n\ndata: b\n\n"),
            ["|b|-"]
        );
        // A BOM later in the stream is content, not stripped.
        assert_eq!(every_split(b"data: \xEF\xBB\xBFa\n\n").len(), 1);
        // A partial BOM that is not one is put back.
        assert_eq!(every_split(b"\xEFdata\n\n"), Vec::<String>::new());
        assert_eq!(every_split(b"\xEF\xBB: c\ndata: x\n\n"), ["|x|-"]);
        let got = collect(
            &mut Parser::default(),
            &[b"\xEF", b"\xBB", b"\xBF", b"data:a\n\n"],
        );
        assert_eq!(got, ["|a|-"]);
    }

    #[test]
    fn field_without_colon_has_an_empty_value() {
        // `data` alone is an empty data line: the event is dispatched with empty data.
        assert_eq!(every_split(b"data\n\n"), ["||-"]);
        assert_eq!(every_split(b"data\ndata\n\n"), ["|\n|-"]);
        // `event` alone sets the empty type (message); `id` alone resets the id.
        assert_eq!(every_split(b"event: x\nevent\ndata: 1\nid\n\n"), ["|1|"]);
    }

    #[test]
    fn only_one_space_after_the_colon_is_dropped() {
        assert_eq!(
            every_split(b"data:nospace\n\ndata:  two\n\ndata: \n\n"),
            ["|nospace|-", "| two|-", "||-"]
        );
        // Colons inside the value are kept.
        assert_eq!(every_split(b"data: a:b: c\n\n"), ["|a:b: c|-"]);
    }

    #[test]
    fn a_block_without_data_is_not_dispatched() {
        assert_eq!(every_split(b"event: e\n\nid: 1\n\n\n\ndata:\n\n"), ["||-"]);
        // The id of a dispatched-nothing block still becomes the last event id.
        let mut p = Parser::default();
        collect(&mut p, &[b"id: 9\n\n"]);
        assert_eq!(p.last_event_id(), b"9");
    }

    #[test]
    fn id_with_nul_is_ignored_and_the_last_id_persists() {
        let mut p = Parser::default();
        let got = collect(
            &mut p,
            &[b"id: 1\ndata: a\n\ndata: b\n\nid: 2\0x\ndata: c\n\nid\ndata: d\n\n"],
        );
        assert_eq!(got, ["|a|1", "|b|-", "|c|-", "|d|"]);
        assert_eq!(p.last_event_id(), b"");
        collect(&mut p, &[b"id: 3\ndata: e\n\ndata: f\n\n"]);
        assert_eq!(p.last_event_id(), b"3");
    }

    #[test]
    fn retry_needs_only_digits() {
        assert_eq!(
            every_split(
                b"retry: 10\nretry: x\nretry: -1\nretry: +5\nretry:\nretry: 2 \nretry:007\n"
            ),
            ["retry 10", "retry 7"]
        );
        assert_eq!(
            every_split(b"retry: 99999999999999999999999\n"),
            [format!("retry {}", u64::MAX)]
        );
    }

    #[test]
    fn comments_carry_their_text_and_unknown_fields_are_ignored() {
        assert_eq!(
            every_split(b": heartbeat\n:\nfoo: bar\nDATA: no\n data: no\ndata: yes\n\n"),
            [": heartbeat", ":", "|yes|-"]
        );
    }

    #[test]
    fn an_unfinished_event_is_not_dispatched() {
        assert_eq!(every_split(b"data: a\n\ndata: b\n"), ["|a|-"]);
    }

    #[test]
    fn long_lines_are_refused() {
        let mut p = Parser::with_max_line(8);
        assert!(p.feed(b"data: 12\n\n", &mut |_| {}).is_ok());
        let mut p = Parser::with_max_line(8);
        assert_eq!(
            p.feed(b"data: 123", &mut |_| {}),
            Err(Error::LineTooLong { limit: 8 })
        );
        let mut p = Parser::with_max_line(8);
        p.feed(b"data:", &mut |_| {}).unwrap();
        assert!(p.feed(b" 1234\n", &mut |_| {}).is_err());
    }
}
