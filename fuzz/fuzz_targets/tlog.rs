//! The transparency log's parsers (SPEC Section 16): a signed note, a
//! checkpoint, a tlog-proof, an add-checkpoint body, a witness's answer, a
//! policy, a verifier key, a log entry and an entry bundle, from any bytes;
//! and a proof that parses, checked against a fixed policy (the log's
//! signature, the witnesses' cosignatures and the inclusion proof run on
//! hostile input). Whatever parses re-encodes to what parses the same.
#![no_main]

use std::sync::OnceLock;

use blindmatch_protocol::tlog::note::{CosignerKey, LogSigningKey, LogVerifyingKey};
use blindmatch_protocol::tlog::proof::parse_signature_lines;
use blindmatch_protocol::tlog::tiles::{TileId, read_bundle};
use blindmatch_protocol::tlog::{AddCheckpoint, Checkpoint, LogEntry, LogPolicy, Note, TlogProof};
use libfuzzer_sys::fuzz_target;

fn policy() -> &'static LogPolicy {
    static POLICY: OnceLock<LogPolicy> = OnceLock::new();
    POLICY.get_or_init(|| {
        let log = LogSigningKey::from_seed("fuzz.test/log", [1; 32])
            .expect("a valid name")
            .verifying_key();
        // A witness key: any Ed25519 key, here one made as a log's.
        let key = LogSigningKey::from_seed("witness.test", [2; 32])
            .expect("a valid name")
            .verifying_key()
            .to_string();
        let w = CosignerKey::parse(&key).expect("a valid key");
        LogPolicy::new(log, &[w], 1).expect("a valid policy")
    })
}

fuzz_target!(|data: &[u8]| {
    if let Ok(note) = Note::parse(data) {
        assert_eq!(Note::parse(note.encode().as_bytes()).ok().as_ref(), Some(&note));
        let _ = policy().verify_checkpoint(&note);
    }
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(c) = Checkpoint::parse(text) {
            assert_eq!(Checkpoint::parse(&c.text()).ok().as_ref(), Some(&c));
        }
        let _ = LogPolicy::parse(text);
        let _ = LogVerifyingKey::parse(text);
        let _ = CosignerKey::parse(text);
        let _ = LogSigningKey::from_text(text);
    }
    if let Ok(p) = TlogProof::parse(data) {
        assert_eq!(TlogProof::parse(p.encode().as_bytes()).ok().as_ref(), Some(&p));
        if let Ok(entry) = LogEntry::decode(p.extra.as_deref().unwrap_or_default()) {
            let _ = policy().verify_inclusion(&p, &entry);
        }
    }
    if let Ok(r) = AddCheckpoint::parse(data) {
        assert_eq!(AddCheckpoint::parse(r.encode().as_bytes()).ok().as_ref(), Some(&r));
    }
    let _ = parse_signature_lines(data);
    if let Ok(e) = LogEntry::decode(data) {
        assert_eq!(e.encode(), data);
    }
    let width = u16::from(data.first().copied().unwrap_or(1)).max(1);
    let _ = read_bundle(&TileId { level: None, index: 0, width }, data);
});
