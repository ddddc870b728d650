//! `protocol/vectors/blindmatch-wire.json` (SPEC 12.5): the Protocol Buffers
//! encodings of the messages the service exchanges, built from the other
//! vector files' values. The server's messages come from `wire`, the code
//! the service streams them with; the clients' from the generated types.
//!
//! Run with `BLINDMATCH_BLESS=1` to rewrite the file after an intended change.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::cast_possible_truncation,
    reason = "tests fail loudly; the vector tables are small"
)]

use blindmatch_proto::v1::{
    DownloadDeltaRequest, DownloadTableRequest, GetManifestRequest, SubmitRequest, SubmitResponse,
};
use blindmatch_server::protocol::manifest::SignedManifest;
use blindmatch_server::protocol::merkle::MerkleTree;
use blindmatch_server::protocol::table::{CHUNK_LEN, SLOT_LEN};
use blindmatch_server::wire;
use prost::Message;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

const VECTORS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../protocol/vectors/");
/// The `max_batch` the vector manifests are served with.
const MAX_BATCH: usize = 256;

fn load(name: &str) -> Value {
    let path = format!("{VECTORS}{name}");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap()
}

fn hx(v: &Value) -> Vec<u8> {
    hex::decode(v.as_str().unwrap()).unwrap()
}

fn h(bytes: impl AsRef<[u8]>) -> Value {
    Value::String(hex::encode(bytes))
}

fn signed(m: &Value) -> SignedManifest {
    let bytes = [hx(&m["statement"]), hx(&m["signature"])].concat();
    SignedManifest::decode_unverified(&bytes).unwrap()
}

fn message(what: &str, source: &str, msg: &impl Message) -> Value {
    json!({"what": what, "from": source, "encoding": h(msg.encode_to_vec())})
}

fn generate() -> String {
    let v1 = load("blindmatch-v1.json");
    let v2 = load("blindmatch-v2-threshold.json");
    let chunked = &v1["chunked_table"];
    let lifecycle = &v1["lifecycle"];

    let mut manifests = Vec::new();
    for (what, source, m) in [
        (
            "the chunked table's manifest: protocol version 1, a first build (version 1)",
            "blindmatch-v1.json chunked_table.manifest",
            &chunked["manifest"],
        ),
        (
            "the lifecycle's manifest: protocol version 1, table version 2",
            "blindmatch-v1.json lifecycle.manifest",
            &lifecycle["manifest"],
        ),
        (
            "threshold mode's manifest: protocol version 2 (t, s and placement weights)",
            "blindmatch-v2-threshold.json manifest",
            &v2["manifest"],
        ),
    ] {
        manifests.push(message(
            what,
            source,
            &wire::manifest(&signed(m), &[], MAX_BATCH, None),
        ));
    }

    // The chunked table's download: every chunk with its audit path. Large,
    // so given by length and SHA-256, and the bytes before the slots.
    let slots: Vec<u8> = chunked["slots"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(hx)
        .collect();
    let tree = MerkleTree::new(&slots);
    let table_chunks: Vec<Value> = (0..slots.len())
        .step_by(CHUNK_LEN)
        .map(|at| {
            let enc = wire::table_chunk(&slots, &tree, at).encode_to_vec();
            let head = enc_head_len(&enc);
            json!({
                "offset": at,
                "length": enc.len(),
                "sha256": h(Sha256::digest(&enc)),
                "head": h(&enc[..head]),
            })
        })
        .collect();

    // The lifecycle's delta, from version 1 to version 2, in one message.
    let mut v2_slots: Vec<u8> = v1["table"]["slots"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(hx)
        .collect();
    let mut changed = Vec::new();
    for d in lifecycle["update"]["delta"].as_array().unwrap() {
        let slot = d["slot"].as_u64().unwrap() as u32;
        let at = slot as usize * SLOT_LEN;
        v2_slots[at..at + SLOT_LEN].copy_from_slice(&hx(&d["after"]));
        changed.push(slot);
    }
    let deltas: Vec<Value> = wire::delta_chunks(&v2_slots, &changed)
        .map(|m| {
            message(
                "the lifecycle's delta from version 1 to 2 (every changed slot, ascending)",
                "blindmatch-v1.json lifecycle.update.delta",
                &m,
            )
        })
        .collect();

    // What a client sends.
    let v1_id = hx(&v1["table"]["table_id"]);
    let vouchers: Vec<Vec<u8>> = v1["cases"]
        .as_array()
        .unwrap()
        .iter()
        .take(3)
        .map(|c| hx(&c["voucher"]))
        .collect();
    let submission_id = Sha256::digest(b"blindmatch-v1 test vectors: submission id")[..16].to_vec();
    let v2_vouchers: Vec<Vec<u8>> = v2["outer"]
        .as_array()
        .unwrap()
        .iter()
        .take(2)
        .map(|o| hx(&o["voucher"]))
        .collect();
    let requests = vec![
        message(
            "GetManifest's request (empty)",
            "",
            &GetManifestRequest::default(),
        ),
        message(
            "a resumed table download, at the chunked table's second chunk",
            "blindmatch-v1.json chunked_table",
            &DownloadTableRequest {
                table_id: hx(&chunked["table_id"]),
                offset: CHUNK_LEN as u64,
            },
        ),
        message(
            "the delta from the vector table (version 1) to its version 2",
            "blindmatch-v1.json table, lifecycle.update",
            &DownloadDeltaRequest {
                from_table_id: v1_id.clone(),
                to_table_id: hx(&lifecycle["update"]["table_id"]),
            },
        ),
        message(
            "a batch of the first three cases' vouchers with a submission id",
            "blindmatch-v1.json cases[0..3], submission id = SHA-256(\"blindmatch-v1 test vectors: submission id\")[0..16]",
            &SubmitRequest {
                table_id: v1_id,
                vouchers: vouchers.clone(),
                submission_id: submission_id.clone(),
                account_id: Vec::new(),
            },
        ),
        message(
            "threshold mode: two vouchers of the vector account, with its account id",
            "blindmatch-v2-threshold.json outer[0..2], account.account_id",
            &SubmitRequest {
                table_id: hx(&v2["table_id"]),
                vouchers: v2_vouchers,
                submission_id,
                account_id: hx(&v2["account"]["account_id"]),
            },
        ),
        message(
            "Submit's answer to a batch of three",
            "",
            &SubmitResponse { accepted: 3 },
        ),
    ];

    let doc = json!({
        "description": "SPEC 12.5: Protocol Buffers encodings (proto/proto/blindmatch/v1/blindmatch.proto) of the service's messages, as the reference server and clients write them: fields in field-number order, fields holding their default value left out, repeated integers packed. A decoder MUST accept any valid encoding of the same message. `max_batch` in the manifests is 256. `table_chunks` are the chunked table's download (SPEC 13.2) by `length`, `sha256` and `head`, the encoding up to the first slot byte.",
        "generator": "BLINDMATCH_BLESS=1 cargo test -p blindmatch-server --test wire_vectors",
        "max_batch": MAX_BATCH,
        "manifests": manifests,
        "table_chunks": table_chunks,
        "delta_chunks": deltas,
        "requests": requests,
    });
    let mut text = serde_json::to_string_pretty(&doc).unwrap();
    text.push('\n');
    text
}

/// The length of a `TableChunk` encoding up to its first slot byte: the
/// offset field (absent at offset 0), then field 2's tag and length.
fn enc_head_len(enc: &[u8]) -> usize {
    let mut at = 0;
    let varint = |at: &mut usize| {
        while enc[*at] & 0x80 != 0 {
            *at += 1;
        }
        *at += 1;
    };
    if enc[0] == 0x08 {
        at += 1;
        varint(&mut at);
    }
    assert_eq!(enc[at], 0x12, "field 2 (slots) follows the offset");
    at += 1;
    varint(&mut at);
    at
}

#[test]
fn wire_vector_file_is_exactly_what_the_service_encodes() {
    let path = format!("{VECTORS}blindmatch-wire.json");
    let fresh = generate();
    if std::env::var_os("BLINDMATCH_BLESS").is_some() {
        std::fs::write(&path, &fresh).unwrap();
        return;
    }
    let on_disk = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    assert!(
        on_disk == fresh,
        "{path} differs from what the service encodes; if intended, regenerate with \
         `BLINDMATCH_BLESS=1 cargo test --release -p blindmatch-server --test wire_vectors`"
    );
}

#[test]
fn wire_messages_decode_back_to_the_protocol_values() {
    let v1 = load("blindmatch-v1.json");
    let m = signed(&v1["lifecycle"]["manifest"]);
    let enc = wire::manifest(&m, &[], MAX_BATCH, None).encode_to_vec();
    let back = blindmatch_proto::v1::Manifest::decode(&enc[..]).unwrap();
    assert_eq!(back.statement, m.manifest.encode());
    assert_eq!(back.table_id, m.manifest.table_id.0);
    assert_eq!(back.version, 2);
    assert_eq!(back.protocol_version, 1);
    assert_eq!(
        back.threshold, 0,
        "version 1 leaves threshold mode's fields out"
    );
}
