//! StopNCII.org's hash list: the JSON of `GET /v1/FetchHashes`.
//!
//! Followed from the public client python-threatexchange
//! (facebook/ThreatExchange, `threatexchange/exchanges/clients/stopncii/api.py`:
//! `FetchHashesResponse`, `StopNCIIHashRecord`, `StopNCIISignalType`,
//! `StopNCIICaseStatus`, and the responses in its `tests/test_api.py`), and
//! from how its exchange maps records (`exchanges/impl/stop_ncii_api.py`):
//!
//! ```text
//! {"count": 2, "nextPageToken": "...", "nextSetTimestamp": 1625175071, "hasMoreRecords": true,
//!  "hashRecords": [{"lastModtimestamp": 1625167804, "signalType": "ImagePDQ",
//!                   "hashValue": "<64 hex digits>", "hashStatus": "Received",
//!                   "caseNumbers": {"<uuid>": "Received"}, "CSPFeedbacks": [...]}, ...]}
//! ```
//!
//! "Records represent the current snapshot of all data, so if you see the
//! same SignalType+Hash in a later iteration, it should completely replace
//! the previously observed record" (`fetch_hashes`). `signalType` ImagePDQ
//! is `pdq` and VideoMD5 (the video file's MD5) is `md5`; VideoTMK, Text,
//! URL and Unknown are counted as unsupported. A `hashStatus` of Withdrawn
//! or Deleted ("should be deleted by client") tombstones the value;
//! Received, Active and Unknown list it; any other status is a bad record,
//! since it cannot be told whether it withdraws the value.

use blindmatch_protocol::ItemType;

use crate::json::Fields;
use crate::tally::{Tally, hex_value};

/// The fields read.
pub(crate) const FIELDS: &[&str] = &["signalType", "hashValue", "hashStatus"];

/// One record of `hashRecords`.
pub(crate) fn record(tally: &mut Tally, r: &Fields) {
    let signal_type = match r.str("signalType") {
        Ok(t) => t,
        Err(why) => return tally.bad(r.at("signalType"), Some("signalType"), why),
    };
    let item_type = match signal_type.to_ascii_lowercase().as_str() {
        "imagepdq" => ItemType::Pdq,
        "videomd5" => ItemType::Md5,
        _ => return tally.unsupported(signal_type),
    };
    let deleted = match r.str("hashStatus") {
        Ok(s)
            if ["Received", "Active", "Unknown"]
                .iter()
                .any(|k| k.eq_ignore_ascii_case(s)) =>
        {
            false
        }
        Ok(s)
            if ["Withdrawn", "Deleted"]
                .iter()
                .any(|k| k.eq_ignore_ascii_case(s)) =>
        {
            true
        }
        Ok(_) => {
            return tally.bad(
                r.at("hashStatus"),
                Some("hashStatus"),
                "unknown status (expected Received, Active, Unknown, Withdrawn or Deleted)",
            );
        }
        Err(why) => return tally.bad(r.at("hashStatus"), Some("hashStatus"), why),
    };
    match r
        .str("hashValue")
        .map_err(str::to_owned)
        .and_then(|v| hex_value(item_type, v))
    {
        Ok(item) => tally.value(item, deleted),
        Err(why) => tally.bad(r.at("hashValue"), Some("hashValue"), why),
    }
}
