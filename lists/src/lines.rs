//! A reader that counts the lines it has handed on, so that a streaming
//! parser (quick-xml, serde_json) can say on which line a bad record is
//! without holding the file.

use std::cell::Cell;
use std::io::{BufRead, Read};
use std::rc::Rc;

/// The line a [`Lines`] reader has reached, shared with the code that
/// reports records while the parser owns the reader.
#[derive(Clone, Debug, Default)]
pub(crate) struct LineCounter(Rc<Cell<u64>>);

impl LineCounter {
    /// The 1-based line of the next byte to be read.
    pub(crate) fn line(&self) -> u64 {
        self.0.get() + 1
    }

    fn add(&self, bytes: &[u8]) {
        let n = bytes.iter().filter(|&&b| b == b'\n').count() as u64;
        self.0.set(self.0.get() + n);
    }
}

/// `inner`, counting the newlines read through it.
pub(crate) struct Lines<R> {
    inner: R,
    counter: LineCounter,
}

impl<R: BufRead> Lines<R> {
    pub(crate) fn new(inner: R) -> (Self, LineCounter) {
        let counter = LineCounter::default();
        (
            Lines {
                inner,
                counter: counter.clone(),
            },
            counter,
        )
    }
}

impl<R: BufRead> Read for Lines<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.counter.add(&buf[..n]);
        Ok(n)
    }
}

impl<R: BufRead> BufRead for Lines<R> {
    fn fill_buf(&mut self) -> std::io::Result<&[u8]> {
        self.inner.fill_buf()
    }

    fn consume(&mut self, amt: usize) {
        // The bytes consumed are still in the buffer: fill_buf returns it
        // without reading while it is not empty.
        if let Ok(buf) = self.inner.fill_buf() {
            self.counter.add(&buf[..amt.min(buf.len())]);
        }
        self.inner.consume(amt);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_lines_read_and_consumed() {
        let (mut r, lines) = Lines::new(&b"a\nb\nc\n"[..]);
        assert_eq!(lines.line(), 1);
        let mut one = [0u8; 2];
        r.read_exact(&mut one).unwrap();
        assert_eq!(lines.line(), 2);
        r.consume(3);
        assert_eq!(lines.line(), 3);
        let mut rest = String::new();
        r.read_to_string(&mut rest).unwrap();
        assert_eq!((rest.as_str(), lines.line()), ("\n", 4));
    }
}
