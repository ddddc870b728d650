#!/usr/bin/env python3
"""Recomputes protocol/vectors/blindmatch-log.json (SPEC Section 16) from SPEC
and the C2SP specifications alone, with blindmatch_v1.py's Ed25519: the log's
and witnesses' key IDs and verifier keys, every entry's encoding and leaf
hash, every checkpoint's text, the log's signature and the witnesses'
cosignatures (byte for byte: Ed25519 is deterministic), the tlog-proofs, the
inclusion and consistency proofs (RFC 9162 Section 2.1, generated and
verified), the tiles of a tree past a full tile, and the client's refusals.

    python3 papers/interop/blindmatch_log.py [blindmatch-log.json]

Slow, simple and not constant-time: reference code for checking.
"""

import base64
import hashlib
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import blindmatch_v1 as v1  # noqa: E402

DASH = "\u2014"


def b64(b):
    return base64.b64encode(b).decode()


def key_id(name, kind, public):  # signed-note: SHA-256(name || 0x0A || type || key)[:4]
    return hashlib.sha256(name.encode() + b"\n" + bytes([kind]) + public).digest()[:4]


def vkey(name, kind, public):
    return f"{name}+{key_id(name, kind, public).hex()}+{b64(bytes([kind]) + public)}"


def leaf(entry):
    return hashlib.sha256(b"\x00" + entry).digest()


def node(a, b):
    return hashlib.sha256(b"\x01" + a + b).digest()


def split(n):  # the largest power of two below n
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def mth(leaves):  # RFC 9162 2.1.1
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return leaves[0]
    k = split(len(leaves))
    return node(mth(leaves[:k]), mth(leaves[k:]))


def path(m, leaves):  # RFC 9162 2.1.3.1
    if len(leaves) <= 1:
        return []
    k = split(len(leaves))
    if m < k:
        return path(m, leaves[:k]) + [mth(leaves[k:])]
    return path(m - k, leaves[k:]) + [mth(leaves[:k])]


def subproof(m, leaves, b):  # RFC 9162 2.1.4.1
    n = len(leaves)
    if m == n:
        return [] if b else [mth(leaves)]
    k = split(n)
    if m <= k:
        return subproof(m, leaves[:k], b) + [mth(leaves[k:])]
    return subproof(m - k, leaves[k:], False) + [mth(leaves[:k])]


def verify_inclusion(index, size, leaf_hash, proof, root):  # RFC 9162 2.1.3.2
    if index >= size:
        return False
    fn, sn, r = index, size - 1, leaf_hash
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node(p, r)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = node(r, p)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and r == root


def verify_consistency(m, n, old_root, new_root, proof):  # RFC 9162 2.1.4.2
    if m > n:
        return False
    if m == n:
        return not proof and old_root == new_root
    if m == 0:
        return not proof
    if m & (m - 1) == 0:
        proof = [old_root] + proof
    if not proof:
        return False
    fn, sn = m - 1, n - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = proof[0]
    for c in proof[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr, sr = node(c, fr), node(c, sr)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = node(sr, c)
        fn, sn = fn >> 1, sn >> 1
    return fr == old_root and sr == new_root and sn == 0


def parse_entry(b):  # SPEC 16.2; returns (signed, [cosignature encodings]) or None
    if b[:5] != b"BMLE\x01":
        return None
    at = 5
    n = int.from_bytes(b[at:at + 2], "big")
    signed, at = b[at + 2:at + 2 + n], at + 2 + n
    m, at = b[at], at + 1
    cos = []
    for _ in range(m):
        n = int.from_bytes(b[at:at + 2], "big")
        cos.append(b[at + 2:at + 2 + n])
        at += 2 + n
    if at != len(b) or m > 32:
        return None
    keys = [c[5:37] for c in cos]
    if keys != sorted(keys) or len(set(keys)) != len(keys) or any(c[:5] != b"BMCS\x01" for c in cos):
        return None
    return signed, cos


def sign_line(name, kid, sig):
    return f"{DASH} {name} {b64(kid + sig)}\n"


def cosign_line(name, seed, t, text):  # tlog-cosignature, Ed25519 v1 (type 0x04)
    msg = f"cosignature/v1\ntime {t}\n".encode() + text.encode()
    pk = v1.ed_public_key(seed)
    return sign_line(name, key_id(name, 4, pk), t.to_bytes(8, "big") + v1.ed_sign(seed, msg))


def parse_note(note):  # signed-note: (text, [(name, key id, signature)])
    i = note.rfind("\n\n")
    text, sigs = note[:i + 1], note[i + 2:]
    out = []
    for line in sigs.rstrip("\n").split("\n"):
        assert line.startswith(DASH + " ")
        name, s = line[2:].split(" ")
        raw = base64.b64decode(s)
        out.append((name, raw[:4], raw[4:]))
    return text, out


def client_verdict(doc, note, witnesses, quorum):  # SPEC 16.6 step 2
    text, sigs = parse_note(note)
    log_pk = v1.ed_public_key(v1.hx(doc["log"]["seed"]))
    origin = doc["log"]["origin"]
    log_kid = key_id(origin, 1, log_pk)
    mine = [s for (n, k, s) in sigs if n == origin and k == log_kid]
    if not mine or not all(v1.ed_verify(log_pk, text.encode(), s) for s in mine):
        return "log_signature"
    if text.split("\n")[0] != origin:
        return "origin"
    count = 0
    for name, pk in witnesses:
        lines = [s for (n, k, s) in sigs if n == name and k == key_id(name, 4, pk)]
        for s in lines:
            t = int.from_bytes(s[:8], "big")
            msg = f"cosignature/v1\ntime {t}\n".encode() + text.encode()
            if len(s) != 72 or not v1.ed_verify(pk, msg, s[8:]):
                return "bad_cosignature"
        count += 1 if lines else 0
    return "accepted" if count >= quorum else "quorum"


def tile_path(level, index, width):  # tlog-tiles
    groups = []
    while True:
        groups.append(index % 1000)
        index //= 1000
        if index == 0:
            break
    groups.reverse()
    parts = [f"x{g:03}" for g in groups[:-1]] + [f"{groups[-1]:03}"]
    p = f"tile/{level}/" + "/".join(parts)
    return p + (f".p/{width}" if width < 256 else "")


def tiles(leaves):
    out, level, hashes = [], 0, leaves
    while hashes:
        for i in range(0, len(hashes), 256):
            chunk = hashes[i:i + 256]
            out.append((tile_path(level, i // 256, len(chunk)), b"".join(chunk)))
        hashes = [mth(hashes[i:i + 256]) for i in range(0, len(hashes) - len(hashes) % 256, 256)]
        level += 1
    return out


def check(c, doc):
    log = doc["log"]
    origin = log["origin"]
    log_seed = v1.hx(log["seed"])
    log_pk = v1.ed_public_key(log_seed)
    c.eq("log: key ID", key_id(origin, 1, log_pk).hex(), log["key_id"])
    c.eq("log: verifier key", vkey(origin, 1, log_pk), log["vkey"])
    witnesses = []
    for w in doc["witnesses"]:
        pk = v1.ed_public_key(v1.hx(w["seed"]))
        c.eq(f"witness {w['name']}: public key", pk.hex(), w["public_key"])
        c.eq(f"witness {w['name']}: cosigner key ID (0x04)", key_id(w["name"], 4, pk).hex(), w["key_id"])
        c.eq(f"witness {w['name']}: verifier key", vkey(w["name"], 4, pk), w["vkey"])
        witnesses.append((w["name"], pk))

    leaves = []
    for e in doc["entries"]:
        enc = v1.hx(e["encoding"])
        parsed = parse_entry(enc)
        c.eq(f"entry v{e['version']}: decodes canonically", parsed is not None, True)
        if parsed is None:
            continue
        signed, cos = parsed
        c.eq(f"entry v{e['version']}: co-signatures", len(cos), e["cosignatures"])
        # The statement's version (SPEC 13.3: magic, 1-byte version, 8-byte version).
        c.eq(f"entry v{e['version']}: the statement's version", int.from_bytes(signed[5:13], "big"), e["version"])
        c.eq(f"entry v{e['version']}: the operator's signature (SPEC 13.3)",
             v1.ed_verify(v1.hx(doc["operator_verifying_key"]), b"blindmatch-v1/manifest" + signed[:-64],
                          signed[-64:]), True)
        c.eq(f"entry v{e['version']}: leaf hash", leaf(enc).hex(), e["leaf_hash"])
        leaves.append(leaf(enc))

    for cp in doc["checkpoints"]:
        n = cp["size"]
        root = mth(leaves[:n])
        c.eq(f"checkpoint {n}: root", root.hex(), cp["root"])
        text = f"{origin}\n{n}\n{b64(root)}\n"
        c.eq(f"checkpoint {n}: text", text, cp["text"])
        sig = sign_line(origin, key_id(origin, 1, log_pk), v1.ed_sign(log_seed, text.encode()))
        c.eq(f"checkpoint {n}: the log's signature", sig, cp["signature"])
        cos = [cosign_line(w["name"], v1.hx(w["seed"]), cp["timestamp"], text) for w in doc["witnesses"]]
        c.eq(f"checkpoint {n}: cosignatures", cos, cp["cosignatures"])
        c.eq(f"checkpoint {n}: note", text + "\n" + sig + "".join(cos), cp["note"])
        c.eq(f"checkpoint {n}: a client accepts it", client_verdict(doc, cp["note"], witnesses, doc["quorum"]),
             "accepted")

    full_note = doc["checkpoints"][-1]["note"]
    size = len(leaves)
    for inc in doc["inclusion"]:
        i = inc["index"]
        p = path(i, leaves)
        c.eq(f"inclusion {i}: path", [h.hex() for h in p], inc["path"])
        c.eq(f"inclusion {i}: verifies", verify_inclusion(i, size, leaves[i], p, mth(leaves)), True)
        text = f"c2sp.org/tlog-proof@v1\nindex {i}\n" + "".join(b64(h) + "\n" for h in p) + "\n" + full_note
        c.eq(f"inclusion {i}: tlog-proof", text, inc["tlog_proof"])

    for con in doc["consistency"]:
        m, n = con["old"], con["new"]
        p = subproof(m, leaves[:n], True)
        c.eq(f"consistency {m} -> {n}: proof", [h.hex() for h in p], con["proof"])
        c.eq(f"consistency {m} -> {n}: verifies", verify_consistency(m, n, mth(leaves[:m]), mth(leaves[:n]), p), True)

    many = [leaf(i.to_bytes(4, "big")) for i in range(doc["tiles"]["size"])]
    got = [{"path": p, "hashes": h.hex()} for p, h in tiles(many)]
    c.eq("tiles: paths and hashes", got, doc["tiles"]["tiles"])

    for neg in doc["negative"]:
        if "note" in neg:
            verdict = client_verdict(doc, neg["note"], witnesses, doc["quorum"])
        elif "tlog_proof" in neg:
            t = neg["tlog_proof"]
            lines = t.split("\n")
            i = int(lines[1].split(" ")[1])
            hashes, k = [], 2
            while lines[k]:
                hashes.append(base64.b64decode(lines[k]))
                k += 1
            note = "\n".join(lines[k + 1:])
            root = base64.b64decode(note.split("\n")[2])
            n = int(note.split("\n")[1])
            ok = verify_inclusion(i, n, leaf(v1.hx(neg["entry"])), hashes, root)
            verdict = client_verdict(doc, note, witnesses, doc["quorum"])
            verdict = verdict if verdict != "accepted" else ("accepted" if ok else "inclusion")
        else:
            ok = verify_consistency(neg["old"]["size"], neg["new"]["size"], v1.hx(neg["old"]["root"]),
                                    v1.hx(neg["new"]["root"]), [v1.hx(h) for h in neg["proof"]])
            verdict = "accepted" if ok else "inconsistent"
        c.eq(f"negative: {neg['what']}", verdict, neg["refusal"])


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    root = os.path.dirname(os.path.dirname(here))
    path_ = sys.argv[1] if len(sys.argv) > 1 else os.path.join(root, "protocol", "vectors", "blindmatch-log.json")
    c = v1.Checker()
    with open(path_) as f:
        check(c, json.load(f))
    print(f"interop: {c.passed} passed, {c.failed} failed")
    return 0 if c.failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
