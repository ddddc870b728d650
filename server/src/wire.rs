//! The gRPC messages the server sends, built from the protocol's values.
//!
//! The service streams exactly these, and `tests/wire_vectors.rs` pins their
//! encodings in `protocol/vectors/blindmatch-wire.json` (SPEC 12.5), so an
//! implementation written from the SPEC can compare its bytes with ours.

use blindmatch_proto::v1::{DeltaChunk, Manifest, TableChunk};
use blindmatch_protocol::audit::CoSignature;
use blindmatch_protocol::manifest::SignedManifest;
use blindmatch_protocol::merkle::MerkleTree;
use blindmatch_protocol::table::{CHUNK_LEN, SLOT_LEN};
use blindmatch_protocol::tlog::{Hash, TlogProof};

/// Slots per `DeltaChunk` message (SPEC 13.4): 72 KiB messages, of 2,048
/// slot numbers and slots.
pub const DELTA_SLOTS: usize = 2048;

/// `GetManifest`'s answer (SPEC 13.3, 14.8): the signed statement, its
/// fields spelled out, and the server's `max_batch`, which is not signed.
///
/// Every field but `max_batch`, the co-signatures (SPEC 15.5) and the log's
/// proofs (SPEC 16.5) comes from the statement, so the message agrees with
/// it by construction (what SPEC 13.3 step 2 has a client check).
pub fn manifest(
    signed: &SignedManifest,
    cosignatures: &[CoSignature],
    max_batch: usize,
    log: Option<(&TlogProof, &[Hash])>,
) -> Manifest {
    let m = &signed.manifest;
    let h = &m.header;
    let threshold = m.threshold.as_ref();
    Manifest {
        protocol_version: u32::from(m.protocol_version()),
        table_id: m.table_id.0.to_vec(),
        k: u32::from(h.k),
        seed: h.seed.to_vec(),
        n_slots: h.n_slots,
        public_key: h.public_key.to_bytes().to_vec(),
        header: h.encode().to_vec(),
        table_len: h.slots_len(),
        max_batch: u32::try_from(max_batch).unwrap_or(u32::MAX),
        version: m.version,
        created: m.created,
        digest: m.digest.to_vec(),
        chunk_slots: m.chunk_slots,
        statement: m.encode(),
        signature: signed.signature.to_vec(),
        threshold: threshold.map_or(0, |p| u32::from(p.threshold())),
        synthetic_bound: threshold.map_or(0, |p| u32::from(p.synthetic_bound())),
        placement_weights: threshold.map_or_else(Vec::new, |p| p.weights().to_vec()),
        cosignatures: cosignatures
            .iter()
            .map(|c| blindmatch_proto::v1::CoSignature {
                org_key: c.org_key.to_bytes().to_vec(),
                name: c.name.as_str().to_owned(),
                signature: c.signature.to_vec(),
            })
            .collect(),
        log_proof: log.map(|(p, _)| p.encode()).unwrap_or_default(),
        log_consistency: log
            .map(|(_, c)| c.iter().map(|h| h.to_vec()).collect())
            .unwrap_or_default(),
    }
}

/// The `DownloadTable` message for the chunk starting at byte `at` (a
/// multiple of [`CHUNK_LEN`] below the table's length): its slots and its
/// audit path, leaf level first (SPEC 13.2).
pub fn table_chunk(slots: &[u8], tree: &MerkleTree, at: usize) -> TableChunk {
    let proof = tree
        .proof((at / CHUNK_LEN) as u64)
        .unwrap_or_default()
        .iter()
        .map(|h| h.to_vec())
        .collect();
    TableChunk {
        offset: at as u64,
        slots: slots[at..(at + CHUNK_LEN).min(slots.len())].to_vec(),
        proof,
    }
}

/// One `DownloadDelta` message: the slot numbers `indices` (ascending, 4
/// bytes big-endian each) and their contents in `slots` (SPEC 13.4).
pub fn delta_chunk(slots: &[u8], indices: &[u32]) -> DeltaChunk {
    let mut out = DeltaChunk {
        indices: Vec::with_capacity(indices.len() * 4),
        slots: Vec::with_capacity(indices.len() * SLOT_LEN),
    };
    for &i in indices {
        let at = i as usize * SLOT_LEN;
        out.indices.extend_from_slice(&i.to_be_bytes());
        out.slots.extend_from_slice(&slots[at..at + SLOT_LEN]);
    }
    out
}

/// A delta's messages: `changed` cut into runs of [`DELTA_SLOTS`].
pub fn delta_chunks<'a>(
    slots: &'a [u8],
    changed: &'a [u32],
) -> impl Iterator<Item = DeltaChunk> + 'a {
    changed
        .chunks(DELTA_SLOTS)
        .map(move |indices| delta_chunk(slots, indices))
}
