//! Getting a table: a full download checked chunk by chunk, a delta from
//! the table held, or a copy the app saved.

use blindmatch_protocol::merkle::Hash;
use blindmatch_protocol::{BlindedTable, ClientTable, TableAssembler, TableDelta, TableId};

use crate::{Error, Table, VerifiedManifest};

/// A `DownloadTable` in progress: each chunk is checked against the signed
/// digest by its Merkle proof as it arrives (SPEC Section 13.2), so a bad
/// chunk is refused before it is kept, and the download resumes from the
/// last good one.
///
/// The app appends each accepted chunk's slots to its own storage if it
/// wants to resume after a restart, and passes them to
/// [`TableDownload::resume`].
pub struct TableDownload {
    assembler: TableAssembler,
    manifest: VerifiedManifest,
}

impl TableDownload {
    /// Starts the download of `manifest`'s table; request it from
    /// [`TableDownload::offset`], 0.
    pub fn new(manifest: &VerifiedManifest) -> Self {
        TableDownload {
            // An empty prefix is always accepted.
            assembler: match TableAssembler::new(manifest.statement(), Vec::new()) {
                Ok(a) => a,
                Err(_) => unreachable_empty_prefix(),
            },
            manifest: manifest.clone(),
        }
    }

    /// Resumes from `kept`, the slots of chunks accepted before. Only whole
    /// chunks are kept ([`TableDownload::resumable`] says how much); the
    /// rest is dropped, and everything is checked again by
    /// [`TableDownload::finish`].
    ///
    /// # Errors
    /// [`Error::Malformed`] if `kept` is longer than the table.
    pub fn resume(manifest: &VerifiedManifest, mut kept: Vec<u8>) -> Result<Self, Error> {
        if kept.len() as u64 > manifest.header().slots_len() {
            return Err(Error::Malformed(
                "the kept part of a download is longer than the table",
            ));
        }
        if (kept.len() as u64) < manifest.header().slots_len() {
            kept.truncate(TableAssembler::resumable(kept.len()));
        }
        let assembler = TableAssembler::new(manifest.statement(), kept)
            .map_err(Error::invalid("resumed table download"))?;
        Ok(TableDownload {
            assembler,
            manifest: manifest.clone(),
        })
    }

    /// How many of `len` bytes kept from an interrupted download can be
    /// resumed from: whole chunks only.
    pub fn resumable(len: usize) -> usize {
        TableAssembler::resumable(len)
    }

    /// The offset to request (`DownloadTableRequest.offset`): bytes from
    /// the first slot received and checked so far.
    pub fn offset(&self) -> u64 {
        self.assembler.offset()
    }

    /// Checks and keeps the chunk that starts at `offset` (a
    /// `TableChunk`'s `offset`, `slots` and `proof`).
    ///
    /// # Errors
    /// [`Error::Malformed`] for a proof hash that is not 32 bytes;
    /// [`Error::Invalid`] for a chunk out of place, of the wrong length, or
    /// whose proof does not lead to the signed digest. Nothing of a refused
    /// chunk is kept; request again from [`TableDownload::offset`].
    pub fn push<P: AsRef<[u8]>>(
        &mut self,
        offset: u64,
        slots: &[u8],
        proof: &[P],
    ) -> Result<(), Error> {
        let proof: Vec<Hash> = proof
            .iter()
            .map(|h| h.as_ref().try_into())
            .collect::<Result<_, _>>()
            .map_err(|_| Error::Malformed("a proof hash is not 32 bytes"))?;
        self.assembler
            .push(offset, slots, &proof)
            .map_err(Error::invalid("table chunk"))
    }

    /// Whether every chunk has arrived.
    pub fn is_complete(&self) -> bool {
        self.offset() >= self.manifest.header().slots_len()
    }

    /// The table, checked whole against the digest and the table id, and
    /// every slot validated ([`ClientTable::new`]: up front, so that whether
    /// a client can submit never depends on its item), with its manifest.
    ///
    /// # Errors
    /// [`Error::Invalid`]: the download is incomplete, or its content is
    /// not the manifest's table (a damaged resumed part: start again), or a
    /// slot is not a valid element.
    pub fn finish(self) -> Result<Table, Error> {
        let manifest = self.manifest.clone();
        let table = ClientTable::new(self.into_table()?).map_err(Error::invalid("table"))?;
        Ok(Table::verified(table, manifest))
    }

    /// The table, checked whole against the digest and the table id but its
    /// slots not yet validated: for an app that keeps a copy on disk (as
    /// the Rust client's cache does) and validates it when it uses it.
    ///
    /// # Errors
    /// As [`TableDownload::finish`], but for the slots' validation.
    pub fn into_table(self) -> Result<BlindedTable, Error> {
        self.assembler
            .finish()
            .map_err(Error::invalid("table download"))
    }
}

#[cold]
fn unreachable_empty_prefix() -> ! {
    // TableAssembler::new refuses only a prefix longer than the table or
    // not a whole number of chunks; an empty one is neither.
    unreachable!("an empty download prefix is always resumable")
}

/// A `DownloadDelta` in progress: the slots that changed from the table
/// held to `to`'s table (SPEC Section 13.4). A delta carries no signature
/// of its own; [`DeltaDownload::finish`] checks what it produces against
/// the new manifest's digest and table id, and validates only the changed
/// slots (the rest were validated with the table held).
pub struct DeltaDownload {
    delta: TableDelta,
    to: VerifiedManifest,
    received: u64,
    limit: u64,
}

impl DeltaDownload {
    /// Starts receiving the delta from `held` to `to`'s table. Request it
    /// with `from_table_id = held.table().id()` and `to_table_id =
    /// to.table_id()`.
    pub fn new(held: &Table, to: &VerifiedManifest) -> Self {
        Self::for_base(*held.id(), to)
    }

    /// As [`DeltaDownload::new`], for a base the app holds as a table id
    /// (an unvalidated copy it applies [`DeltaDownload::into_delta`] to).
    pub fn for_base(base: TableId, to: &VerifiedManifest) -> Self {
        DeltaDownload {
            delta: TableDelta {
                base,
                indices: Vec::new(),
                slots: Vec::new(),
            },
            to: to.clone(),
            received: 0,
            // A delta larger than the table is not worth receiving.
            limit: to.header().slots_len(),
        }
    }

    /// Adds one `DeltaChunk`: `indices` (4-byte big-endian slot numbers)
    /// and their new `slots`.
    ///
    /// # Errors
    /// [`Error::Malformed`] if the indices are cut mid-number, or the delta
    /// has grown larger than the table (ask for the full table instead).
    pub fn push(&mut self, indices: &[u8], slots: &[u8]) -> Result<(), Error> {
        if !indices.len().is_multiple_of(4) {
            return Err(Error::Malformed("a delta chunk has a partial slot index"));
        }
        self.received += (indices.len() + slots.len()) as u64;
        if self.received > self.limit {
            return Err(Error::Malformed(
                "the delta is larger than the table: download the table instead",
            ));
        }
        self.delta.indices.extend(
            indices
                .chunks_exact(4)
                .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]])),
        );
        self.delta.slots.extend_from_slice(slots);
        Ok(())
    }

    /// The slots received so far.
    pub fn slots(&self) -> usize {
        self.delta.indices.len()
    }

    /// The new table: `held` with the delta applied, checked against the
    /// new manifest; only the changed slots are validated (the rest were
    /// when `held` was made).
    ///
    /// # Errors
    /// [`Error::Invalid`] if the delta is for another base, or the result is
    /// not the new manifest's table, or a changed slot is not a valid
    /// element. The table held is unchanged; fall back to a full download.
    pub fn finish(self, held: &Table) -> Result<Table, Error> {
        let table = held
            .client_table()
            .updated(&self.delta, self.to.statement())
            .map_err(Error::invalid("delta"))?;
        Ok(Table::verified(table, self.to))
    }

    /// The received delta, for an app that keeps an unvalidated copy of the
    /// table (as the Rust client's cache does) and applies it there.
    pub fn into_delta(self) -> TableDelta {
        self.delta
    }
}

/// A table the app saved (the encoding of [`BlindedTable::encode`]),
/// checked to be exactly `manifest`'s table and validated.
///
/// # Errors
/// [`Error::Invalid`] if it does not decode, is another table (a damaged or
/// stale copy: download again), or has an invalid slot.
pub fn open_table(saved: &[u8], manifest: &VerifiedManifest) -> Result<Table, Error> {
    validate_table(
        BlindedTable::decode(saved).map_err(Error::invalid("saved table"))?,
        manifest,
    )
}

/// [`open_table`] for a table already decoded (a download's, or a cache's
/// that reads its file into one buffer): the table is kept as it is, not
/// copied, so a client holds it once (papers/BENCHMARKS.md, "Scale").
///
/// # Errors
/// As [`open_table`].
pub fn validate_table(table: BlindedTable, manifest: &VerifiedManifest) -> Result<Table, Error> {
    if table.id() != manifest.table_id() {
        // Before the validation, which costs far more than the id.
        return Err(Error::Invalid {
            what: "saved table",
            source: blindmatch_protocol::Error::TableIdMismatch,
        });
    }
    let table = ClientTable::new(table).map_err(Error::invalid("saved table"))?;
    Ok(Table::verified(table, manifest.clone()))
}

/// The table id of an encoded table (header and slots), without validating
/// its slots: for naming a saved copy or a test vector's table.
///
/// # Errors
/// [`Error::Invalid`] if it does not decode.
pub fn table_id_of(encoded: &[u8]) -> Result<TableId, Error> {
    Ok(*BlindedTable::decode(encoded)
        .map_err(Error::invalid("table"))?
        .id())
}
