//! Where a log's hashes and entries live as static files
//! (c2sp.org/tlog-tiles), and the tiles of a tree.
//!
//! A tile at level `l` holds up to 256 consecutive Merkle Tree Hashes of
//! subtrees of `256^l` entries; level 0 holds the entries' leaf hashes, and
//! the entries themselves are in entry bundles beside it. A tile or bundle
//! of fewer than 256 is *partial* and its path says its width.

use super::{Hash, LogError, malformed};
use crate::merkle;

/// Hashes (or entries) in a full tile.
pub const TILE_WIDTH: usize = 256;
/// The longest entry a bundle can hold (its length is a big-endian u16).
pub const MAX_ENTRY_LEN: usize = u16::MAX as usize;

/// One tile (a level of hashes) or entry bundle (`level` is `None`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TileId {
    /// The level, or `None` for an entry bundle.
    pub level: Option<u8>,
    /// The tile's index within its level.
    pub index: u64,
    /// How many hashes (or entries) it holds: 1 to 256.
    pub width: u16,
}

impl TileId {
    /// Its path below the log's prefix: `tile/<L>/<N>[.p/<W>]` or
    /// `tile/entries/<N>[.p/<W>]`, with `N` in 3-digit groups, all but the
    /// last prefixed with `x` (`1234067` is `x001/x234/067`).
    pub fn path(&self) -> String {
        let level = match self.level {
            Some(l) => l.to_string(),
            None => "entries".to_owned(),
        };
        let mut groups = Vec::new();
        let mut n = self.index;
        loop {
            groups.push(n % 1000);
            n /= 1000;
            if n == 0 {
                break;
            }
        }
        let index: Vec<String> = groups
            .iter()
            .rev()
            .enumerate()
            .map(|(i, g)| {
                if i + 1 == groups.len() {
                    format!("{g:03}")
                } else {
                    format!("x{g:03}")
                }
            })
            .collect();
        let mut out = format!("tile/{level}/{}", index.join("/"));
        if usize::from(self.width) < TILE_WIDTH {
            out.push_str(&format!(".p/{}", self.width));
        }
        out
    }

    /// The entries this tile's hashes span: `[start, end)`.
    pub fn span(&self) -> (u64, u64) {
        let per = 256u64.saturating_pow(u32::from(self.level.unwrap_or(0)));
        let start = self.index.saturating_mul(256).saturating_mul(per);
        (
            start,
            start.saturating_add(u64::from(self.width).saturating_mul(per)),
        )
    }
}

/// The hashes of every level of the tree over `leaves` that tiles hold:
/// level 0 is the leaves; each hash of level `l + 1` is the root of a full
/// group of 256 at level `l`.
pub fn levels(leaves: &[Hash]) -> Vec<Vec<Hash>> {
    let mut out = vec![leaves.to_vec()];
    loop {
        let last = out.last().map_or(&[][..], Vec::as_slice);
        let up: Vec<Hash> = last.chunks_exact(TILE_WIDTH).map(merkle::root).collect();
        if up.is_empty() {
            break;
        }
        out.push(up);
    }
    out
}

/// Every tile of the tree over `leaves`, with its bytes: the full tiles,
/// and the partial tile of each level the tree's size leaves one.
pub fn tiles(leaves: &[Hash]) -> Vec<(TileId, Vec<u8>)> {
    let mut out = Vec::new();
    for (l, hashes) in levels(leaves).iter().enumerate() {
        let Ok(level) = u8::try_from(l) else { break };
        for (i, chunk) in hashes.chunks(TILE_WIDTH).enumerate() {
            out.push((
                TileId {
                    level: Some(level),
                    index: i as u64,
                    // At most 256.
                    width: u16::try_from(chunk.len()).unwrap_or(u16::MAX),
                },
                chunk.concat(),
            ));
        }
    }
    out
}

/// The hashes of a tile's bytes.
///
/// # Errors
/// [`LogError::Malformed`] unless the bytes are `width` hashes.
pub fn read_tile(id: &TileId, bytes: &[u8]) -> Result<Vec<Hash>, LogError> {
    if bytes.len() != usize::from(id.width) * 32 {
        return Err(malformed(
            "tile",
            format!(
                "{}: {} bytes, expected {}",
                id.path(),
                bytes.len(),
                usize::from(id.width) * 32
            ),
        ));
    }
    Ok(bytes
        .chunks_exact(32)
        .map(|c| {
            let mut h = [0u8; 32];
            h.copy_from_slice(c);
            h
        })
        .collect())
}

/// An entry bundle: each entry as a big-endian u16 length and its bytes.
///
/// # Errors
/// [`LogError::Malformed`] for an entry over 65,535 bytes.
pub fn bundle<E: AsRef<[u8]>>(entries: &[E]) -> Result<Vec<u8>, LogError> {
    let mut out = Vec::new();
    for e in entries {
        let e = e.as_ref();
        let len = u16::try_from(e.len()).map_err(|_| {
            malformed(
                "log entry",
                format!("{} bytes, more than {MAX_ENTRY_LEN}", e.len()),
            )
        })?;
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(e);
    }
    Ok(out)
}

/// The entries of a bundle of `width`.
///
/// # Errors
/// [`LogError::Malformed`] for a bundle cut short, with bytes left over, or
/// holding another number of entries.
pub fn read_bundle(id: &TileId, bytes: &[u8]) -> Result<Vec<Vec<u8>>, LogError> {
    let mut out = Vec::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        let Some((len, tail)) = rest.split_first_chunk::<2>() else {
            return Err(malformed(
                "entry bundle",
                format!("{}: a length cut short", id.path()),
            ));
        };
        let len = usize::from(u16::from_be_bytes(*len));
        if tail.len() < len {
            return Err(malformed(
                "entry bundle",
                format!("{}: an entry cut short", id.path()),
            ));
        }
        out.push(tail[..len].to_vec());
        rest = &tail[len..];
    }
    if out.len() != usize::from(id.width) {
        return Err(malformed(
            "entry bundle",
            format!(
                "{}: {} entries, expected {}",
                id.path(),
                out.len(),
                id.width
            ),
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_follow_the_specification() {
        let t = |level, index, width| {
            TileId {
                level,
                index,
                width,
            }
            .path()
        };
        assert_eq!(t(Some(0), 1_234_067, 256), "tile/0/x001/x234/067");
        assert_eq!(t(Some(1), 0, 17), "tile/1/000.p/17");
        assert_eq!(t(None, 5, 3), "tile/entries/005.p/3");
        assert_eq!(t(Some(2), 1000, 256), "tile/2/x001/000");
    }

    /// The example of the specification: 70,000 entries are 273 full level
    /// 0 tiles, a partial one of 112, a full level 1 tile, a partial one of
    /// 17, and a partial level 2 tile of 1.
    #[test]
    fn the_tiles_of_seventy_thousand_entries() {
        let leaves: Vec<Hash> = (0u32..70_000)
            .map(|i| merkle::leaf_hash(&i.to_be_bytes()))
            .collect();
        let tiles = tiles(&leaves);
        let count = |level: u8, width: u16| {
            tiles
                .iter()
                .filter(|(id, _)| id.level == Some(level) && id.width == width)
                .count()
        };
        assert_eq!((count(0, 256), count(0, 112)), (273, 1));
        assert_eq!((count(1, 256), count(1, 17)), (1, 1));
        assert_eq!((count(2, 1), tiles.len()), (1, 277));
        // The level-2 hash is the root of the first 65,536 entries.
        let top = tiles.iter().find(|(id, _)| id.level == Some(2)).unwrap();
        assert_eq!(top.1, merkle::root(&leaves[..65_536]).to_vec());
    }

    #[test]
    fn bundles_round_trip_and_refuse_what_is_cut_or_left_over() {
        let entries = [b"a".to_vec(), Vec::new(), vec![7; 300]];
        let id = TileId {
            level: None,
            index: 0,
            width: 3,
        };
        let b = bundle(&entries).unwrap();
        assert_eq!(read_bundle(&id, &b).unwrap(), entries);
        assert!(read_bundle(&id, &b[..b.len() - 1]).is_err());
        assert!(read_bundle(&TileId { width: 2, ..id }, &b).is_err());
        assert!(bundle(&[vec![0; 70_000]]).is_err());
    }
}
