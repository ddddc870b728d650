//! A table ready to make vouchers, with the manifest it was checked against.

use blindmatch_protocol::threshold::{AccountSecret, threshold_voucher_len};
use blindmatch_protocol::{BlindedTable, ClientTable, Item, TableId, voucher_len};
use rand_core::CryptoRng;

use crate::submit::Upload;
use crate::{Error, Submission, VerifiedManifest};

/// A validated table (every slot a valid element, SPEC 6 step 0) and the
/// verified manifest it was checked against, which says which protocol
/// version its submissions are: [`Table::submission`] refuses a table in
/// threshold mode, [`Table::account_submission`] one in version 1. Made
/// by [`crate::TableDownload::finish`], [`crate::DeltaDownload::finish`] or
/// [`crate::open_table`]; [`Table::unverified`] for a table checked some
/// other way.
#[derive(Clone)]
pub struct Table {
    table: ClientTable,
    manifest: Option<VerifiedManifest>,
}

impl core::fmt::Debug for Table {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Table")
            .field("id", &hex::encode(self.id().0))
            .field("manifest", &self.manifest)
            .finish_non_exhaustive()
    }
}

impl Table {
    pub(crate) fn verified(table: ClientTable, manifest: VerifiedManifest) -> Self {
        Table {
            table,
            manifest: Some(manifest),
        }
    }

    /// `table` as `manifest`'s table: refused unless its id (the hash of
    /// its header and slots, SPEC 5.2) is the one the manifest signs.
    ///
    /// # Errors
    /// [`Error::Invalid`] for another table.
    pub fn new(table: ClientTable, manifest: &VerifiedManifest) -> Result<Self, Error> {
        if table.table().id() != manifest.table_id() {
            return Err(Error::Invalid {
                what: "table",
                source: blindmatch_protocol::Error::TableIdMismatch,
            });
        }
        Ok(Self::verified(table, manifest.clone()))
    }

    /// A table validated slot by slot but checked against no signed
    /// manifest: vouchers made with it are only as safe as where its bytes
    /// came from (whoever made the table can open them), and it makes only
    /// version-1 submissions. For test vectors, and tables verified some
    /// other way; an app uses [`crate::TableDownload`],
    /// [`crate::DeltaDownload`] or [`crate::open_table`].
    pub fn unverified(table: ClientTable) -> Self {
        Table {
            table,
            manifest: None,
        }
    }

    /// [`Table::unverified`] from a table's encoding (header and slots).
    ///
    /// # Errors
    /// [`Error::Invalid`] if it does not decode or a slot is not a valid
    /// element.
    pub fn decode_unverified(encoded: &[u8]) -> Result<Self, Error> {
        let table = BlindedTable::decode(encoded)
            .and_then(ClientTable::new)
            .map_err(Error::invalid("table"))?;
        Ok(Self::unverified(table))
    }

    /// The validated table.
    pub fn client_table(&self) -> &ClientTable {
        &self.table
    }

    /// The manifest it was checked against (`None` for an unverified one).
    pub fn manifest(&self) -> Option<&VerifiedManifest> {
        self.manifest.as_ref()
    }

    /// The table id: what its vouchers are bound to.
    pub fn id(&self) -> &TableId {
        self.table.table().id()
    }

    /// The encoding to save (header and slots; public): what
    /// [`crate::open_table`] reads back.
    pub fn encode(&self) -> Vec<u8> {
        self.table.table().encode()
    }

    /// The length of every voucher this table's submissions hold: version
    /// 1's, or in threshold mode version 2's for the manifest's s.
    pub fn voucher_len(&self) -> usize {
        let k = self.table.table().header().k;
        match self.manifest.as_ref().and_then(VerifiedManifest::threshold) {
            Some(p) => threshold_voucher_len(k, p.synthetic_bound()),
            None => voucher_len(k),
        }
    }

    /// One voucher per `(item, associated data)` (SPEC Section 6), under a
    /// fresh submission id. Split the items into batches of the manifest
    /// response's `max_batch` first.
    ///
    /// # Errors
    /// [`Error::ThresholdMode`] for a table in threshold mode (whose
    /// vouchers need an account), or [`Error::Input`] for associated data
    /// over 1 KiB.
    pub fn submission<R: CryptoRng + ?Sized>(
        &self,
        items: &[(Item, Vec<u8>)],
        rng: &mut R,
    ) -> Result<Submission, Error> {
        if let Some(p) = self.manifest.as_ref().and_then(VerifiedManifest::threshold) {
            return Err(Error::ThresholdMode { t: p.threshold() });
        }
        Submission::v1(&self.table, items, rng)
    }

    /// Threshold mode (SPEC Section 14.5): one version-2 voucher per upload
    /// under `account`'s keys for the manifest's t and s, real or (at the
    /// account's secret rate) synthetic, in one batch bound to the account
    /// id (its digest is SPEC Section 14.9's). The server learns nothing
    /// of the account's matches until t of its real ones are in.
    ///
    /// # Errors
    /// [`Error::NotThresholdMode`] for a version-1 table,
    /// [`Error::NoManifest`] for an unverified one, or [`Error::Input`]
    /// for associated data over 1 KiB.
    pub fn account_submission<R: CryptoRng + ?Sized>(
        &self,
        account: &AccountSecret,
        uploads: &[Upload],
        rng: &mut R,
    ) -> Result<Submission, Error> {
        let manifest = self.manifest.as_ref().ok_or(Error::NoManifest)?;
        let params = manifest.threshold().ok_or(Error::NotThresholdMode)?;
        Submission::threshold(&self.table, params, account, uploads, rng)
    }
}
