#!/usr/bin/env python3
"""Recomputes protocol/vectors/blindmatch-audit.json (SPEC Section 15) from
SPEC alone, with blindmatch_v1.py's primitives (ristretto255, RFC 9380 hash
to the group, HKDF, Ed25519): the list digest, every bundle's encoding, the
batched DLEQ proof (weights, composites, challenge) and its verification,
every slot's check (entries at their positions, fillers recomputed, a delta
keeping what the base audit found), the co-signatures and the quorum cases.

    python3 papers/interop/blindmatch_audit.py [blindmatch-audit.json]

Slow, simple and not constant-time: reference code for checking.
"""

import hashlib
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import blindmatch_v1 as v1  # noqa: E402

ELL = v1.L_ORDER
CONTEXT = b"blindmatch-v1/audit-dleq"
FILLER_DST = b"blindmatch-v1/filler/ristretto255_XMD:SHA-512_R255MAP_RO_"


def i2osp(x, n):
    return x.to_bytes(n, "big")


def hash_to_scalar(msg):  # SPEC 15.3
    return int.from_bytes(v1.expand_message_xmd_sha512(msg, b"HashToScalar-" + CONTEXT, 64), "little") % ELL


def list_digest(items):  # SPEC 15.1
    h = hashlib.sha256()
    h.update(b"blindmatch-v1/audit-list" + i2osp(len(items), 4))
    for t, value in items:
        h.update(v1.item_encoding(t, value))
    return h.digest()


def parse_list(lines):
    seen, out = set(), []
    for line in lines:
        t, value = line.split()
        key = (t, bytes.fromhex(value))
        if key not in seen:
            seen.add(key)
            out.append(key)
    return out


def parse_header(hdr):  # SPEC 5.1
    return hdr[5], hdr[6:38], int.from_bytes(hdr[38:42], "big"), hdr[42:74]


def table_id(hdr, slots):  # SPEC 5.2
    return hashlib.sha256(b"blindmatch-v1/table-id" + hdr + b"".join(slots)).digest()


def filler(filler_key, i, version=None):  # SPEC 5.4
    msg = filler_key + i2osp(i, 4) + (i2osp(version, 8) if version is not None else b"")
    half = v1.hash_to_ristretto255(msg, FILLER_DST)
    return v1.encode(v1.add(half, half))


def parse_bundle(b):  # SPEC 15.2
    assert b[:5] == b"BMAU\x01"
    at = 5
    n = int.from_bytes(b[at:at + 2], "big")
    at += 2
    manifest = b[at:at + n]
    at += n
    base, digest, fkey = b[at:at + 32], b[at + 32:at + 64], b[at + 64:at + 96]
    at += 96
    n = int.from_bytes(b[at:at + 4], "big")
    at += 4
    entries = [(int.from_bytes(b[at + 8 * j:at + 8 * j + 4], "big"), int.from_bytes(b[at + 8 * j + 4:at + 8 * j + 8], "big"))
               for j in range(n)]
    at += 8 * n
    n = int.from_bytes(b[at:at + 4], "big")
    at += 4
    fresh = [(int.from_bytes(b[at + 12 * j:at + 12 * j + 4], "big"), int.from_bytes(b[at + 12 * j + 4:at + 12 * j + 12], "big"))
             for j in range(n)]
    at += 12 * n
    c, s = int.from_bytes(b[at:at + 32], "little"), int.from_bytes(b[at + 32:at + 64], "little")
    assert at + 64 == len(b)
    return {"manifest": manifest, "base": None if base == bytes(32) else base, "list_digest": digest,
            "filler_key": fkey, "entries": entries, "fresh": fresh, "c": c, "s": s}


def encode_bundle(bd):
    out = b"BMAU\x01" + i2osp(len(bd["manifest"]), 2) + bd["manifest"]
    out += (bd["base"] or bytes(32)) + bd["list_digest"] + bd["filler_key"]
    out += i2osp(len(bd["entries"]), 4) + b"".join(i2osp(s, 4) + i2osp(i, 4) for s, i in bd["entries"])
    out += i2osp(len(bd["fresh"]), 4) + b"".join(i2osp(s, 4) + i2osp(v, 8) for s, v in bd["fresh"])
    return out + bd["c"].to_bytes(32, "little") + bd["s"].to_bytes(32, "little")


def composites(l_enc, pairs):  # SPEC 15.3: seed (binding the batch), weights, M, Z
    seed_dst = b"Seed-" + CONTEXT
    batch = hashlib.sha512(b"blindmatch-v1/audit-batch" + i2osp(len(pairs), 4)
                           + b"".join(c + d for c, d in pairs)).digest()
    seed = hashlib.sha512(i2osp(32, 2) + l_enc + i2osp(len(seed_dst), 2) + seed_dst + batch).digest()
    m, z, weights = v1.IDENTITY, v1.IDENTITY, []
    for j, (c_enc, d_enc) in enumerate(pairs):
        d = hash_to_scalar(i2osp(64, 2) + seed + i2osp(j, 4) + i2osp(32, 2) + c_enc + i2osp(32, 2) + d_enc + b"Composite")
        weights.append(d)
        m = v1.add(m, v1.mul(d, v1.decode(c_enc)))
        z = v1.add(z, v1.mul(d, v1.decode(d_enc)))
    return seed, weights, m, z


def challenge(l_enc, m, z, t2, t3):
    parts = [l_enc] + [v1.encode(p) for p in (m, z, t2, t3)]
    return hash_to_scalar(b"".join(i2osp(32, 2) + p for p in parts) + b"Challenge")


def verify_proof(l_enc, pairs, c, s):  # SPEC 15.3, the verifier
    if c >= ELL or s >= ELL:
        return False
    _, _, m, z = composites(l_enc, pairs)
    l_pt = v1.decode(l_enc)
    t2 = v1.add(v1.mul(s, v1.G), v1.mul(c, l_pt))
    t3 = v1.add(v1.mul(s, m), v1.mul(c, z))
    return challenge(l_enc, m, z, t2, t3) == c


def audit(bd, hdr, slots, items, base=None):
    """SPEC 15.4 steps 5 to 7 (the caller checked 1 to 4): the result the
    vector file writes, and the state for a delta."""
    k, seed, n_slots, l_enc = parse_header(hdr)
    claim = {}
    for s, i in bd["entries"]:
        claim[s] = ("entry", i)
    for s, v in bd["fresh"]:
        claim[s] = ("fresh", v)
    failures, to_check, kept = [], [], {}
    for s in range(n_slots):
        if base is not None and base["slots"][s] == slots[s] and s not in claim:
            kept[s] = base["claims"].get(s, ("filler", None))
            if kept[s][0] == "item" and kept[s][1] not in items:
                failures.append((s, "no_longer_listed"))
            continue
        to_check.append(s)
    pairs = []
    for s, i in bd["entries"]:
        t, value = items[i]
        if s not in v1.positions(seed, n_slots, k, t, value):
            failures.append((s, "misplaced"))
        if v1.decode(slots[s]) is None or slots[s] == bytes(32):
            failures.append((s, "not_an_element"))
            continue
        pairs.append((v1.encode(v1.h_item(t, value)), slots[s]))
    fillers = 0
    for s in to_check:
        kind = claim.get(s, ("filler", None))
        if kind[0] == "entry":
            continue
        fillers += 1
        want = filler(bd["filler_key"], s, kind[1] if kind[0] == "fresh" else None)
        if slots[s] != want:
            failures.append((s, "not_a_filler"))
    proof_ok = verify_proof(l_enc, pairs, bd["c"], bd["s"])
    failures.sort()
    if failures or not proof_ok:
        return {"result": "refused", "proof_failed": not proof_ok,
                "slots": [{"slot": s, "failure": f} for s, f in failures]}, None
    claims = {s: ("item", items[i]) for s, i in bd["entries"]}
    claims.update({s: ("fresh", v) for s, v in bd["fresh"]})
    claims.update({s: c for s, c in kept.items() if c[0] != "filler"})
    return {"result": "pass", "entries_proved": len(bd["entries"]), "fillers_recomputed": fillers}, \
        {"slots": slots, "claims": claims}


def check_table(c, what, t, op_key):
    hdr, slots = bytes.fromhex(t["header"]), [bytes.fromhex(s) for s in t["slots"]]
    c.eq(f"{what} table id", table_id(hdr, slots), bytes.fromhex(t["table_id"]))
    st, sig = bytes.fromhex(t["manifest"]["statement"]), bytes.fromhex(t["manifest"]["signature"])
    c.eq(f"{what} operator signature", v1.ed_verify(op_key, b"blindmatch-v1/manifest" + st, sig), True)
    c.eq(f"{what} statement names the table", st[21:53], table_id(hdr, slots))
    c.eq(f"{what} statement's digest", st[53:85], v1.table_digest(slots, 2048))
    return hdr, slots, st + sig


def check_bundle(c, what, doc_bundle, manifest, hdr, slots, items, digest, alpha, base_id=None):
    bd = parse_bundle(bytes.fromhex(doc_bundle["encoding"]))
    c.eq(f"{what} bundle re-encodes", encode_bundle(bd), bytes.fromhex(doc_bundle["encoding"]))
    c.eq(f"{what} bundle's manifest", bd["manifest"], manifest)
    c.eq(f"{what} bundle's base", bd["base"], base_id)
    c.eq(f"{what} bundle's list digest", bd["list_digest"], digest)
    _, seed, _, l_enc = parse_header(hdr)
    fkey = v1.hkdf_expand(v1.hkdf_extract(b"blindmatch-v1/filler-key", alpha), seed, 32)
    c.eq(f"{what} filler key", bd["filler_key"], fkey)
    c.eq(f"{what} entries", bd["entries"], [(e["slot"], e["list_index"]) for e in doc_bundle["entries"]])
    c.eq(f"{what} fresh fillers", bd["fresh"], [(f["slot"], f["version"]) for f in doc_bundle["fresh"]])
    pairs = [(v1.encode(v1.h_item(*items[i])), slots[s]) for s, i in bd["entries"]]
    for (cc, dd), e in zip(pairs, doc_bundle["entries"]):
        c.eq(f"{what} C of slot {e['slot']}", cc, bytes.fromhex(e["C"]))
        c.eq(f"{what} D of slot {e['slot']}", dd, bytes.fromhex(e["D"]))
    seed_, weights, m, z = composites(l_enc, pairs)
    pr = doc_bundle["proof"]
    c.eq(f"{what} proof seed", seed_, bytes.fromhex(pr["seed"]))
    c.eq(f"{what} weights", [w.to_bytes(32, "little").hex() for w in weights], [e["d"] for e in doc_bundle["entries"]])
    c.eq(f"{what} M", v1.encode(m), bytes.fromhex(pr["M"]))
    c.eq(f"{what} Z", v1.encode(z), bytes.fromhex(pr["Z"]))
    alpha_int = int.from_bytes(alpha, "little")
    c.eq(f"{what} Z = alpha M", v1.encode(v1.mul(alpha_int, m)), bytes.fromhex(pr["Z"]))
    r = int.from_bytes(bytes.fromhex(pr["r"]), "little")
    t2, t3 = v1.mul(r, v1.G), v1.mul(r, m)
    c.eq(f"{what} t2", v1.encode(t2), bytes.fromhex(pr["t2"]))
    c.eq(f"{what} t3", v1.encode(t3), bytes.fromhex(pr["t3"]))
    ch = challenge(l_enc, m, z, t2, t3)
    c.eq(f"{what} c", ch, bd["c"])
    c.eq(f"{what} s = r - c alpha", (r - ch * alpha_int) % ELL, bd["s"])
    return bd


def check(c, doc):
    alpha = bytes.fromhex(doc["alpha"])
    op_key = bytes.fromhex(doc["operator_verifying_key"])
    c.eq("L = alpha G", v1.encode(v1.mul(int.from_bytes(alpha, "little"), v1.G)), bytes.fromhex(doc["L"]))
    items = parse_list(doc["list"]["lines"])
    c.eq("list items", len(items), doc["list"]["items"])
    digest = list_digest(items)
    c.eq("list digest", digest, bytes.fromhex(doc["list"]["digest"]))

    hdr1, slots1, man1 = check_table(c, "v1", doc["v1"]["table"], op_key)
    b1 = check_bundle(c, "v1", doc["v1"]["bundle"], man1, hdr1, slots1, items, digest, alpha)
    got, state1 = audit(b1, hdr1, slots1, items)
    c.eq("v1 audit", got, doc["v1"]["expect"])

    hdr2, slots2, man2 = check_table(c, "v2", doc["v2"]["table"], op_key)
    changed = [s for s in range(len(slots2)) if slots1[s] != slots2[s]]
    c.eq("v2 changed slots", changed, doc["v2"]["changed"])
    b2 = check_bundle(c, "v2", doc["v2"]["bundle"], man2, hdr2, slots2, items, digest, alpha,
                      table_id(hdr1, slots1))
    c.eq("v2 delta names only changed slots", all(s in changed for s, _ in b2["entries"] + b2["fresh"]), True)
    got, _ = audit(b2, hdr2, slots2, items, state1)
    c.eq("v2 delta audit", got, doc["v2"]["expect"])

    for n, case in enumerate(doc["negative"]):
        slots = list(slots1)
        if "slot" in case["table"]:
            slots[case["table"]["slot"]] = bytes.fromhex(case["table"]["value"])
            c.eq(f"negative {n} table id", table_id(hdr1, slots), bytes.fromhex(case["table"]["table_id"]))
        bd = parse_bundle(bytes.fromhex(case["bundle"]))
        got, _ = audit(bd, hdr1, slots, items)
        c.eq(f"negative {n}: {case['what']}", got, case["expect"])

    cs = doc["cosignature"]
    seed = bytes.fromhex(cs["org_seed"])
    c.eq("organisation key", v1.ed_public_key(seed), bytes.fromhex(cs["org_key"]))
    name = cs["name"].encode()
    message = b"blindmatch-v1/cosign" + bytes([len(name)]) + name + bytes.fromhex(cs["statement"])
    c.eq("co-signature", v1.ed_sign(seed, message), bytes.fromhex(cs["signature"]))
    c.eq("co-signature encoding", b"BMCS\x01" + bytes.fromhex(cs["org_key"]) + bytes([len(name)]) + name
         + bytes.fromhex(cs["signature"]), bytes.fromhex(cs["encoding"]))
    statement = bytes.fromhex(cs["statement"])
    for case in doc["quorum"]:
        pinned = {bytes.fromhex(k) for k in case["pinned"]}
        counted = set()
        for enc in map(bytes.fromhex, case["cosignatures"]):
            key, n = enc[5:37], enc[37]
            nm, sig = enc[38:38 + n], enc[38 + n:]
            if key in pinned and key not in counted and \
                    v1.ed_verify(key, b"blindmatch-v1/cosign" + bytes([n]) + nm + statement, sig):
                counted.add(key)
        c.eq(f"quorum: {case['what']}", (len(counted), "accepted" if len(counted) >= case["required"] else "refused"),
             (case["counted"], case["result"]))


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    root = os.path.dirname(os.path.dirname(here))
    path = sys.argv[1] if len(sys.argv) > 1 else os.path.join(root, "protocol", "vectors", "blindmatch-audit.json")
    c = v1.Checker()
    with open(path) as f:
        check(c, json.load(f))
    print(f"interop: {c.passed} passed, {c.failed} failed")
    return 0 if c.failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
