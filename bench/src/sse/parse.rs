//! Reading a Server-Sent Events response off a raw socket, without an HTTP client: the
//! HTTP/1.1 response head, the chunked transfer coding, and the event-stream format.
//!
//! Twenty thousand streams in one process rule out a full HTTP client per stream (its
//! buffers and connection pool per stream would be most of what gets measured). These
//! decoders keep only what a partial line or chunk header needs between reads, so the
//! bytes a stream costs the bench are its socket, its task and its partial event.

/// What matters of a response head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    pub status: u16,
    /// `Transfer-Encoding: chunked` (otherwise the body runs until the connection closes).
    pub chunked: bool,
    pub content_type: Option<String>,
}

/// Parse the response head at the start of `buf`. `Ok(None)`: not all of it is here yet;
/// `Ok(Some((head, n)))`: the body starts at `buf[n]`.
pub fn parse_head(buf: &[u8]) -> Result<Option<(Head, usize)>, String> {
    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
        if buf.len() > 16 * 1024 {
            return Err("response head longer than 16 KiB".into());
        }
        return Ok(None);
    };
    let text = std::str::from_utf8(&buf[..end]).map_err(|_| "response head is not UTF-8")?;
    let mut lines = text.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap_or_default();
    if !version.starts_with("HTTP/1.") {
        return Err(format!("not an HTTP/1.x response: {status_line:?}"));
    }
    let status = parts
        .next()
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or_else(|| format!("no status code in {status_line:?}"))?;
    let mut head = Head {
        status,
        chunked: false,
        content_type: None,
    };
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            return Err(format!("malformed header line {line:?}"));
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("transfer-encoding") {
            head.chunked = value
                .split(',')
                .any(|c| c.trim().eq_ignore_ascii_case("chunked"));
        } else if name.eq_ignore_ascii_case("content-type") {
            head.content_type = Some(value.to_string());
        }
    }
    Ok(Some((head, end + 4)))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum ChunkState {
    /// Reading the hexadecimal size.
    #[default]
    Size,
    /// Skipping a chunk extension up to the end of the size line.
    Extension,
    /// After the size line's `\r`.
    SizeLf,
    Data,
    /// After a chunk's data: its `\r\n`.
    DataCr,
    DataLf,
    /// After the last (empty) chunk: at the start of a trailer line.
    TrailerStart,
    TrailerLine,
    TrailerLf,
    Done,
}

/// The chunked transfer coding (RFC 9112 §7.1), decoded incrementally.
#[derive(Debug, Default)]
pub struct Chunked {
    state: ChunkState,
    /// Size being read, then bytes of the current chunk still to come.
    remaining: u64,
    size_digits: u8,
}

impl Chunked {
    /// The last chunk and the trailer have been read: the response is complete.
    pub fn is_done(&self) -> bool {
        self.state == ChunkState::Done
    }

    /// Decode `input`, handing each piece of payload to `out` in order. Pieces follow the
    /// reads, not the chunks: a chunk split across reads comes out in several pieces.
    pub fn feed(&mut self, input: &[u8], mut out: impl FnMut(&[u8])) -> Result<(), String> {
        let mut i = 0;
        while i < input.len() {
            let b = input[i];
            match self.state {
                ChunkState::Size => {
                    let digit = match b {
                        b'0'..=b'9' => Some(b - b'0'),
                        b'a'..=b'f' => Some(b - b'a' + 10),
                        b'A'..=b'F' => Some(b - b'A' + 10),
                        _ => None,
                    };
                    match (digit, b) {
                        (Some(d), _) => {
                            self.size_digits += 1;
                            if self.size_digits > 15 {
                                return Err("chunk size too large".into());
                            }
                            self.remaining = self.remaining * 16 + u64::from(d);
                        }
                        (None, b';' | b' ' | b'\t') if self.size_digits > 0 => {
                            self.state = ChunkState::Extension
                        }
                        (None, b'\r') if self.size_digits > 0 => self.state = ChunkState::SizeLf,
                        _ => return Err(format!("bad byte {b:#04x} in a chunk size")),
                    }
                    i += 1;
                }
                ChunkState::Extension => {
                    if b == b'\r' {
                        self.state = ChunkState::SizeLf;
                    }
                    i += 1;
                }
                ChunkState::SizeLf => {
                    if b != b'\n' {
                        return Err("chunk size line not ended by CRLF".into());
                    }
                    self.size_digits = 0;
                    self.state = if self.remaining == 0 {
                        ChunkState::TrailerStart
                    } else {
                        ChunkState::Data
                    };
                    i += 1;
                }
                ChunkState::Data => {
                    let take = (input.len() - i).min(self.remaining as usize);
                    out(&input[i..i + take]);
                    i += take;
                    self.remaining -= take as u64;
                    if self.remaining == 0 {
                        self.state = ChunkState::DataCr;
                    }
                }
                ChunkState::DataCr => {
                    if b != b'\r' {
                        return Err("chunk data not followed by CRLF".into());
                    }
                    self.state = ChunkState::DataLf;
                    i += 1;
                }
                ChunkState::DataLf => {
                    if b != b'\n' {
                        return Err("chunk data not followed by CRLF".into());
                    }
                    self.state = ChunkState::Size;
                    i += 1;
                }
                ChunkState::TrailerStart => {
                    self.state = if b == b'\r' {
                        ChunkState::TrailerLf
                    } else {
                        ChunkState::TrailerLine
                    };
                    i += 1;
                }
                ChunkState::TrailerLine => {
                    if b == b'\n' {
                        self.state = ChunkState::TrailerStart;
                    }
                    i += 1;
                }
                ChunkState::TrailerLf => {
                    if b != b'\n' {
                        return Err("trailer not ended by CRLF".into());
                    }
                    self.state = ChunkState::Done;
                    i += 1;
                }
                ChunkState::Done => return Ok(()),
            }
        }
        Ok(())
    }
}

/// One thing the event stream said.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SseItem<'a> {
    /// A dispatched event: its type (`message` when none was given), data (lines joined
    /// by `\n`) and the id field it carried, if any.
    Event {
        event: &'a str,
        data: &'a [u8],
        id: Option<&'a str>,
    },
    /// A comment line (the notifier's heartbeats).
    Comment,
}

/// The `text/event-stream` format (HTML Living Standard, "Server-sent events"), parsed
/// incrementally: lines end with CRLF, LF or CR; `field: value` with one optional space;
/// an empty line dispatches the event if it has data.
#[derive(Debug, Default)]
pub struct SseParser {
    /// A line not yet complete at the end of the last input.
    partial: Vec<u8>,
    /// The last input ended with `\r`: a `\n` starting the next one belongs to it.
    after_cr: bool,
    event: String,
    data: Vec<u8>,
    id: Option<String>,
    /// Bytes of data held for the event being read (for callers bounding memory).
    pub max_data: usize,
}

impl SseParser {
    /// Parse `input`, handing each event and comment to `out`.
    pub fn feed(&mut self, mut input: &[u8], mut out: impl FnMut(SseItem<'_>)) {
        if self.after_cr {
            self.after_cr = false;
            if let Some(rest) = input.strip_prefix(b"\n") {
                input = rest;
            }
        }
        while !input.is_empty() {
            let Some(end) = input.iter().position(|&b| b == b'\n' || b == b'\r') else {
                self.partial.extend_from_slice(input);
                return;
            };
            let (line, terminator) = (&input[..end], input[end]);
            input = &input[end + 1..];
            if terminator == b'\r' {
                match input.first() {
                    Some(b'\n') => input = &input[1..],
                    Some(_) => {}
                    None => self.after_cr = true,
                }
            }
            if self.partial.is_empty() {
                self.line(line, &mut out);
            } else {
                let mut whole = std::mem::take(&mut self.partial);
                whole.extend_from_slice(line);
                self.line(&whole, &mut out);
                whole.clear();
                // Keep the allocation unless it grew large (a long data line).
                if whole.capacity() <= 4096 {
                    self.partial = whole;
                }
            }
        }
    }

    fn line(&mut self, line: &[u8], out: &mut impl FnMut(SseItem<'_>)) {
        if line.is_empty() {
            if !self.data.is_empty() {
                self.data.pop(); // the `\n` after the last data line
                let event = if self.event.is_empty() {
                    "message"
                } else {
                    &self.event
                };
                out(SseItem::Event {
                    event,
                    data: &self.data,
                    id: self.id.as_deref(),
                });
            }
            self.event.clear();
            self.data.clear();
            if self.data.capacity() > 64 * 1024 {
                self.data = Vec::new();
            }
            self.id = None;
            return;
        }
        if line[0] == b':' {
            out(SseItem::Comment);
            return;
        }
        let (field, value) = match line.iter().position(|&b| b == b':') {
            Some(colon) => {
                let value = &line[colon + 1..];
                (&line[..colon], value.strip_prefix(b" ").unwrap_or(value))
            }
            None => (line, &b""[..]),
        };
        match field {
            b"event" => {
                self.event.clear();
                self.event.push_str(&String::from_utf8_lossy(value));
            }
            b"data" => {
                self.data.extend_from_slice(value);
                self.data.push(b'\n');
                self.max_data = self.max_data.max(self.data.len());
            }
            b"id" if !value.contains(&0) => {
                self.id = Some(String::from_utf8_lossy(value).into_owned());
            }
            // `retry` and unknown fields change nothing here.
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every way of cutting `input` in two, fed in two pieces.
    fn splits(input: &[u8]) -> impl Iterator<Item = (&[u8], &[u8])> {
        (0..=input.len()).map(move |at| input.split_at(at))
    }

    #[test]
    fn the_head_is_parsed_once_complete() {
        let raw = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello";
        let (head, n) = parse_head(raw).expect("valid").expect("complete");
        assert_eq!(head.status, 200);
        assert!(head.chunked);
        assert_eq!(head.content_type.as_deref(), Some("text/event-stream"));
        assert_eq!(&raw[n..], b"5\r\nhello");
        assert_eq!(parse_head(&raw[..20]), Ok(None));
        let (head, _) =
            parse_head(b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\n\r\n")
                .expect("valid")
                .expect("complete");
        assert_eq!((head.status, head.chunked), (503, false));
        assert!(parse_head(b"SSH-2.0-x\r\n\r\n").is_err());
    }

    #[test]
    fn chunks_decode_however_the_reads_fall() {
        let body = b"5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\nx-trailer: 1\r\n\r\n";
        for (a, b) in splits(body) {
            let mut decoder = Chunked::default();
            let mut out = Vec::new();
            decoder
                .feed(a, |p| out.extend_from_slice(p))
                .expect("valid");
            decoder
                .feed(b, |p| out.extend_from_slice(p))
                .expect("valid");
            assert_eq!(out, b"hello, world", "split at {}", a.len());
            assert!(decoder.is_done());
        }
        let mut decoder = Chunked::default();
        decoder.feed(b"A\r\n0123456789\r\n", |_| {}).expect("hex");
        assert!(!decoder.is_done());
        assert!(Chunked::default().feed(b"zz\r\n", |_| {}).is_err());
        assert!(Chunked::default().feed(b"2\r\nabX", |_| {}).is_err());
        assert!(Chunked::default()
            .feed(b"ffffffffffffffffff\r\n", |_| {})
            .is_err());
    }

    fn events(parser: &mut SseParser, input: &[u8], out: &mut Vec<String>) {
        parser.feed(input, |item| match item {
            SseItem::Event { event, data, id } => out.push(format!(
                "{event}|{}|{}",
                String::from_utf8_lossy(data),
                id.unwrap_or("-")
            )),
            SseItem::Comment => out.push("comment".into()),
        });
    }

    #[test]
    fn events_parse_however_the_reads_fall() {
        // What axum writes: event, data, id, retry on the first; a heartbeat comment.
        let stream = b"event: ready\ndata: {\"detail\":\"streaming\"}\nid: 5361\nretry: 2000\n\n:\n\nevent: seat_status_changed\ndata: {\"seats\":[]}\nid: 5362\n\n";
        let expected = [
            "ready|{\"detail\":\"streaming\"}|5361",
            "comment",
            "seat_status_changed|{\"seats\":[]}|5362",
        ];
        for (a, b) in splits(stream) {
            let mut parser = SseParser::default();
            let mut out = Vec::new();
            events(&mut parser, a, &mut out);
            events(&mut parser, b, &mut out);
            assert_eq!(out, expected, "split at {}", a.len());
        }
    }

    #[test]
    fn line_endings_fields_and_data_lines_follow_the_standard() {
        let stream = b"data:first\r\ndata: second\r\rid\r\n\revent:x\ndata\n\nid: a\0b\ndata: y\n\nnothing: here\n\n";
        for (a, b) in splits(stream) {
            let mut parser = SseParser::default();
            let mut out = Vec::new();
            events(&mut parser, a, &mut out);
            events(&mut parser, b, &mut out);
            assert_eq!(
                out,
                [
                    "message|first\nsecond|-",
                    // A block with no data (`id` alone) dispatches nothing; `data` with
                    // no colon is an empty data line.
                    "x||-",
                    // An id containing NUL is ignored.
                    "message|y|-",
                ],
                "split at {}",
                a.len()
            );
        }
    }

    #[test]
    fn an_event_without_data_is_not_dispatched() {
        let mut parser = SseParser::default();
        let mut out = Vec::new();
        events(&mut parser, b"event: ready\nid: 3\n\ndata: z\n\n", &mut out);
        assert_eq!(out, ["message|z|-"]);
    }
}
