//! Pieces of the reports the benchmarks print.

/// Lines printed to standard output as they come (a long run shows its
/// progress) and kept whole, for `--markdown`.
#[derive(Debug, Default)]
pub struct Printed(String);

impl Printed {
    /// Prints `line` and keeps it.
    pub fn line(&mut self, line: impl AsRef<str>) {
        let line = line.as_ref();
        println!("{line}");
        self.0.push_str(line);
        self.0.push('\n');
    }

    /// Everything printed so far, a line each.
    pub fn text(&self) -> &str {
        &self.0
    }
}

/// Prints `text` to standard output. A reader that has gone away (a closed
/// pipe, as with `| head`) ends the printing without an error: what it
/// would have read is in the files the benchmark wrote before printing.
/// `print!` would panic there instead.
///
/// # Errors
/// Any other failure to write standard output.
pub fn print(text: &str) -> anyhow::Result<()> {
    use anyhow::Context as _;
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other.context("standard output"),
    }
}

/// `x` rounded to `digits` decimals, for JSON that reads well.
pub fn round(x: f64, digits: i32) -> f64 {
    let m = 10f64.powi(digits);
    (x * m).round() / m
}
