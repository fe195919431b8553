use super::Error;

/// Collects bytes from the network and yields complete reply lines.
///
/// A line longer than the cap, or one that is not UTF-8, is a protocol
/// error; so are bytes after a line, since the server answers each request
/// with exactly one line and the client never pipelines.
#[derive(Debug)]
pub struct LineReader {
    buf: Vec<u8>,
    cap: usize,
}

impl LineReader {
    /// A reader that accepts lines of at most `cap` bytes (without the `\n`).
    pub fn new(cap: usize) -> Self {
        Self {
            buf: Vec::new(),
            cap,
        }
    }

    /// Appends bytes read from the network.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// Whether any unconsumed bytes are buffered.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// The complete reply line, if one has arrived, without `\n` or a trailing `\r`.
    pub fn take_line(&mut self) -> Result<Option<String>, Error> {
        let Some(end) = self.buf.iter().position(|&b| b == b'\n') else {
            if self.buf.len() > self.cap {
                return Err(self.too_long());
            }
            return Ok(None);
        };
        if end > self.cap {
            return Err(self.too_long());
        }
        if end + 1 != self.buf.len() {
            return Err(Error::Protocol(
                "unexpected bytes after a reply line".into(),
            ));
        }
        let mut line: Vec<u8> = self.buf.drain(..).collect();
        line.pop(); // the '\n'
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        String::from_utf8(line)
            .map(Some)
            .map_err(|_| Error::Protocol("reply line is not UTF-8".into()))
    }

    fn too_long(&self) -> Error {
        Error::Protocol(format!("reply line longer than {} bytes", self.cap))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yields_a_line_split_across_reads() {
        let mut r = LineReader::new(64);
        r.push(b"ok 12");
        assert_eq!(r.take_line(), Ok(None));
        r.push(b"3\r\n");
        assert_eq!(r.take_line(), Ok(Some("ok 123".into())));
        assert!(r.is_empty());
    }

    #[test]
    fn caps_line_length_even_before_the_newline() {
        let mut r = LineReader::new(4);
        r.push(b"12345");
        assert!(matches!(r.take_line(), Err(Error::Protocol(_))));
        let mut r = LineReader::new(4);
        r.push(b"1234\n");
        assert_eq!(r.take_line(), Ok(Some("1234".into())));
        let mut r = LineReader::new(4);
        r.push(b"12345\n");
        assert!(matches!(r.take_line(), Err(Error::Protocol(_))));
    }

    #[test]
    fn rejects_non_utf8_and_trailing_bytes() {
        let mut r = LineReader::new(64);
        r.push(b"ok \xff\n");
        assert!(matches!(r.take_line(), Err(Error::Protocol(_))));
        let mut r = LineReader::new(64);
        r.push(b"ok\nok\n");
        assert!(matches!(r.take_line(), Err(Error::Protocol(_))));
    }
}
