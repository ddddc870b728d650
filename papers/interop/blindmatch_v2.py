#!/usr/bin/env python3
"""An independent implementation of blindmatch's threshold mode (papers/SPEC.md Section 14),
written from the SPEC alone, recomputing every value of
protocol/vectors/blindmatch-v2-threshold.json: the account file, its PRK, the polynomial and
the detection polynomials, for every voucher its x-coordinate and synthetic coin, its share,
tag, inner key and inner layer and its share encoding, and for every prefix of the vouchers
the server's outcome (detection by the kernel's support over F_p, interpolation over the
scalar field, opening of the inner layers); the version-2 outer layer and manifest; the
version-2 submission digests; Section 14.6 over other lists (an inconsistent window, a
tampered share at |R| = t); the share decoder's refusals, each altered encoding made here
from vouchers[0]'s by the rule its case names (SPEC 14.11) and compared with the file's, and
a voucher carrying a refused share; and vouchers at a server of the other version.

The primitives (HKDF, AES-256-GCM, the payload layout) are those of blindmatch_v1.py beside
it, which checks them against published vectors first; nothing here shares code with the Rust
crates.

Usage: python3 papers/interop/blindmatch_v2.py [VECTORS_JSON]
Exit status 0 and a final "interop: N passed, 0 failed" line when everything agrees.
Slow, simple and not constant-time: reference code for checking.
"""

import hashlib
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import blindmatch_v1 as v1  # noqa: E402

P61 = 2**61 - 1
ELL = v1.L_ORDER
ZERO_NONCE = bytes(12)
INNER_LEN = 16 + v1.PAYLOAD_LEN + 16


def i2osp(x, n):
    return x.to_bytes(n, "big")


def scalar_reduce(b):  # 64 bytes, little-endian, mod ℓ
    return int.from_bytes(b, "little") % ELL


def scalar_encode(s):
    return (s % ELL).to_bytes(32, "little")


class Account:  # SPEC 14.1
    def __init__(self, account_id, seed, rate, t, s):
        self.account_id, self.seed, self.rate, self.t, self.s = account_id, seed, rate, t, s
        self.prk = v1.hkdf_extract(b"blindmatch-v2/account", seed)
        self.a = [scalar_reduce(v1.hkdf_expand(self.prk, b"blindmatch-v2/poly" + i2osp(t, 2) + i2osp(i, 2), 64))
                  for i in range(t)]
        self.d = []
        for j in range(1, s + 1):
            c = v1.hkdf_expand(self.prk, b"blindmatch-v2/detect" + i2osp(t, 2) + i2osp(j, 2), 8 * (t - 1))
            self.d.append([int.from_bytes(c[8 * i:8 * i + 8], "big") % P61 for i in range(t - 1)])

    def file(self):
        return (b"BMAS" + bytes([1, len(self.account_id)]) + self.account_id
                + bytes(64 - len(self.account_id)) + self.seed + i2osp(self.rate, 4))

    def choice(self, voucher_id):  # SPEC 14.4
        r = v1.hkdf_expand(self.prk, b"blindmatch-v2/voucher" + voucher_id, 12)
        x = int.from_bytes(r[:8], "big") % (P61 - 1) + 1
        synthetic = self.s > 0 and int.from_bytes(r[8:12], "big") < self.rate
        return r, x, synthetic

    def share(self, x):  # P(x) mod ℓ
        return sum(c * pow(x, i, ELL) for i, c in enumerate(self.a)) % ELL

    def tag(self, x):
        return [sum(c * pow(x, i, P61) for i, c in enumerate(dj)) % P61 for dj in self.d]

    def synthetic(self, voucher_id):  # SPEC 14.3
        r = v1.hkdf_expand(self.prk, b"blindmatch-v2/synthetic" + i2osp(self.t, 2) + voucher_id, 64 + 8 * self.s)
        tag = [int.from_bytes(r[64 + 8 * j:72 + 8 * j], "big") % P61 for j in range(self.s)]
        return r, scalar_reduce(r[:64]), tag


def inner_key(a0, nonce):  # SPEC 14.3
    return v1.hkdf_expand(v1.hkdf_extract(b"blindmatch-v2/inner-key", scalar_encode(a0)), nonce, 32)


def share_encoding(x, share, tag, inner):
    return i2osp(x, 8) + scalar_encode(share) + b"".join(i2osp(e, 8) for e in tag) + inner


def decode_share(b, s):
    x = int.from_bytes(b[:8], "big")
    share = int.from_bytes(b[8:40], "little")
    tag = [int.from_bytes(b[40 + 8 * j:48 + 8 * j], "big") for j in range(s)]
    assert 0 < x < P61 and share < ELL and all(e < P61 for e in tag) and len(b) == 1164 + 8 * s
    return x, share, tag, b[40 + 8 * s:]


def classify_share(b, s):  # SPEC 14.3: the decoder's checks, in order
    if len(b) != 1164 + 8 * s:
        return "length"
    x = int.from_bytes(b[:8], "big")
    if x == 0 or x >= P61:
        return "x_out_of_range"
    if int.from_bytes(b[8:40], "little") >= ELL:
        return "share_not_canonical"
    if any(int.from_bytes(b[40 + 8 * j:48 + 8 * j], "big") >= P61 for j in range(s)):
        return "tag_not_below_p"
    return "ok"


def kernel_support(rows, cols):  # SPEC 14.5, exact over F_p
    n = len(cols)
    m = [[cols[c][r] % P61 for c in range(n)] for r in range(rows)]
    pivots, r = [], 0
    for c in range(n):
        if r == rows:
            break
        p = next((i for i in range(r, rows) if m[i][c]), None)
        if p is None:
            continue
        m[r], m[p] = m[p], m[r]
        inv = pow(m[r][c], P61 - 2, P61)
        m[r] = [v * inv % P61 for v in m[r]]
        for i in range(rows):
            if i != r and m[i][c]:
                f = m[i][c]
                m[i] = [(a - f * b) % P61 for a, b in zip(m[i], m[r])]
        pivots.append(c)
        r += 1
    # Reduced row echelon form: the kernel vector of free column f has 1 at f and
    # −m[row][f] at each pivot column.
    support = [False] * n
    for f in (c for c in range(n) if c not in pivots):
        support[f] = True
        for row, pc in enumerate(pivots):
            if m[row][f]:
                support[pc] = True
    return support


def lagrange(points, z):  # over the scalar field
    total = 0
    for i, (xi, yi) in enumerate(points):
        num, den = 1, 1
        for j, (xj, _) in enumerate(points):
            if j != i:
                num = num * (z - xj) % ELL
                den = den * (xi - xj) % ELL
        total = (total + yi * num * pow(den, ELL - 2, ELL)) % ELL
    return total


def server(t, shares):  # SPEC 14.6
    distinct, seen = [], set()
    for i, (x, _, _, _) in enumerate(shares):
        if x not in seen:
            seen.add(x)
            distinct.append(i)
    if len(distinct) < t:
        return {"outcome": "below"}
    m = min(len(shares[i][2]) for i in distinct)
    window = distinct[max(0, len(distinct) - (t + m)):]
    cols = [[pow(shares[i][0], e, P61) for e in range(t - 1)] + shares[i][2][:m] for i in window]
    support = kernel_support(t - 1 + m, cols)
    found = [i for i, f in zip(window, support) if f]
    if len(found) < t:
        return {"outcome": "below"}
    points = [(shares[i][0], shares[i][1]) for i in found[:t]]
    if any(lagrange(points, shares[i][0]) != shares[i][1] for i in found):
        return {"outcome": "inconsistent"}
    a0 = lagrange(points, 0)
    real, synthetic = [], []
    for i, (x, share, _, inner) in enumerate(shares):
        if lagrange(points, x) != share:
            synthetic.append(i)
            continue
        pt = v1.gcm_open(inner_key(a0, inner[:16]), ZERO_NONCE, i2osp(x, 8), inner[16:])
        if pt is None or v1.parse_payload(pt) is None:
            real.append({"index": i, "malformed": True})
            continue
        type_name, value, ad = v1.parse_payload(pt)
        real.append({"index": i, "type": type_name, "value": value.hex(), "associated_data": ad.hex()})
    return {"outcome": "revealed", "real": real, "synthetic": synthetic}


def draw(weights, r):  # SPEC 14.7: the synthetic voucher's open box
    if sum(weights) == 0:
        weights = [1] * len(weights)
    point, acc, j = r % sum(weights), 0, 0
    for i, w in enumerate(weights[:-1]):
        acc += w
        j += acc <= point
    return j


def synthetic_outer(table, gamma, payload_key, j_syn, fakes):  # SPEC 14.7 step 3, synthetic
    k, _, _, l_pt, _, table_id = table
    q_enc = v1.encode(v1.mul(gamma, v1.G))
    s_enc = v1.encode(v1.mul(gamma, l_pt))
    _, wrap_key, confirm = v1.key_schedule(s_enc, table_id, q_enc, j_syn)
    # Box j_syn opens; every other box j is fake box j (the j-th of the k).
    boxes = b"".join(confirm + v1.gcm_seal(wrap_key, ZERO_NONCE, b"", payload_key) if j == j_syn else fakes[j]
                     for j in range(k))
    return q_enc, boxes


def create_v2(table, acct, t_share, case, weights):  # SPEC 14.7
    k, seed, n_slots, l_pt, slots, table_id = table
    beta, gamma = (int.from_bytes(v1.hx(case[n]), "little") for n in ("beta", "gamma"))
    payload_key = v1.hx(case["payload_key"])
    if case["synthetic"]:
        q_enc, boxes = synthetic_outer(table, gamma, payload_key, draw(weights, case["draw"]),
                                       [v1.hx(b) for b in case["fake_boxes"]])
    else:
        # Section 6's outer layer; its version-1 payload is not used.
        _, trace = v1.create_voucher(table, case["type"], v1.hx(case["value"]), b"", beta, gamma, payload_key)
        q_enc = trace["Q"]
        boxes = b"".join(cf + w for cf, w in zip(trace["confirms"], trace["wrapped_payload_keys"]))
    prefix = b"\x02" + q_enc + boxes
    aad = table_id + bytes([len(acct.account_id)]) + acct.account_id + prefix
    return prefix + v1.gcm_seal(payload_key, ZERO_NONCE, aad, t_share)


def open_v2(alpha, table, account_id, s, voucher):  # SPEC 14.7 with Section 7
    k, _, _, _, _, table_id = table
    assert len(voucher) == 33 + 80 * k + 1164 + 8 * s + 16 and voucher[0] == 2
    q_enc = voucher[1:33]
    prk = v1.hkdf_extract(v1.KDF_SALT, v1.encode(v1.mul(alpha, v1.decode(q_enc))))
    for j in range(k):
        okm = v1.hkdf_expand(prk, table_id + q_enc + bytes([j]), 64)
        box = voucher[33 + 80 * j: 33 + 80 * (j + 1)]
        if okm[32:] == box[:32]:
            payload_key = v1.gcm_open(okm[:32], ZERO_NONCE, b"", box[32:])
            prefix = voucher[:33 + 80 * k]
            aad = table_id + bytes([len(account_id)]) + account_id + prefix
            share = v1.gcm_open(payload_key, ZERO_NONCE, aad, voucher[33 + 80 * k:])
            if classify_share(share, s) != "ok":
                return {"opened_position": j, "result": "malformed"}
            return {"opened_position": j, "share_encoding": share.hex()}
    return {"opened_position": None}


def check_outer(c, doc, v1doc, acct):
    t, s = doc["t"], doc["s"]
    sk, tb = v1doc["server_key"], v1doc["table"]
    alpha = int.from_bytes(v1.hx(sk["alpha"]), "little")
    l_pt = v1.mul(alpha, v1.G)
    slots = [v1.hx(x) for x in tb["slots"]]
    table_id = v1.hx(tb["table_id"])
    c.eq("v2 vectors use the v1 table", table_id, v1.hx(doc["table_id"]))
    table = (tb["k"], v1.hx(tb["seed"]), tb["n_slots"], l_pt, slots, table_id)
    weights = [0] * tb["k"]
    for en in tb["entries"]:
        weights[en["position"]] += 1
    c.eq("placement weights", weights, doc["placement_weights"])
    for n, case in enumerate(doc["outer"]):
        vid = v1.hx(case["voucher_id"])
        _, x, synthetic = acct.choice(vid)
        c.eq(f"outer {n} synthetic", synthetic, case["synthetic"])
        if synthetic:
            _, share, tag = acct.synthetic(vid)
            inner = v1.hx(case["synthetic_inner"])
        else:
            share, tag = acct.share(x), acct.tag(x)
            nonce = v1.hx(case["inner_nonce"])
            payload = v1.make_payload(case["type"], v1.hx(case["value"]), v1.hx(case["associated_data"]))
            inner = nonce + v1.gcm_seal(inner_key(acct.a[0], nonce), ZERO_NONCE, i2osp(x, 8), payload)
        voucher = create_v2(table, acct, share_encoding(x, share, tag, inner), case, weights)
        c.eq(f"outer {n} voucher", voucher, v1.hx(case["voucher"]))
        c.eq(f"outer {n} opening", open_v2(alpha, table, acct.account_id, s, voucher), case["server"])


def check_manifest(c, doc, v1doc):  # SPEC 14.8 on SPEC 13.3
    mf, tb = doc["manifest"], v1doc["table"]
    slots = [v1.hx(x) for x in tb["slots"]]
    public = v1.ed_public_key(v1.hx(mf["signing_key_seed"]))
    c.eq("v2 manifest: verifying key", public, v1.hx(mf["verifying_key"]))
    digest = v1.table_digest(slots, 2048)
    c.eq("v2 manifest: digest", digest, v1.hx(mf["digest"]))
    statement = (b"BMMF\x02" + i2osp(mf["version"], 8) + i2osp(mf["created"], 8)
                 + v1.hx(tb["table_id"]) + digest + i2osp(2048, 4) + v1.hx(tb["header"])
                 + i2osp(doc["t"], 2) + i2osp(doc["s"], 2)
                 + b"".join(i2osp(w, 4) for w in doc["placement_weights"]))
    c.eq("v2 manifest: statement", statement, v1.hx(mf["statement"]))
    message = mf["signed_message_prefix"].encode() + statement
    sig = v1.hx(mf["signature"])
    c.eq("v2 manifest: signature verifies", v1.ed_verify(public, message, sig), True)
    for at in (4, len(statement) - 1):  # the version byte, a placement weight
        bad = bytearray(statement)
        bad[at] ^= 1
        c.eq(f"v2 manifest: byte {at} changed does not verify",
             v1.ed_verify(public, mf["signed_message_prefix"].encode() + bytes(bad), sig), False)


def check_submission_digests(c, doc):  # SPEC 14.9
    table_id = v1.hx(doc["table_id"])
    for n, case in enumerate(doc["submission_digests"]):
        aid = v1.hx(case["account_id"])
        qs = [v1.hx(doc["outer"][i]["voucher"])[1:33] for i in case["outer"]]
        digest = hashlib.sha256(b"blindmatch-v2/submission-digest" + table_id + bytes([len(aid)]) + aid
                                + i2osp(len(qs), 4) + b"".join(qs)).digest()
        c.eq(f"submission digest {n} ({case['what']})", digest, v1.hx(case["digest"]))


def check_reveal_cases(c, doc, a, encodings):  # SPEC 14.6 on other lists of shares
    t, s = doc["t"], doc["s"]
    for n, case in enumerate(doc["reveal_cases"]):
        encs = []
        for m in case["shares"]:
            if "voucher" in m:
                x, share, tag, inner = decode_share(encodings[m["voucher"]], s)
            else:  # a real voucher of its own (SPEC 14.3, 14.4)
                vid = v1.hx(m["voucher_id"])
                _, x, synthetic = a.choice(vid)
                c.eq(f"reveal case {n}: x", x, m["x"])
                c.eq(f"reveal case {n}: synthetic", synthetic, m["synthetic"])
                share, tag = a.share(x), a.tag(x)
                nonce = v1.hx(m["inner_nonce"])
                payload = v1.make_payload(m["type"], v1.hx(m["value"]), v1.hx(m["associated_data"]))
                inner = nonce + v1.gcm_seal(inner_key(a.a[0], nonce), ZERO_NONCE, i2osp(x, 8), payload)
            share = (share + m.get("add_to_share", 0)) % ELL
            encs.append(share_encoding(x, share, tag, inner))
        c.eq(f"reveal case {n}: share encodings", [e.hex() for e in encs], case["share_encodings"])
        got = server(t, [decode_share(e, s) for e in encs])
        got["shares"] = len(encs)
        c.eq(f"reveal case {n}: outcome ({case['what'][:40]}...)", got, case["outcome"])


SHARE_VALUES = {"0": 0, "p": P61, "p - 1": P61 - 1, "l": ELL, "2^64 - 1": 2**64 - 1, "2^256 - 1": 2**256 - 1}


def alter_share(base, what, s):
    """The alteration a share_decoding case names (SPEC 14.11), applied to `base`; None for a
    name this script does not know."""
    if what == "vouchers[0]'s share encoding":
        return base
    if what == "one byte short":
        return base[:-1]
    if what == "one byte long":
        return base + b"\x00"
    if what.startswith("the inner layer") and what.endswith(f"{INNER_LEN} zero bytes"):
        return base[:len(base) - INNER_LEN] + bytes(INNER_LEN)
    out = bytearray(base)
    # "x = 0 and share = l: x is checked first", "x = p - 1 (the largest x)": the text after
    # a colon and in parentheses comments on the rule.
    for term in what.split(":")[0].split(" (")[0].split(" and "):
        field, _, value = term.partition(" = ")
        v = SHARE_VALUES.get(value)
        if v is None:
            return None
        if field == "x" and v < 2**64:
            out[0:8] = i2osp(v, 8)
        elif field == "share" and v < 2**256:
            out[8:40] = v.to_bytes(32, "little")
        elif field.startswith("tag_") and field[4:].isdigit() and 1 <= int(field[4:]) <= s and v < 2**64:
            j = int(field[4:])
            out[40 + 8 * (j - 1):48 + 8 * (j - 1)] = i2osp(v, 8)
        else:
            return None
    return bytes(out)


def check_share_decoding(c, doc, encodings):  # SPEC 14.3, and 14.11's alterations
    s = doc["s"]
    cases = doc["share_decoding"]
    c.eq("share decoding: the base case is vouchers[0]'s", v1.hx(cases[0]["share_encoding"]), encodings[0])
    for case in cases:
        what = case["what"]
        # Each encoding is made here from vouchers[0]'s by the rule `what` names, then
        # compared with the file's bytes; the result word is the decoder's on those bytes.
        altered = alter_share(encodings[0], what, s)
        if altered is None:
            c.eq(f"share decoding: {what}: a rule SPEC 14.11 names", "unknown", "known")
            continue
        c.eq(f"share decoding: {what}: bytes", altered, v1.hx(case["share_encoding"]))
        c.eq(f"share decoding: {what}", classify_share(altered, s), case["result"])


def table_of(v1doc):
    sk, tb = v1doc["server_key"], v1doc["table"]
    alpha = int.from_bytes(v1.hx(sk["alpha"]), "little")
    table = (tb["k"], v1.hx(tb["seed"]), tb["n_slots"], v1.mul(alpha, v1.G), [v1.hx(x) for x in tb["slots"]],
             v1.hx(tb["table_id"]))
    return alpha, table


def check_malformed_voucher(c, doc, v1doc, encodings):  # SPEC 14.3 and 14.7: a share the server refuses
    mv, s = doc["malformed_voucher"], doc["s"]
    alpha, table = table_of(v1doc)
    k, table_id = table[0], table[5]
    share = bytes(8) + encodings[0][8:]
    c.eq("malformed voucher: share encoding (vouchers[0]'s with x = 0)", share, v1.hx(mv["share_encoding"]))
    c.eq("malformed voucher: the share is refused", classify_share(share, s), mv["share_result"])
    payload_key = v1.hx(mv["payload_key"])
    q_enc, boxes = synthetic_outer(table, int.from_bytes(v1.hx(mv["gamma"]), "little"), payload_key,
                                   mv["position"], [v1.hx(b) for b in mv["fake_boxes"]])
    aid = v1.hx(mv["account_id"])
    prefix = b"\x02" + q_enc + boxes
    voucher = prefix + v1.gcm_seal(payload_key, ZERO_NONCE, table_id + bytes([len(aid)]) + aid + prefix, share)
    c.eq("malformed voucher: bytes", voucher, v1.hx(mv["voucher"]))
    c.eq("malformed voucher: the server's opening", open_v2(alpha, table, aid, s, voucher), mv["server"])


def check_cross_version(c, doc, v1doc):  # SPEC 7 step 1 and 14.7 step 1: length first, then the version byte
    k, s = v1doc["table"]["k"], doc["s"]

    def v1_decode(b):
        return "length" if len(b) != 33 + 80 * k + 1108 else "unsupported_version" if b[0] != 1 else "ok"

    def v2_decode(b):
        return "length" if len(b) != 33 + 80 * k + 1180 + 8 * s else "unsupported_version" if b[0] != 2 else "ok"

    outer0 = v1.hx(doc["outer"][0]["voucher"])
    cases = doc["cross_version"]
    c.eq("cross version: inputs", [v1.hx(x["voucher"]) for x in cases],
         [outer0, v1.hx(v1doc["cases"][0]["voucher"]), b"\x01" + outer0[1:]])
    c.eq("cross version: results", [x["result"] for x in cases],
         [v1_decode(outer0), v2_decode(v1.hx(v1doc["cases"][0]["voucher"])), v2_decode(b"\x01" + outer0[1:])])


def check(c, doc, v1doc):
    t, s, acct = doc["t"], doc["s"], doc["account"]
    a = Account(v1.hx(acct["account_id"]), v1.hx(acct["seed"]), acct["rate"], t, s)
    c.eq("account file", a.file(), v1.hx(acct["file"]))
    c.eq("account prk", a.prk, v1.hx(acct["prk"]))
    c.eq("coefficients", [scalar_encode(x).hex() for x in a.a], acct["coefficients"])
    c.eq("key scalar", scalar_encode(a.a[0]), v1.hx(acct["key_scalar"]))
    c.eq("detection coefficients", a.d, acct["detection"])
    shares = []
    for n, v in enumerate(doc["vouchers"]):
        vid = v1.hx(v["voucher_id"])
        r, x, synthetic = a.choice(vid)
        c.eq(f"voucher {n} choice bytes", r, v1.hx(v["choice_bytes"]))
        c.eq(f"voucher {n} x", x, v["x"])
        c.eq(f"voucher {n} synthetic", synthetic, v["synthetic"])
        if synthetic:
            r, share, tag = a.synthetic(vid)
            c.eq(f"voucher {n} synthetic expand", r, v1.hx(v["synthetic_expand"]))
            inner = v1.hx(v["inner"])
        else:
            share, tag = a.share(x), a.tag(x)
            nonce = v1.hx(v["inner_nonce"])
            ik = inner_key(a.a[0], nonce)
            c.eq(f"voucher {n} inner key", ik, v1.hx(v["inner_key"]))
            payload = v1.make_payload(v["type"], v1.hx(v["value"]), v1.hx(v["associated_data"]))
            c.eq(f"voucher {n} payload", payload, v1.hx(v["payload_plaintext"]))
            inner = nonce + v1.gcm_seal(ik, ZERO_NONCE, i2osp(x, 8), payload)
        c.eq(f"voucher {n} share", scalar_encode(share), v1.hx(v["share"]))
        c.eq(f"voucher {n} tag", tag, v["tag"])
        enc = share_encoding(x, share, tag, inner)
        c.eq(f"voucher {n} share encoding", enc, v1.hx(v["share_encoding"]))
        shares.append(decode_share(enc, s))
    for k, want in enumerate(doc["server"]):
        got = server(t, shares[:k + 1])
        got["shares"] = k + 1
        c.eq(f"server outcome after {k + 1} shares", got, want)
    encodings = [v1.hx(v["share_encoding"]) for v in doc["vouchers"]]
    check_outer(c, doc, v1doc, a)
    check_manifest(c, doc, v1doc)
    check_submission_digests(c, doc)
    check_reveal_cases(c, doc, a, encodings)
    check_share_decoding(c, doc, encodings)
    check_malformed_voucher(c, doc, v1doc, encodings)
    check_cross_version(c, doc, v1doc)


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    root = os.path.dirname(os.path.dirname(here))
    path = sys.argv[1] if len(sys.argv) > 1 else os.path.join(root, "protocol", "vectors", "blindmatch-v2-threshold.json")
    c = v1.Checker()
    with open(path) as f, open(os.path.join(root, "protocol", "vectors", "blindmatch-v1.json")) as g:
        check(c, json.load(f), json.load(g))
    print(f"interop: {c.passed} passed, {c.failed} failed")
    return 0 if c.failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
