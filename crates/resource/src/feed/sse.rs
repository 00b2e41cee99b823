//! An incremental parser of Server-Sent Events framing (HTML Living Standard,
//! "Interpreting an event stream"): `field: value` lines, a blank line ends an event,
//! `:` starts a comment, lines end in `\n`, `\r\n` or `\r`. No I/O.

/// One dispatched event. `event` is `message` when the stream named no type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Event {
    pub event: String,
    pub data: String,
}

/// The most a line, or an event's data, may hold before the stream is deemed broken.
const MAX_LEN: usize = 1 << 20;

/// Parses chunks of bytes as they arrive, which may split lines anywhere.
#[derive(Default)]
pub(crate) struct Parser {
    /// Bytes of a line not yet ended.
    partial: Vec<u8>,
    /// The previous chunk ended in `\r`: a `\n` opening this one belongs to it.
    skip_lf: bool,
    event: String,
    data: String,
}

impl Parser {
    /// Take in a chunk and append the events it completes to `out`. Fails on a line or
    /// an event too long to be Tessera's.
    pub fn push(&mut self, chunk: &[u8], out: &mut Vec<Event>) -> Result<(), String> {
        let mut rest = chunk;
        if self.skip_lf {
            self.skip_lf = false;
            if let Some(tail) = rest.strip_prefix(b"\n") {
                rest = tail;
            }
        }
        while let Some(end) = rest.iter().position(|b| *b == b'\n' || *b == b'\r') {
            let line = if self.partial.is_empty() {
                String::from_utf8_lossy(&rest[..end]).into_owned()
            } else {
                self.partial.extend_from_slice(&rest[..end]);
                let line = String::from_utf8_lossy(&self.partial).into_owned();
                self.partial.clear();
                line
            };
            let crlf = rest[end] == b'\r';
            rest = &rest[end + 1..];
            if crlf {
                match rest.first() {
                    Some(b'\n') => rest = &rest[1..],
                    None => self.skip_lf = true,
                    Some(_) => {}
                }
            }
            self.line(&line, out);
            if self.data.len() > MAX_LEN {
                return Err("an event of the revocation feed is too long".into());
            }
        }
        self.partial.extend_from_slice(rest);
        if self.partial.len() > MAX_LEN {
            return Err("a line of the revocation feed is too long".into());
        }
        Ok(())
    }

    fn line(&mut self, line: &str, out: &mut Vec<Event>) {
        if line.is_empty() {
            return self.dispatch(out);
        }
        if line.starts_with(':') {
            return; // a comment, e.g. the keep-alive `: ping`
        }
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (line, ""),
        };
        match field {
            "event" => value.clone_into(&mut self.event),
            "data" => {
                self.data.push_str(value);
                self.data.push('\n');
            }
            // `id` and `retry` need no handling: the cursor is the `seq` in the data.
            _ => {}
        }
    }

    fn dispatch(&mut self, out: &mut Vec<Event>) {
        let mut event = std::mem::take(&mut self.event);
        let mut data = std::mem::take(&mut self.data);
        if data.is_empty() {
            return;
        }
        data.pop(); // the last data line's `\n`
        if event.is_empty() {
            event = "message".into();
        }
        out.push(Event { event, data });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(chunks: &[&[u8]]) -> Vec<Event> {
        let mut parser = Parser::default();
        let mut out = Vec::new();
        for chunk in chunks {
            parser.push(chunk, &mut out).unwrap();
        }
        out
    }

    fn event(event: &str, data: &str) -> Event {
        Event {
            event: event.into(),
            data: data.into(),
        }
    }

    #[test]
    fn events_comments_and_line_endings() {
        let stream = b": ping\n\nevent: revoked\nid: 1\ndata: {\"seq\":1}\n\n\
                       event:synced\r\ndata:{\"cursor\":1}\r\n\r\ndata: a\rdata: b\r\r";
        assert_eq!(
            parse(&[stream]),
            vec![
                event("revoked", "{\"seq\":1}"),
                event("synced", "{\"cursor\":1}"),
                event("message", "a\nb"),
            ]
        );
    }

    #[test]
    fn chunks_split_anywhere() {
        let stream: &[u8] = b"event: revoked\r\ndata: {\"seq\":7}\r\n\r\n: ping\r\n\r\n";
        let whole = parse(&[stream]);
        assert_eq!(whole, vec![event("revoked", "{\"seq\":7}")]);
        for at in 0..stream.len() {
            assert_eq!(
                parse(&[&stream[..at], &stream[at..]]),
                whole,
                "split at {at}"
            );
        }
        let bytes: Vec<&[u8]> = stream.chunks(1).collect();
        assert_eq!(parse(&bytes), whole);
    }

    #[test]
    fn an_event_without_data_is_not_dispatched() {
        assert!(parse(&[b"event: synced\n\n\n"]).is_empty());
    }

    #[test]
    fn overlong_lines_are_refused() {
        let mut parser = Parser::default();
        let long = vec![b'x'; MAX_LEN + 1];
        assert!(parser.push(&long, &mut Vec::new()).is_err());
    }
}
