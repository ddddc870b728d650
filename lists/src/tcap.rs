//! Tech Against Terrorism's TCAP content hash list, version 2: the JSON of
//! `GET /hash-list/v2/all`.
//!
//! Followed from TCAP's documentation (terrorismanalytics.org/docs/hash-list-v2:
//! MD5, SHA256, SHA512 and PDQ hashes of the archive's images, videos and
//! documents) and the public client python-threatexchange
//! (facebook/ThreatExchange,
//! `threatexchange/exchanges/clients/techagainstterrorism/api.py`:
//! `TATHashListResponse`, `TATHashListEntry`, and `tests/test_api.py`), and how
//! its exchange maps entries (`exchanges/impl/techagainstterrorism_api.py`):
//!
//! ```text
//! {"count": 100, "next": "https://...", "previous": null, "checkpoint": "1724856487.709035,10594",
//!  "results": [{"hash_digest": "<hex>", "algorithm": "MD5", "ideology": "islamist",
//!               "file_type": "mp4", "deleted": false, "updated_on": 1704901040.22,
//!               "created_on": "2025-03-03T23:05:22.587", "id": 2819}, ...]}
//! ```
//!
//! A later entry for the same algorithm and digest replaces an earlier one,
//! and `deleted: true` tombstones it, as the exchange's mapping does.
//! `algorithm` MD5 is `md5` and SHA256 `sha256` whatever the file type (the
//! exchange takes MD5 of video files only, because its signal type is a
//! video's; blindmatch matches the exact file hash of any file), SHA1 is
//! `sha1`, PDQ `pdq`; SHA512, TMK and any other algorithm are counted as
//! unsupported.

use blindmatch_protocol::ItemType;

use crate::json::Fields;
use crate::tally::{Tally, hex_value};

/// The fields read.
pub(crate) const FIELDS: &[&str] = &["hash_digest", "algorithm", "deleted"];

/// One entry of `results`.
pub(crate) fn record(tally: &mut Tally, r: &Fields) {
    let algorithm = match r.str("algorithm") {
        Ok(a) => a,
        Err(why) => return tally.bad(r.at("algorithm"), Some("algorithm"), why),
    };
    let item_type = match algorithm.to_ascii_uppercase().as_str() {
        "MD5" => ItemType::Md5,
        "SHA1" => ItemType::Sha1,
        "SHA256" => ItemType::Sha256,
        "PDQ" => ItemType::Pdq,
        _ => return tally.unsupported(algorithm),
    };
    let deleted = match r.bool("deleted") {
        Ok(d) => d,
        Err(why) => return tally.bad(r.at("deleted"), Some("deleted"), why),
    };
    match r
        .str("hash_digest")
        .map_err(str::to_owned)
        .and_then(|v| hex_value(item_type, v))
    {
        Ok(item) => tally.value(item, deleted),
        Err(why) => tally.bad(r.at("hash_digest"), Some("hash_digest"), why),
    }
}
