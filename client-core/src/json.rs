//! A manifest as JSON (feature `json`): what `blindmatch manifest --json`
//! and `blindmatch-server manifest --json` print, for comparing what two
//! clients were served.

use blindmatch_protocol::manifest::SignedManifest;

/// The manifest's fields, its signed statement and its signature as JSON:
/// two clients that print the same `statement` hold the same table.
pub fn manifest_json(signed: &SignedManifest) -> serde_json::Value {
    let m = &signed.manifest;
    let mut j = serde_json::json!({
        "protocol_version": m.protocol_version(),
        "version": m.version,
        "created": m.created,
        "table_id": hex::encode(m.table_id.0),
        "digest": hex::encode(m.digest),
        "n_slots": m.header.n_slots,
        "k": m.header.k,
        "seed": hex::encode(m.header.seed),
        "public_key": hex::encode(m.header.public_key.to_bytes()),
        "chunk_slots": m.chunk_slots,
        "statement": hex::encode(m.encode()),
        "signature": hex::encode(signed.signature),
    });
    if let Some(p) = &m.threshold {
        j["threshold"] = p.threshold().into();
        j["synthetic_bound"] = p.synthetic_bound().into();
        j["placement_weights"] = p.weights().into();
    }
    j
}
