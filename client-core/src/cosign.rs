//! The organisations an app pins and the co-signatures a manifest carries
//! (SPEC Sections 15.5 and 15.6), from the values an app or a binding
//! holds: what [`crate::VerifiedManifest::require_quorum`] takes.

use blindmatch_protocol::OperatorVerifyingKey;
use blindmatch_protocol::audit::cosign::MAX_COSIGNATURES;
use blindmatch_protocol::audit::{CoSignature, OrgName, Quorum};

use crate::Error;

/// At least `required` of the organisations `orgs` (a key given twice
/// counts once).
///
/// # Errors
/// [`Error::Input`] unless 1 ≤ `required` ≤ the number of distinct keys.
pub fn quorum(orgs: &[OperatorVerifyingKey], required: usize) -> Result<Quorum, Error> {
    Quorum::new(orgs, required).map_err(Error::Input)
}

/// The co-signatures of a `GetManifest` response from their fields
/// (`org_key`, `name`, `signature`), at most the 32 a client reads. One that
/// does not decode (a key that is not 32 bytes of a valid key, a name out of
/// bounds, a signature that is not 64 bytes) is left out: for a quorum it
/// counts for nothing, as one that does not verify.
pub fn cosignatures<'a>(
    fields: impl IntoIterator<Item = (&'a [u8], &'a str, &'a [u8])>,
) -> Vec<CoSignature> {
    fields
        .into_iter()
        .take(MAX_COSIGNATURES)
        .filter_map(|(key, name, signature)| {
            Some(CoSignature {
                org_key: OperatorVerifyingKey::from_bytes(key).ok()?,
                name: OrgName::new(name).ok()?,
                signature: signature.try_into().ok()?,
            })
        })
        .collect()
}
