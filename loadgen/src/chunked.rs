//! Incremental decoder of HTTP/1.1 `Transfer-Encoding: chunked` bodies, zero-copy.
//!
//! Input may be split anywhere (inside the size line, the data or the CRLFs); decoded
//! data is handed out as slices of the input.

/// Where the decoder is inside the chunk framing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Reading the hex size.
    Size,
    /// Skipping a chunk extension (`;name=value`) up to the CR.
    Ext,
    /// Expecting the LF after the size line's CR.
    SizeLf,
    /// Inside `remaining` bytes of chunk data.
    Data,
    /// Expecting the CR after the chunk data.
    DataCr,
    /// Expecting the LF after the chunk data.
    DataLf,
    /// At the start of a trailer line (after the last chunk).
    TrailerStart,
    /// Inside a trailer field line.
    TrailerLine,
    /// Expecting the LF of the final empty line.
    TrailerLf,
    /// The terminating empty line was read.
    Done,
}

/// Decoder state; a few bytes per connection.
#[derive(Debug)]
pub struct Chunked {
    state: State,
    remaining: u64,
    digits: u8,
}

impl Default for Chunked {
    fn default() -> Self {
        Self {
            state: State::Size,
            remaining: 0,
            digits: 0,
        }
    }
}

impl Chunked {
    /// Decodes `input`, calling `out` with each piece of body data. Returns `Ok(true)` once
    /// the last chunk and its trailer were read (anything after it is ignored).
    pub fn feed(
        &mut self,
        mut input: &[u8],
        out: &mut impl FnMut(&[u8]),
    ) -> Result<bool, &'static str> {
        while !input.is_empty() {
            if self.state == State::Data {
                let n = (self.remaining.min(input.len() as u64)) as usize;
                out(&input[..n]);
                input = &input[n..];
                self.remaining -= n as u64;
                if self.remaining == 0 {
                    self.state = State::DataCr;
                }
                continue;
            }
            let b = input[0];
            input = &input[1..];
            self.state = match (self.state, b) {
                (State::Size, b) if b.is_ascii_hexdigit() => {
                    if self.digits >= 15 {
                        return Err("chunk size too large");
                    }
                    self.digits += 1;
                    self.remaining = self.remaining * 16 + u64::from(hex(b));
                    State::Size
                }
                (State::Size, b';' | b' ' | b'\t') if self.digits > 0 => State::Ext,
                (State::Size | State::Ext, b'\r') if self.digits > 0 => State::SizeLf,
                (State::Size | State::Ext | State::SizeLf, b'\n') if self.digits > 0 => {
                    self.size_line_done()
                }
                (State::Ext, _) => State::Ext,
                (State::DataCr, b'\r') => State::DataLf,
                (State::DataCr | State::DataLf, b'\n') => State::Size,
                (State::TrailerStart, b'\r') => State::TrailerLf,
                (State::TrailerStart | State::TrailerLf, b'\n') => State::Done,
                (State::TrailerLine, b'\n') => State::TrailerStart,
                (State::TrailerStart | State::TrailerLine, _) => State::TrailerLine,
                (State::Done, _) => return Ok(true),
                _ => return Err("malformed chunked encoding"),
            };
        }
        Ok(self.state == State::Done)
    }

    fn size_line_done(&mut self) -> State {
        self.digits = 0;
        if self.remaining == 0 {
            State::TrailerStart
        } else {
            State::Data
        }
    }
}

fn hex(b: u8) -> u8 {
    match b {
        b'0'..=b'9' => b - b'0',
        b'a'..=b'f' => b - b'a' + 10,
        _ => b - b'A' + 10,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_split(wire: &[u8], step: usize) -> (Vec<u8>, bool) {
        let mut d = Chunked::default();
        let mut body = Vec::new();
        let mut done = false;
        for part in wire.chunks(step) {
            done = d.feed(part, &mut |s| body.extend_from_slice(s)).unwrap();
        }
        (body, done)
    }

    #[test]
    fn decodes_any_split() {
        let wire = b"5\r\nhello\r\n1;ext=1\r\n \r\nA\r\n0123456789\r\n0\r\nX-T: 1\r\n\r\n";
        for step in 1..=wire.len() {
            let (body, done) = decode_split(wire, step);
            assert_eq!(body, b"hello 0123456789", "step {step}");
            assert!(done, "step {step}");
        }
    }

    #[test]
    fn open_stream_is_not_done_and_garbage_fails() {
        let (body, done) = decode_split(b"3\r\nabc\r\n", 2);
        assert_eq!(body, b"abc");
        assert!(!done);
        let mut d = Chunked::default();
        assert!(d.feed(b"zz\r\n", &mut |_| {}).is_err());
        let mut d = Chunked::default();
        assert!(d.feed(b"3\r\nabcX", &mut |_| {}).is_err());
    }
}
