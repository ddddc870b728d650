//! Acting on matches: the match feed, as `matches --follow` prints it and
//! as `serve --webhook` posts it ([`webhook`]).
//!
//! Both read [`store::Feed`]: the match records in commit order, each with
//! a [`Cursor`] that resumes after it, so that a reader which keeps the
//! cursor of the last record it handled and starts again from it neither
//! misses a record nor gets one twice. What can repeat is the last record
//! before a crash: the one handled and not yet saved. Delivery is
//! therefore *at least once*, and every record carries its `id`, which
//! never changes, for the consumer to deduplicate on.
//!
//! `matches --follow` ([`follow`]) writes each record as one JSON line,
//! flushes it, and only then saves its cursor (`--cursor FILE`: written to
//! a temporary file, synced, renamed over the old one): a follower killed
//! at any moment resumes with the last line it wrote, at worst again.
//! What it cannot know is whether the program reading its output acted on
//! a line: a consumer that may crash with lines unread keeps its own last
//! acted-on id and restarts the follower with `--after`; the webhook, whose
//! cursor advances only when the receiver answers 2xx, does that for it.

pub mod webhook;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use crossbeam_channel::{Receiver, RecvTimeoutError};

use crate::store::{self, Cursor, Location, StoreError};

/// Records read at a time.
const BATCH: usize = 256;

/// Where `matches --follow` starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// After this cursor (`--after`), or a record's id.
    After(Cursor),
    /// From the cursor file if it exists, else from the first record.
    Beginning,
    /// From the cursor file if it exists, else after the newest record
    /// now (`--from-now`).
    Now,
}

/// What `matches --follow` does.
#[derive(Debug, Clone)]
pub struct FollowOptions {
    /// Where to start.
    pub start: Start,
    /// Where the cursor is kept between runs (`--cursor`).
    pub cursor_file: Option<PathBuf>,
    /// How often the store is asked for new records (`--poll`).
    pub poll: Duration,
}

/// Prints every match record of the store at `location` after the start,
/// one JSON line each, to `out` (flushed after each line), then waits for
/// new ones, asking the store every `poll`, until `stop` receives or is
/// closed. With a cursor file, the cursor of each line is saved there once
/// the line is flushed. Returns how many lines it wrote.
///
/// A store that cannot be reached (PostgreSQL restarting) is asked again at
/// the next poll; any other failure ends it.
///
/// # Errors
/// If the store cannot be opened, the cursor file cannot be read or
/// written, `out` fails (a closed pipe), or the store fails otherwise.
pub fn follow(
    location: &Location,
    options: &FollowOptions,
    out: &mut dyn Write,
    stop: &Receiver<()>,
) -> anyhow::Result<u64> {
    let mut feed = store::open_feed(location, false)?;
    let saved = match &options.cursor_file {
        Some(path) => read_cursor(path)?.map(|c| (path, c)),
        None => None,
    };
    let start = match (options.start, saved) {
        (Start::After(c), _) => feed.resolve(c).with_context(|| format!("--after {c}"))?,
        (_, Some((path, c))) => feed
            .resolve(c)
            .with_context(|| format!("cursor file {}", path.display()))?,
        (Start::Beginning, None) => Cursor::START,
        (Start::Now, None) => {
            let head = feed.head()?;
            // Saved at once: a follower stopped before the next record
            // resumes here, not at the newest record of its next start.
            if let Some(path) = &options.cursor_file {
                write_cursor(path, head)?;
            }
            head
        }
    };
    let mut cursor = start;
    let mut written = 0u64;
    loop {
        let records = match feed.read(cursor, BATCH) {
            Ok(r) => r,
            Err(StoreError::Unreachable(why)) => {
                tracing::warn!(error = why, "the store is unreachable: asking again");
                Vec::new()
            }
            Err(e) => return Err(e).context("reading the match records"),
        };
        let full = records.len() == BATCH;
        for r in records {
            if stopped(stop) {
                return Ok(written);
            }
            let mut line = serde_json::to_vec(&r).context("a match record as JSON")?;
            line.push(b'\n');
            out.write_all(&line)
                .and_then(|()| out.flush())
                .context("writing to stdout")?;
            written += 1;
            cursor = r.cursor;
            if let Some(path) = &options.cursor_file {
                write_cursor(path, cursor)?;
            }
        }
        if full {
            continue;
        }
        match stop.recv_timeout(options.poll) {
            Err(RecvTimeoutError::Timeout) => {}
            Ok(()) | Err(RecvTimeoutError::Disconnected) => return Ok(written),
        }
    }
}

fn stopped(stop: &Receiver<()>) -> bool {
    !matches!(stop.try_recv(), Err(crossbeam_channel::TryRecvError::Empty))
}

/// The cursor saved in `path`, or `None` if there is no such file.
///
/// # Errors
/// If it cannot be read or does not hold a cursor.
pub fn read_cursor(path: &Path) -> anyhow::Result<Option<Cursor>> {
    match std::fs::read_to_string(path) {
        Ok(text) => text
            .trim()
            .parse()
            .map(Some)
            .map_err(|e: String| anyhow::anyhow!("cursor file {}: {e}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("cursor file {}", path.display())),
    }
}

/// Replaces the cursor in `path`, durably and whole: a temporary file in
/// the same directory, synced, renamed over it, and the directory synced.
/// A crash leaves the old cursor or the new one, never a part.
///
/// # Errors
/// If the directory cannot be written.
pub fn write_cursor(path: &Path, cursor: Cursor) -> anyhow::Result<()> {
    let context = || format!("cursor file {}", path.display());
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::NamedTempFile::new_in(dir).with_context(context)?;
    writeln!(tmp, "{cursor}").with_context(context)?;
    tmp.as_file().sync_all().with_context(context)?;
    tmp.persist(path)
        .map_err(|e| e.error)
        .with_context(context)?;
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .with_context(context)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_file_holds_the_last_cursor_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cursor");
        assert_eq!(read_cursor(&path).unwrap(), None);
        write_cursor(&path, Cursor { xid: 0, id: 41 }).unwrap();
        write_cursor(&path, Cursor { xid: 9, id: 42 }).unwrap();
        assert_eq!(read_cursor(&path).unwrap(), Some(Cursor { xid: 9, id: 42 }));
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            1,
            "a temporary file left"
        );
        std::fs::write(&path, "yesterday\n").unwrap();
        let e = read_cursor(&path).unwrap_err().to_string();
        assert!(e.contains("cursor file") && e.contains("yesterday"), "{e}");
    }
}
