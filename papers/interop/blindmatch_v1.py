#!/usr/bin/env python3
"""An independent implementation of blindmatch v1, written from papers/SPEC.md alone.

It shares no code with the Rust crates: ristretto255 (RFC 9496), expand_message_xmd
(RFC 9380), HKDF (RFC 5869, via the standard library's hmac) and AES-256-GCM (FIPS 197 and
NIST SP 800-38D) are implemented here in plain Python, checked first against the published
vectors in protocol/tests/data/, and then used to recompute every value of
protocol/vectors/blindmatch-v1.json: the key file, the table header, id and entries, and
for every case each client intermediate, the voucher bytes, and the server's opening; and
(SPEC Section 13) the Merkle digest and audit paths, a version built in place and its delta,
the Ed25519-signed manifests (RFC 8032, on the same curve arithmetic), and a table of three
chunks with a voucher for an entry in each; the negative vectors, each forged voucher rebuilt
from its `forged` inputs (a forgery without them is a failed check); and (SPEC 12.5) the
Protocol Buffers encodings of protocol/vectors/blindmatch-wire.json, with a minimal encoder
of its own.

Usage: python3 papers/interop/blindmatch_v1.py [VECTORS_JSON]
Exit status 0 and a final "N passed, 0 failed" line when everything agrees.

This is slow, simple reference code for checking, not for production: nothing here is
constant-time.
"""

import hashlib
import hmac
import json
import os
import sys

# ---------------------------------------------------------------------------
# ristretto255 (RFC 9496 Section 4), over edwards25519 in extended coordinates
# ---------------------------------------------------------------------------

P = 2**255 - 19
L_ORDER = 2**252 + 27742317777372353535851937790883648493
D = 37095705934669439343138083508754565189542113879843219016388785533085940283555
SQRT_M1 = 19681161376707505956807079304988542015446066515923890162744021073123829784752
SQRT_AD_MINUS_ONE = 25063068953384623474111414158702152701244531502492656460079210482610430750235
INVSQRT_A_MINUS_D = 54469307008909316920995813868745141605393597292927456921205312896311721017578
ONE_MINUS_D_SQ = 1159843021668779879193775521855586647937357759715417654439879720876111806838
D_MINUS_ONE_SQ = 40440834346308536858101042469323190826248399146238708352240133220865137265952


def is_negative(x):
    return (x % P) & 1 == 1


def ct_abs(x):
    x %= P
    return (-x) % P if is_negative(x) else x


def sqrt_ratio_m1(u, v):
    u %= P
    v %= P
    r = (u * pow(v, 3, P)) * pow(u * pow(v, 7, P), (P - 5) // 8, P) % P
    check = v * r * r % P
    correct = check == u
    flipped = check == (-u) % P
    flipped_i = check == (-u * SQRT_M1) % P
    if flipped or flipped_i:
        r = SQRT_M1 * r % P
    return correct or flipped, ct_abs(r)


IDENTITY = (0, 1, 1, 0)


def decode(b):
    """RFC 9496 Section 4.3.1; None on failure."""
    if len(b) != 32:
        return None
    s = int.from_bytes(b, "little")
    if s >= P or is_negative(s):
        return None
    ss = s * s % P
    u1 = (1 - ss) % P
    u2 = (1 + ss) % P
    u2_sqr = u2 * u2 % P
    v = (-(D * u1 * u1) - u2_sqr) % P
    was_square, invsqrt = sqrt_ratio_m1(1, v * u2_sqr)
    den_x = invsqrt * u2 % P
    den_y = invsqrt * den_x * v % P
    x = ct_abs(2 * s * den_x)
    y = u1 * den_y % P
    t = x * y % P
    if not was_square or is_negative(t) or y == 0:
        return None
    return (x, y, 1, t)


def encode(pt):
    """RFC 9496 Section 4.3.2."""
    x0, y0, z0, t0 = pt
    u1 = (z0 + y0) * (z0 - y0) % P
    u2 = x0 * y0 % P
    _, invsqrt = sqrt_ratio_m1(1, u1 * u2 * u2)
    den1 = invsqrt * u1 % P
    den2 = invsqrt * u2 % P
    z_inv = den1 * den2 * t0 % P
    ix0 = x0 * SQRT_M1 % P
    iy0 = y0 * SQRT_M1 % P
    enchanted = den1 * INVSQRT_A_MINUS_D % P
    rotate = is_negative(t0 * z_inv)
    x, y, den_inv = (iy0, ix0, enchanted) if rotate else (x0, y0, den2)
    if is_negative(x * z_inv):
        y = (-y) % P
    s = ct_abs(den_inv * (z0 - y))
    return s.to_bytes(32, "little")


def add(p1, p2):
    """Extended twisted Edwards addition, a = -1 (Hisil-Wong-Carter-Dawson 2008)."""
    x1, y1, z1, t1 = p1
    x2, y2, z2, t2 = p2
    a = (y1 - x1) * (y2 - x2) % P
    b = (y1 + x1) * (y2 + x2) % P
    c = t1 * 2 * D * t2 % P
    d = z1 * 2 * z2 % P
    e, f, g, h = b - a, d - c, d + c, b + a
    return (e * f % P, g * h % P, f * g % P, e * h % P)


def mul(scalar, pt):
    acc = IDENTITY
    for bit in bin(scalar % L_ORDER)[2:]:
        acc = add(acc, acc)
        if bit == "1":
            acc = add(acc, pt)
    return acc


def equal(p1, p2):
    x1, y1, _, _ = p1
    x2, y2, _, _ = p2
    return (x1 * y2 - y1 * x2) % P == 0 or (y1 * y2 - x1 * x2) % P == 0


def _map(t):
    r = SQRT_M1 * t * t % P
    u = (r + 1) * ONE_MINUS_D_SQ % P
    v = (-1 - r * D) * (r + D) % P
    was_square, s = sqrt_ratio_m1(u, v)
    s_prime = (-ct_abs(s * t)) % P
    s = s if was_square else s_prime
    c = (P - 1) if was_square else r
    n = (c * (r - 1) * D_MINUS_ONE_SQ - v) % P
    w0 = 2 * s * v % P
    w1 = n * SQRT_AD_MINUS_ONE % P
    w2 = (1 - s * s) % P
    w3 = (1 + s * s) % P
    return (w0 * w3 % P, w2 * w1 % P, w1 * w3 % P, w0 * w2 % P)


def from_uniform_bytes(b):
    """RFC 9496 Section 4.3.4."""
    assert len(b) == 64
    r0 = int.from_bytes(b[:32], "little") % 2**255 % P
    r1 = int.from_bytes(b[32:], "little") % 2**255 % P
    return add(_map(r0), _map(r1))


G = decode(bytes.fromhex("e2f2ae0a6abc4e71a884a961c500515f58e30b6aa582dd8db6a65945e08d2d76"))

# ---------------------------------------------------------------------------
# RFC 9380: expand_message_xmd (SHA-512) and hash_to_ristretto255
# ---------------------------------------------------------------------------


def expand_message_xmd_sha512(msg, dst, length):
    b_in_bytes, s_in_bytes = 64, 128
    ell = -(-length // b_in_bytes)
    assert ell <= 255 and length <= 65535 and len(dst) <= 255
    dst_prime = dst + bytes([len(dst)])
    msg_prime = bytes(s_in_bytes) + msg + length.to_bytes(2, "big") + b"\x00" + dst_prime
    b0 = hashlib.sha512(msg_prime).digest()
    bi = hashlib.sha512(b0 + b"\x01" + dst_prime).digest()
    out = bi
    for i in range(2, ell + 1):
        bi = hashlib.sha512(bytes(x ^ y for x, y in zip(b0, bi)) + bytes([i]) + dst_prime).digest()
        out += bi
    return out[:length]


def hash_to_ristretto255(msg, dst):
    return from_uniform_bytes(expand_message_xmd_sha512(msg, dst, 64))


# ---------------------------------------------------------------------------
# HKDF-SHA256 (RFC 5869)
# ---------------------------------------------------------------------------


def hkdf_extract(salt, ikm):
    return hmac.new(salt, ikm, hashlib.sha256).digest()


def hkdf_expand(prk, info, length):
    out, t, i = b"", b"", 1
    while len(out) < length:
        t = hmac.new(prk, t + info + bytes([i]), hashlib.sha256).digest()
        out += t
        i += 1
    return out[:length]


# ---------------------------------------------------------------------------
# AES-256 (FIPS 197) and GCM (NIST SP 800-38D)
# ---------------------------------------------------------------------------


def _sbox():
    sbox = [0] * 256
    p = q = 1
    while True:
        # p *= 3, q /= 3 in GF(2^8)
        p = p ^ ((p << 1) & 0xFF) ^ (0x1B if p & 0x80 else 0)
        q ^= q << 1
        q ^= q << 2
        q ^= q << 4
        q &= 0xFF
        if q & 0x80:
            q ^= 0x09
        rot = lambda x, n: ((x << n) | (x >> (8 - n))) & 0xFF  # noqa: E731
        sbox[p] = q ^ rot(q, 1) ^ rot(q, 2) ^ rot(q, 3) ^ rot(q, 4) ^ 0x63
        if p == 1:
            break
    sbox[0] = 0x63
    return sbox


SBOX = _sbox()


def _xtime(a):
    return ((a << 1) ^ 0x1B) & 0xFF if a & 0x80 else a << 1


def aes256_expand(key):
    assert len(key) == 32
    words = [list(key[4 * i: 4 * i + 4]) for i in range(8)]
    rcon = 1
    for i in range(8, 60):
        t = list(words[i - 1])
        if i % 8 == 0:
            t = [SBOX[b] for b in t[1:] + t[:1]]
            t[0] ^= rcon
            rcon = _xtime(rcon)
        elif i % 8 == 4:
            t = [SBOX[b] for b in t]
        words.append([a ^ b for a, b in zip(words[i - 8], t)])
    return [sum(words[4 * r: 4 * r + 4], []) for r in range(15)]


def aes256_encrypt_block(round_keys, block):
    s = [b ^ k for b, k in zip(block, round_keys[0])]
    for rnd in range(1, 15):
        s = [SBOX[b] for b in s]
        # ShiftRows on the column-major state
        s = [s[(i + 4 * (i % 4)) % 16] for i in range(16)]
        if rnd != 14:
            cols = []
            for c in range(4):
                a = s[4 * c: 4 * c + 4]
                t = a[0] ^ a[1] ^ a[2] ^ a[3]
                cols += [a[i] ^ t ^ _xtime(a[i] ^ a[(i + 1) % 4]) for i in range(4)]
            s = cols
        s = [b ^ k for b, k in zip(s, round_keys[rnd])]
    return bytes(s)


def _gf_mult(x, y):
    r = 0xE1 << 120
    z, v = 0, y
    for i in range(127, -1, -1):
        if (x >> i) & 1:
            z ^= v
        v = (v >> 1) ^ r if v & 1 else v >> 1
    return z


def _ghash(h, aad, ct):
    def blocks(data):
        data += bytes(-len(data) % 16)
        return [int.from_bytes(data[i: i + 16], "big") for i in range(0, len(data), 16)]

    y = 0
    lens = ((8 * len(aad)) << 64) | (8 * len(ct))
    for b in blocks(aad) + blocks(ct) + [lens]:
        y = _gf_mult(y ^ b, h)
    return y


def _gcm_core(key, nonce, aad, data):
    assert len(nonce) == 12
    rk = aes256_expand(key)
    h = int.from_bytes(aes256_encrypt_block(rk, bytes(16)), "big")
    j0 = nonce + b"\x00\x00\x00\x01"
    out = bytearray()
    for i in range(0, len(data), 16):
        ctr = nonce + (2 + i // 16).to_bytes(4, "big")
        ks = aes256_encrypt_block(rk, ctr)
        out += bytes(a ^ b for a, b in zip(data[i: i + 16], ks))
    return rk, h, j0, bytes(out)


def gcm_seal(key, nonce, aad, pt):
    rk, h, j0, ct = _gcm_core(key, nonce, aad, pt)
    s = _ghash(h, aad, ct) ^ int.from_bytes(aes256_encrypt_block(rk, j0), "big")
    return ct + s.to_bytes(16, "big")


def gcm_open(key, nonce, aad, ct_tag):
    ct, tag = ct_tag[:-16], ct_tag[-16:]
    rk, h, j0, pt = _gcm_core(key, nonce, aad, ct)
    s = _ghash(h, aad, ct) ^ int.from_bytes(aes256_encrypt_block(rk, j0), "big")
    if not hmac.compare_digest(s.to_bytes(16, "big"), tag):
        return None
    return pt


# ---------------------------------------------------------------------------
# blindmatch v1, from papers/SPEC.md
# ---------------------------------------------------------------------------

TYPES = {"md5": (1, 16), "sha1": (2, 20), "sha256": (3, 32), "pdq": (4, 32), "bytes": (5, None)}
CODES = {code: name for name, (code, _) in TYPES.items()}
MAX_ITEM_LEN, MAX_AD_LEN = 64, 1024
PAYLOAD_LEN = 1 + 1 + MAX_ITEM_LEN + 2 + MAX_AD_LEN
ZERO_NONCE = bytes(12)
KDF_SALT = b"blindmatch-v1/voucher-kdf"


def item_encoding(type_name, value):  # SPEC 3
    return bytes([TYPES[type_name][0], len(value)]) + value


def dst_item(type_name):  # SPEC 3.1
    return b"blindmatch-v1/hash-to-group/ristretto255_XMD:SHA-512_R255MAP_RO_/" + type_name.encode()


def h_item(type_name, value):
    return hash_to_ristretto255(value, dst_item(type_name))


def header(k, seed, n_slots, l_enc):  # SPEC 5.1
    return b"BMTB" + bytes([1, k]) + seed + n_slots.to_bytes(4, "big") + l_enc


def positions(seed, n_slots, k, type_name, value):  # SPEC 5.3
    d = hashlib.sha512(b"blindmatch-v1/cuckoo-positions" + seed + item_encoding(type_name, value)).digest()
    return [int.from_bytes(d[8 * j: 8 * j + 8], "big") % n_slots for j in range(k)]


def key_schedule(s_enc, table_id, q_enc, j):  # SPEC 6 step 5
    prk = hkdf_extract(KDF_SALT, s_enc)
    okm = hkdf_expand(prk, table_id + q_enc + bytes([j]), 64)
    return prk, okm[:32], okm[32:]


def make_payload(type_name, value, ad):  # SPEC 6 step 7
    return (bytes([TYPES[type_name][0], len(value)]) + value + bytes(MAX_ITEM_LEN - len(value))
            + len(ad).to_bytes(2, "big") + ad + bytes(MAX_AD_LEN - len(ad)))


def parse_payload(p):  # SPEC 7 step 7
    if p[0] not in CODES:
        return None
    name = CODES[p[0]]
    n = p[1]
    fixed = TYPES[name][1]
    if (fixed is not None and n != fixed) or not 1 <= n <= MAX_ITEM_LEN:
        return None
    if any(p[2 + n: 2 + MAX_ITEM_LEN]):
        return None
    at = 2 + MAX_ITEM_LEN
    ad_len = int.from_bytes(p[at: at + 2], "big")
    if ad_len > MAX_AD_LEN or any(p[at + 2 + ad_len:]):
        return None
    return name, p[2: 2 + n], p[at + 2: at + 2 + ad_len]


def create_voucher(table, type_name, value, ad, beta, gamma, payload_key):  # SPEC 6
    k, seed, n_slots, l_pt, slots, table_id = table
    trace = {}
    h = h_item(type_name, value)
    w = positions(seed, n_slots, k, type_name, value)
    q = add(mul(beta, h), mul(gamma, G))
    q_enc = encode(q)
    trace.update(H=encode(h), positions=w, Q=q_enc, S=[], prk=[], wrap_keys=[], confirms=[],
                 wrapped_payload_keys=[], table_slots=[slots[x] for x in w])
    boxes = b""
    gamma_l = mul(gamma, l_pt)
    for j in range(k):
        t_j = decode(slots[w[j]])
        s_j = encode(add(mul(beta, t_j), gamma_l))
        prk, wrap_key, confirm = key_schedule(s_j, table_id, q_enc, j)
        wrapped = gcm_seal(wrap_key, ZERO_NONCE, b"", payload_key)
        boxes += confirm + wrapped
        for name, val in (("S", s_j), ("prk", prk), ("wrap_keys", wrap_key), ("confirms", confirm),
                          ("wrapped_payload_keys", wrapped)):
            trace[name].append(val)
    prefix = b"\x01" + q_enc + boxes
    payload = make_payload(type_name, value, ad)
    aad = table_id + prefix
    ct = gcm_seal(payload_key, ZERO_NONCE, aad, payload)
    trace.update(payload_plaintext=payload, payload_aad=aad, payload_ciphertext=ct)
    return prefix + ct, trace


def open_voucher(alpha, table, slot_entry, entries, voucher):  # SPEC 7
    k, seed, n_slots, _, _, table_id = table
    if len(voucher) != 33 + 80 * k + 1108 or voucher[0] != 1:
        return "malformed", None
    q_enc = voucher[1:33]
    q = decode(q_enc)
    if q is None or q_enc == bytes(32):
        return "malformed", None
    s_prime = encode(mul(alpha, q))
    prk = hkdf_extract(KDF_SALT, s_prime)
    hit = None
    for j in range(k):
        okm = hkdf_expand(prk, table_id + q_enc + bytes([j]), 64)
        box = voucher[33 + 80 * j: 33 + 80 * (j + 1)]
        if hmac.compare_digest(okm[32:], box[:32]) and hit is None:
            hit = (j, okm[:32], box[32:])
    result = {"S_prime": s_prime, "opened_position": None, "decrypted_payload": None, "match": None}
    if hit is None:
        return "no match", result
    j, wrap_key, wrapped = hit
    result["opened_position"] = j
    payload_key = gcm_open(wrap_key, ZERO_NONCE, b"", wrapped)
    if payload_key is None:
        return "malformed", result
    prefix = voucher[: 33 + 80 * k]
    payload = gcm_open(payload_key, ZERO_NONCE, table_id + prefix, voucher[33 + 80 * k:])
    if payload is None:
        return "malformed", result
    result["decrypted_payload"] = payload
    parsed = parse_payload(payload)
    if parsed is None:
        return "malformed", result
    name, value, ad = parsed
    w = positions(seed, n_slots, k, name, value)[j]
    e = slot_entry.get(w)
    if e is None or entries[e] != (name, value):
        return "forged", result
    result["match"] = {"entry": e, "type": name, "value": value, "associated_data": ad}
    return "match", result


# ---------------------------------------------------------------------------
# The checks
# ---------------------------------------------------------------------------


class Checker:
    def __init__(self):
        self.passed = 0
        self.failed = 0

    def eq(self, what, got, want):
        if got == want:
            self.passed += 1
        else:
            self.failed += 1
            show = lambda v: v.hex() if isinstance(v, (bytes, bytearray)) else repr(v)  # noqa: E731
            print(f"MISMATCH {what}:\n  computed {show(got)}\n  expected {show(want)}")


def hx(s):
    return bytes.fromhex(s)


def check_primitives(c, data_dir):
    with open(os.path.join(data_dir, "rfc9496_ristretto255.json")) as f:
        r = json.load(f)
    acc = IDENTITY
    for v in r["generator_multiples"]["vectors"]:
        c.eq(f"RFC 9496 A.1 {v['k']}G", encode(acc), hx(v["encoding"]))
        acc = add(acc, G)
    for v in r["invalid_encodings"]["vectors"]:
        c.eq(f"RFC 9496 A.2 rejects {v['encoding'][:16]}", decode(hx(v["encoding"])), None)
    for v in r["element_derivation"]["vectors"]:
        c.eq("RFC 9496 A.3", encode(from_uniform_bytes(hx(v["input"]))), hx(v["output"]))
    with open(os.path.join(data_dir, "rfc9380_expand_message_xmd_sha512.json")) as f:
        x = json.load(f)
    for t in x["tests"]:
        n = int(t["len_in_bytes"], 16)
        c.eq("RFC 9380 K.3", expand_message_xmd_sha512(t["msg"].encode(), x["DST"].encode(), n),
             hx(t["uniform_bytes"]))
    with open(os.path.join(data_dir, "rfc9497_oprf_ristretto255_sha512.json")) as f:
        o = json.load(f)
    dst = hx(o["dst"]["HashToGroup"]["hex"])
    sk = int.from_bytes(hx(o["skSm"]), "little")
    for v in o["vectors"]:
        blinded = mul(int.from_bytes(hx(v["Blind"]), "little"), hash_to_ristretto255(hx(v["Input"]), dst))
        c.eq("RFC 9497 BlindedElement", encode(blinded), hx(v["BlindedElement"]))
        c.eq("RFC 9497 EvaluationElement", encode(mul(sk, blinded)), hx(v["EvaluationElement"]))
    with open(os.path.join(data_dir, "extras_kdf_aead.json")) as f:
        e = json.load(f)
    for v in e["hkdf"]:
        prk = hkdf_extract(hx(v["salt"]), hx(v["IKM"]))
        c.eq("RFC 5869 PRK", prk, hx(v["PRK"]))
        c.eq("RFC 5869 OKM", hkdf_expand(prk, hx(v["info"]), v["L"]), hx(v["OKM"]))
    for v in e["aes256gcm"]:
        sealed = gcm_seal(hx(v["key"]), hx(v["nonce"]), hx(v["aad"]), hx(v["plaintext"]))
        c.eq("GCM seal", sealed, hx(v["ciphertext"]) + hx(v["tag"]))
        c.eq("GCM open", gcm_open(hx(v["key"]), hx(v["nonce"]), hx(v["aad"]), sealed), hx(v["plaintext"]))


def check_vectors(c, doc):
    sk = doc["server_key"]
    alpha = int.from_bytes(hx(sk["alpha"]), "little")
    l_pt = mul(alpha, G)
    c.eq("public key", encode(l_pt), hx(sk["public_key"]))
    c.eq("key file", b"BMSK\x01" + hx(sk["alpha"]) + encode(l_pt), hx(sk["key_file"]))

    t = doc["table"]
    k, seed, n_slots = t["k"], hx(t["seed"]), t["n_slots"]
    slots = [hx(s) for s in t["slots"]]
    c.eq("slot count", len(slots), n_slots)
    hdr = header(k, seed, n_slots, encode(l_pt))
    c.eq("table header", hdr, hx(t["header"]))
    table_id = hashlib.sha256(b"blindmatch-v1/table-id" + hdr + b"".join(slots)).digest()
    c.eq("table id", table_id, hx(t["table_id"]))
    for i, s in enumerate(slots):
        c.eq(f"slot {i} decodes to a non-identity element", decode(s) is not None and s != bytes(32), True)
    entries, slot_entry = [], {}
    for en in t["entries"]:
        value = hx(en["value"])
        w = positions(seed, n_slots, k, en["type"], value)
        c.eq(f"entry {en['entry']} positions", w, en["positions"])
        c.eq(f"entry {en['entry']} slot is one of its positions", w[en["position"]], en["slot"])
        c.eq(f"entry {en['entry']} slot value", slots[en["slot"]], encode(mul(alpha, h_item(en["type"], value))))
        entries.append((en["type"], value))
        slot_entry[en["slot"]] = en["entry"]
    table = (k, seed, n_slots, l_pt, slots, table_id)

    # SPEC 5.4 (informative): the reference builder's filler slots.
    filler_key = hkdf_expand(hkdf_extract(b"blindmatch-v1/filler-key", hx(sk["alpha"])), seed, 32)
    filler_dst = b"blindmatch-v1/filler/ristretto255_XMD:SHA-512_R255MAP_RO_"
    for i in range(n_slots):
        if i not in slot_entry:
            half = hash_to_ristretto255(filler_key + i.to_bytes(4, "big"), filler_dst)
            c.eq(f"filler slot {i}", slots[i], encode(add(half, half)))

    for case in doc["cases"]:
        name, inp, cl = case["name"], case["input"], case["client"]
        value, ad = hx(inp["value"]), hx(inp["associated_data"])
        c.eq(f"{name}: item_encoding", item_encoding(inp["type"], value), hx(cl["item_encoding"]))
        c.eq(f"{name}: DST", dst_item(inp["type"]).decode(), cl["hash_to_group_dst"])
        c.eq(f"{name}: uniform_bytes", expand_message_xmd_sha512(value, dst_item(inp["type"]), 64),
             hx(cl["uniform_bytes"]))
        beta = int.from_bytes(hx(inp["beta"]), "little")
        gamma = int.from_bytes(hx(inp["gamma"]), "little")
        voucher, trace = create_voucher(table, inp["type"], value, ad, beta, gamma, hx(inp["payload_key"]))
        for field in ("H", "Q", "payload_plaintext", "payload_aad", "payload_ciphertext"):
            c.eq(f"{name}: {field}", trace[field], hx(cl[field]))
        c.eq(f"{name}: positions", trace["positions"], cl["positions"])
        for field in ("table_slots", "S", "prk", "wrap_keys", "confirms", "wrapped_payload_keys"):
            c.eq(f"{name}: {field}", trace[field], [hx(v) for v in cl[field]])
        c.eq(f"{name}: voucher", voucher, hx(case["voucher"]))

        outcome, result = open_voucher(alpha, table, slot_entry, entries, hx(case["voucher"]))
        srv = case["server"]
        c.eq(f"{name}: outcome", outcome, "match" if srv["match"] else "no match")
        c.eq(f"{name}: S'", result["S_prime"], hx(srv["S_prime"]))
        c.eq(f"{name}: opened position", result["opened_position"], srv["opened_position"])
        want_payload = hx(srv["decrypted_payload"]) if srv["decrypted_payload"] else None
        c.eq(f"{name}: decrypted payload", result["decrypted_payload"], want_payload)
        if srv["match"]:
            m = srv["match"]
            want = {"entry": m["entry"], "type": m["type"], "value": hx(m["value"]),
                    "associated_data": hx(m["associated_data"])}
            c.eq(f"{name}: match", result["match"], want)
            c.eq(f"{name}: match is the input", (want["type"], want["value"], want["associated_data"]),
                 (inp["type"], value, ad))

        # Tampering: one flipped bit in each region of the voucher must never match.
        v = bytearray(hx(case["voucher"]))
        for offset in (0, 1, 40, 33 + 80 * k - 1, 33 + 80 * k + 5, len(v) - 1):
            w = bytearray(v)
            w[offset] ^= 1
            tampered, _ = open_voucher(alpha, table, slot_entry, entries, bytes(w))
            c.eq(f"{name}: bit flip at {offset} does not match", tampered != "match", True)


# ---------------------------------------------------------------------------
# Ed25519 (RFC 8032 Section 5.1), on the same curve arithmetic, for manifests
# ---------------------------------------------------------------------------

def ed_decode(b):
    """RFC 8032 Section 5.1.3; None on failure."""
    if len(b) != 32:
        return None
    n = int.from_bytes(b, "little")
    sign, y = n >> 255, n & ((1 << 255) - 1)
    if y >= P:
        return None
    u, v = (y * y - 1) % P, (D * y * y + 1) % P
    x = u * pow(v, 3, P) * pow(u * pow(v, 7, P), (P - 5) // 8, P) % P
    if v * x * x % P == (-u) % P:
        x = x * SQRT_M1 % P
    if v * x * x % P != u:
        return None
    if x == 0 and sign:
        return None
    if x & 1 != sign:
        x = P - x
    return (x, y, 1, x * y % P)


def ed_encode(pt):
    x, y, z, _ = pt
    zi = pow(z, P - 2, P)
    x, y = x * zi % P, y * zi % P
    return (y | ((x & 1) << 255)).to_bytes(32, "little")


ED_B = ed_decode(bytes.fromhex("5866666666666666666666666666666666666666666666666666666666666666"))


def ed_public_key(seed):
    h = hashlib.sha512(seed).digest()
    a = int.from_bytes(h[:32], "little") & ((1 << 254) - 8) | (1 << 254)
    return ed_encode(mul(a, ED_B))


def ed_sign(seed, message):  # RFC 8032 Section 5.1.6
    h = hashlib.sha512(seed).digest()
    a = int.from_bytes(h[:32], "little") & ((1 << 254) - 8) | (1 << 254)
    public = ed_encode(mul(a, ED_B))
    r = int.from_bytes(hashlib.sha512(h[32:] + message).digest(), "little") % L_ORDER
    r_enc = ed_encode(mul(r, ED_B))
    k = int.from_bytes(hashlib.sha512(r_enc + public + message).digest(), "little") % L_ORDER
    return r_enc + ((r + k * a) % L_ORDER).to_bytes(32, "little")


def ed_verify(public, message, sig):
    a_pt, r_pt = ed_decode(public), ed_decode(sig[:32])
    s = int.from_bytes(sig[32:], "little")
    if a_pt is None or r_pt is None or s >= L_ORDER:
        return False
    k = int.from_bytes(hashlib.sha512(sig[:32] + public + message).digest(), "little")
    return ed_encode(mul(s, ED_B)) == ed_encode(add(r_pt, mul(k, a_pt)))


# ---------------------------------------------------------------------------
# SPEC 13: Merkle digest, versions built in place, deltas, signed manifests
# ---------------------------------------------------------------------------

def leaf_hash(chunk):
    return hashlib.sha256(b"\x00" + chunk).digest()


def node_hash(left, right):
    return hashlib.sha256(b"\x01" + left + right).digest()


def mth(leaves):  # RFC 9162 Section 2.1.1
    if len(leaves) == 1:
        return leaves[0]
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return node_hash(mth(leaves[:k]), mth(leaves[k:]))


def table_digest(slots, chunk_slots):
    data = b"".join(slots)
    step = chunk_slots * 32
    return mth([leaf_hash(data[i:i + step]) for i in range(0, len(data), step)])


def verify_inclusion(root, index, size, leaf, path):  # RFC 9162 Section 2.1.3.2
    if index >= size:
        return False
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while fn & 1 == 0 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def check_lifecycle(c, doc):
    lc = doc["lifecycle"]
    sk, t = doc["server_key"], doc["table"]
    alpha = int.from_bytes(hx(sk["alpha"]), "little")
    k, seed, n_slots = t["k"], hx(t["seed"]), t["n_slots"]
    hdr = hx(t["header"])

    # Merkle tree over several chunks: leaves, root, every audit path.
    m = lc["merkle"]
    slots = [hashlib.sha256(b"blindmatch-v1 merkle vector" + i.to_bytes(4, "big")).digest()
             for i in range(m["n_slots"])]
    data, step = b"".join(slots), m["chunk_slots"] * 32
    chunks = [data[i:i + step] for i in range(0, len(data), step)]
    leaves = [leaf_hash(ch) for ch in chunks]
    c.eq("merkle: leaf hashes", leaves, [hx(x) for x in m["leaf_hashes"]])
    root = mth(leaves)
    c.eq("merkle: root", root, hx(m["root"]))
    for ap in m["audit_paths"]:
        i, path = ap["leaf"], [hx(x) for x in ap["path"]]
        c.eq(f"merkle: leaf {i} path verifies", verify_inclusion(root, i, len(leaves), leaves[i], path), True)
        c.eq(f"merkle: leaf {i} path fails for another chunk",
             verify_inclusion(root, i, len(leaves), leaf_hash(chunks[i][:-1] + b"\x00"), path), False)

    # Version 2: apply the delta, check each changed slot, the id and the digest.
    u = lc["update"]
    v1 = [hx(s) for s in t["slots"]]
    v2 = list(v1)
    filler_key = hkdf_expand(hkdf_extract(b"blindmatch-v1/filler-key", hx(sk["alpha"])), seed, 32)
    filler_dst = b"blindmatch-v1/filler/ristretto255_XMD:SHA-512_R255MAP_RO_"
    removed_slot = next(en["slot"] for en in t["entries"] if en["entry"] == u["removed"]["entry"])
    changed = set()
    for ch in u["delta"]:
        i = ch["slot"]
        changed.add(i)
        c.eq(f"update: slot {i} before", v1[i], hx(ch["before"]))
        v2[i] = hx(ch["after"])
        occ = ch["occupant"]
        if occ is None:
            half = hash_to_ristretto255(filler_key + i.to_bytes(4, "big") + u["version"].to_bytes(8, "big"),
                                        filler_dst)
            c.eq(f"update: slot {i} holds a fresh filler for version {u['version']}", v2[i], encode(add(half, half)))
        else:
            value = hx(occ["value"])
            c.eq(f"update: slot {i} is a position of its entry", i in positions(seed, n_slots, k, occ["type"], value), True)
            c.eq(f"update: slot {i} holds alpha*H(entry {occ['entry']})", v2[i],
                 encode(mul(alpha, h_item(occ["type"], value))))
    c.eq("update: the removed entry's slot changed", removed_slot in changed, True)
    for a in u["added"]:
        w = positions(seed, n_slots, k, a["type"], hx(a["value"]))
        want = encode(mul(alpha, h_item(a["type"], hx(a["value"]))))
        c.eq(f"update: added entry {a['entry']} is in one of its slots", any(v2[j] == want for j in w), True)
    table_id = hashlib.sha256(b"blindmatch-v1/table-id" + hdr + b"".join(v2)).digest()
    c.eq("update: table id", table_id, hx(u["table_id"]))
    digest = table_digest(v2, m["chunk_slots"])
    c.eq("update: digest", digest, hx(u["digest"]))

    # The signed manifest of version 2.
    mf = lc["manifest"]
    public = ed_public_key(hx(mf["signing_key_seed"]))
    c.eq("manifest: verifying key", public, hx(mf["verifying_key"]))
    statement = (b"BMMF\x01" + mf["version"].to_bytes(8, "big") + mf["created"].to_bytes(8, "big")
                 + table_id + digest + m["chunk_slots"].to_bytes(4, "big") + hdr)
    c.eq("manifest: statement", statement, hx(mf["statement"]))
    message = mf["signed_message_prefix"].encode() + statement
    sig = hx(mf["signature"])
    c.eq("manifest: signature verifies", ed_verify(public, message, sig), True)
    bad = bytearray(statement)
    bad[20] ^= 1
    c.eq("manifest: a changed statement does not verify",
         ed_verify(public, mf["signed_message_prefix"].encode() + bytes(bad), sig), False)


def check_chunked(c, doc):
    """SPEC 13.2 and 13.3 on a table of several chunks: a first build, version 1."""
    ct, sk, mf = doc["chunked_table"], doc["server_key"], doc["lifecycle"]["manifest"]
    alpha = int.from_bytes(hx(sk["alpha"]), "little")
    l_pt = mul(alpha, G)
    k, seed, n_slots = ct["k"], hx(ct["seed"]), ct["n_slots"]
    slots = [hx(s) for s in ct["slots"]]
    c.eq("chunked: slot count", len(slots), n_slots)
    hdr = header(k, seed, n_slots, encode(l_pt))
    c.eq("chunked: header", hdr, hx(ct["header"]))
    table_id = hashlib.sha256(b"blindmatch-v1/table-id" + hdr + b"".join(slots)).digest()
    c.eq("chunked: table id", table_id, hx(ct["table_id"]))
    chunk_slots = 2048
    digest = table_digest(slots, chunk_slots)
    c.eq("chunked: digest", digest, hx(ct["digest"]))

    # Every chunk a client downloads verifies on its own against the digest.
    data = b"".join(slots)
    step = chunk_slots * 32
    chunks = [data[i:i + step] for i in range(0, len(data), step)]
    c.eq("chunked: chunk count", len(chunks), len(ct["chunks"]))
    for ch in ct["chunks"]:
        i = ch["leaf"]
        c.eq(f"chunked: chunk {i} offset", ch["offset"], i * step)
        leaf = leaf_hash(chunks[i])
        c.eq(f"chunked: chunk {i} leaf hash", leaf, hx(ch["leaf_hash"]))
        path = [hx(x) for x in ch["path"]]
        c.eq(f"chunked: chunk {i} audit path verifies", verify_inclusion(digest, i, len(chunks), leaf, path), True)

    # Entries hold alpha * H(item) at one of their positions; every other
    # slot is a first-build filler (SPEC 5.4, informative).
    slot_entry, entries = {}, []
    for en in ct["entries"]:
        value = hx(en["value"])
        entries.append((en["type"], value))
        slot_entry[en["slot"]] = en["entry"]
        c.eq(f"chunked: entry {en['entry']} is at one of its positions",
             en["slot"] in positions(seed, n_slots, k, en["type"], value), True)
        c.eq(f"chunked: entry {en['entry']} slot value", slots[en["slot"]],
             encode(mul(alpha, h_item(en["type"], value))))
    filler_key = hkdf_expand(hkdf_extract(b"blindmatch-v1/filler-key", hx(sk["alpha"])), seed, 32)
    filler_dst = b"blindmatch-v1/filler/ristretto255_XMD:SHA-512_R255MAP_RO_"
    wrong = []
    for i in range(n_slots):
        if i not in slot_entry:
            half = hash_to_ristretto255(filler_key + i.to_bytes(4, "big"), filler_dst)
            if slots[i] != encode(add(half, half)):
                wrong.append(i)
    c.eq(f"chunked: the {n_slots - len(slot_entry)} other slots are first-build fillers", wrong, [])

    # The version-1 manifest, under the lifecycle's operator key.
    m = ct["manifest"]
    statement = (b"BMMF\x01" + m["version"].to_bytes(8, "big") + m["created"].to_bytes(8, "big")
                 + table_id + digest + chunk_slots.to_bytes(4, "big") + hdr)
    c.eq("chunked: manifest statement", statement, hx(m["statement"]))
    public = hx(mf["verifying_key"])
    c.eq("chunked: manifest signature verifies",
         ed_verify(public, mf["signed_message_prefix"].encode() + statement, hx(m["signature"])), True)

    # A voucher for an entry in each chunk: the client side reproduces it,
    # the server side opens it to that entry.
    table = (k, seed, n_slots, l_pt, slots, table_id)
    for v in ct["vouchers"]:
        inp = v["input"]
        beta = int.from_bytes(hx(inp["beta"]), "little")
        gamma = int.from_bytes(hx(inp["gamma"]), "little")
        wire, _ = create_voucher(table, inp["type"], hx(inp["value"]), hx(inp["associated_data"]),
                                 beta, gamma, hx(inp["payload_key"]))
        c.eq(f"chunked: voucher for chunk {v['chunk']}", wire, hx(v["voucher"]))
        outcome, result = open_voucher(alpha, table, slot_entry, entries, wire)
        got = None if result["match"] is None else {
            "entry": result["match"]["entry"], "position": result["opened_position"],
            "slot": positions(seed, n_slots, k, inp["type"], hx(inp["value"]))[result["opened_position"]]}
        c.eq(f"chunked: voucher for chunk {v['chunk']} opens", (outcome, got), ("match", v["match"]))
        c.eq(f"chunked: voucher for chunk {v['chunk']} is for an entry in it",
             v["match"]["slot"] // chunk_slots, v["chunk"])


# ---------------------------------------------------------------------------
# SPEC 12.5: the Protocol Buffers encodings of the service's messages. A
# minimal proto3 encoder: fields in field-number order, defaults left out,
# repeated integers packed (what the reference writes).
# ---------------------------------------------------------------------------


def pb_varint(n):
    out = b""
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out += bytes([byte | 0x80])
        else:
            return out + bytes([byte])


def pb_message(fields):
    """fields: (number, kind, value) in field-number order; kind is "int",
    "bytes", "repeated bytes" or "packed int"."""
    out = b""
    for number, kind, value in fields:
        if kind == "int" and value != 0:
            out += pb_varint(number << 3) + pb_varint(value)
        elif kind == "bytes" and value != b"":
            out += pb_varint(number << 3 | 2) + pb_varint(len(value)) + value
        elif kind == "repeated bytes":
            for v in value:
                out += pb_varint(number << 3 | 2) + pb_varint(len(v)) + v
        elif kind == "packed int" and value:
            body = b"".join(pb_varint(v) for v in value)
            out += pb_varint(number << 3 | 2) + pb_varint(len(body)) + body
    return out


def manifest_message(statement, signature, max_batch):  # proto Manifest from SPEC 13.3 / 14.8
    protocol_version = statement[4]
    version = int.from_bytes(statement[5:13], "big")
    created = int.from_bytes(statement[13:21], "big")
    table_id, digest = statement[21:53], statement[53:85]
    chunk_slots = int.from_bytes(statement[85:89], "big")
    hdr = statement[89:163]
    k, seed, n_slots, public_key = hdr[5], hdr[6:38], int.from_bytes(hdr[38:42], "big"), hdr[42:74]
    t = s = 0
    weights = []
    if protocol_version == 2:
        t, s = int.from_bytes(statement[163:165], "big"), int.from_bytes(statement[165:167], "big")
        weights = [int.from_bytes(statement[167 + 4 * j:171 + 4 * j], "big") for j in range(k)]
    return pb_message([
        (1, "int", protocol_version), (2, "bytes", table_id), (3, "int", k), (4, "bytes", seed),
        (5, "int", n_slots), (6, "bytes", public_key), (7, "bytes", hdr), (8, "int", 32 * n_slots),
        (9, "int", max_batch), (10, "int", version), (11, "int", created), (12, "bytes", digest),
        (13, "int", chunk_slots), (14, "bytes", statement), (15, "bytes", signature),
        (16, "int", t), (17, "int", s), (18, "packed int", weights),
    ])


def check_wire(c, doc, v2, wire):
    mb = wire["max_batch"]
    sources = [doc["chunked_table"]["manifest"], doc["lifecycle"]["manifest"], v2["manifest"]]
    c.eq("wire: manifest count", len(wire["manifests"]), len(sources))
    for m, want in zip(sources, wire["manifests"]):
        c.eq(f"wire: Manifest, {want['what']}", manifest_message(hx(m["statement"]), hx(m["signature"]), mb),
             hx(want["encoding"]))

    ct = doc["chunked_table"]
    data = b"".join(hx(x) for x in ct["slots"])
    step = 2048 * 32
    c.eq("wire: table chunk count", len(wire["table_chunks"]), len(ct["chunks"]))
    for ch, want in zip(ct["chunks"], wire["table_chunks"]):
        at = ch["offset"]
        enc = pb_message([(1, "int", at), (2, "bytes", data[at:at + step]),
                          (3, "repeated bytes", [hx(x) for x in ch["path"]])])
        c.eq(f"wire: TableChunk at {at}", (len(enc), hashlib.sha256(enc).hexdigest(), enc[:len(want["head"]) // 2]),
             (want["length"], want["sha256"], hx(want["head"])))

    delta = sorted(doc["lifecycle"]["update"]["delta"], key=lambda d: d["slot"])
    enc = pb_message([(1, "bytes", b"".join(d["slot"].to_bytes(4, "big") for d in delta)),
                      (2, "bytes", b"".join(hx(d["after"]) for d in delta))])
    c.eq("wire: DeltaChunk", [enc], [hx(m["encoding"]) for m in wire["delta_chunks"]])

    sub_id = hashlib.sha256(b"blindmatch-v1 test vectors: submission id").digest()[:16]
    v1_id = hx(doc["table"]["table_id"])
    requests = [
        b"",
        pb_message([(1, "bytes", hx(ct["table_id"])), (2, "int", step)]),
        pb_message([(1, "bytes", v1_id), (2, "bytes", hx(doc["lifecycle"]["update"]["table_id"]))]),
        pb_message([(1, "bytes", v1_id), (2, "repeated bytes", [hx(x["voucher"]) for x in doc["cases"][:3]]),
                    (3, "bytes", sub_id)]),
        pb_message([(1, "bytes", hx(v2["table_id"])), (2, "repeated bytes", [hx(o["voucher"]) for o in v2["outer"][:2]]),
                    (3, "bytes", sub_id), (4, "bytes", hx(v2["account"]["account_id"]))]),
        pb_message([(1, "int", 3)]),
    ]
    c.eq("wire: request count", len(wire["requests"]), len(requests))
    for enc, want in zip(requests, wire["requests"]):
        c.eq(f"wire: {want['what']}", enc, hx(want["encoding"]))


def ed_small_order(pt):
    return ed_encode(mul(8, pt)) == ed_encode((0, 1, 1, 0))


def classify_voucher(alpha, table, slot_entry, entries, v):  # SPEC 7 step 1, then 7
    k = table[0]
    if len(v) != 33 + 80 * k + 1108:
        return "length"
    if v[0] != 1:
        return "unsupported_version"
    if v[1:33] == bytes(32):
        return "identity_point"
    if decode(v[1:33]) is None:
        return "invalid_point"
    status, _ = open_voucher(alpha, table, slot_entry, entries, v)
    return {"no match": "no_match"}.get(status, status)


def classify_key_file(b):  # SPEC 4
    if len(b) != 69:
        return "length"
    if b[:4] != b"BMSK":
        return "bad_magic"
    if b[4] != 1:
        return "unsupported_version"
    alpha = int.from_bytes(b[5:37], "little")
    if alpha >= L_ORDER:
        return "invalid_scalar"
    if alpha == 0:
        return "zero_scalar"
    if encode(mul(alpha, G)) != b[37:69]:
        return "key_mismatch"
    return "ok"


def classify_signature(key, statement, sig):  # SPEC 13.3, the strict rules
    a_pt = ed_decode(key)  # refuses y >= p (a non-canonical encoding)
    if a_pt is None or ed_small_order(a_pt):
        return "invalid_operator_key"
    r_pt = ed_decode(sig[:32])
    if r_pt is None or ed_small_order(r_pt) or int.from_bytes(sig[32:], "little") >= L_ORDER:
        return "bad_signature"
    return "ok" if ed_verify(key, b"blindmatch-v1/manifest" + statement, sig) else "bad_signature"


def signature_rule(key, statement, sig):
    """Which rule of SPEC 13.3 a (key, signature) breaks first, finer than the result word."""
    a_pt = ed_decode(key)
    if a_pt is None:
        return "key_not_canonical"
    if ed_small_order(a_pt):
        return "key_small_order"
    if int.from_bytes(sig[32:], "little") >= L_ORDER:
        return "s_not_canonical"
    r_pt = ed_decode(sig[:32])
    if r_pt is None:
        return "r_does_not_decode"
    if ed_small_order(r_pt):
        return "r_small_order"
    return "ok" if ed_verify(key, b"blindmatch-v1/manifest" + statement, sig) else "equation"


# SPEC 10: the rule each manifest_signature case breaks, by its `what`.
SIGNATURE_RULES = {
    "the valid signature": "ok",
    "S + l (S not canonical)": "s_not_canonical",
    "R of small order (the identity)": "r_small_order",
    "a bit of R flipped": "r_does_not_decode",
    "a bit of S flipped": "equation",
    "key of small order (the identity)": "key_small_order",
    "key not a canonical encoding": "key_not_canonical",
}


def forge(table, gamma, payload_key, type_name, value, ad):  # SPEC 8: Q = gamma*G, every box opens
    k, _, _, l_pt, _, table_id = table
    q_enc = encode(mul(gamma, G))
    s_enc = encode(mul(gamma, l_pt))
    boxes = b""
    for j in range(k):
        _, wrap_key, confirm = key_schedule(s_enc, table_id, q_enc, j)
        boxes += confirm + gcm_seal(wrap_key, ZERO_NONCE, b"", payload_key)
    prefix = b"\x01" + q_enc + boxes
    return prefix + gcm_seal(payload_key, ZERO_NONCE, table_id + prefix, make_payload(type_name, value, ad))


def check_extra(c, doc):
    """SPEC 12.3's submission digest, SPEC 7's entry fingerprints, and the negative vectors."""
    sk, t = doc["server_key"], doc["table"]
    alpha = int.from_bytes(hx(sk["alpha"]), "little")
    table_id = hx(t["table_id"])
    vouchers = [hx(case["voucher"]) for case in doc["cases"]]
    digest = hashlib.sha256(b"blindmatch-v1/submission-digest" + table_id + len(vouchers).to_bytes(4, "big")
                            + b"".join(v[1:33] for v in vouchers)).digest()
    c.eq("submission digest", digest, hx(doc["submission_digest"]["digest"]))
    fk = hkdf_extract(b"blindmatch-v1/entry-fingerprint", hx(sk["alpha"]))
    for en, fp in zip(t["entries"], doc["entry_fingerprints"]):
        c.eq(f"entry {en['entry']} fingerprint", hkdf_expand(fk, item_encoding(en["type"], hx(en["value"])), 16), hx(fp))
    c.eq("one fingerprint per entry", len(doc["entry_fingerprints"]), len(t["entries"]))
    l_pt = mul(alpha, G)
    table = (t["k"], hx(t["seed"]), t["n_slots"], l_pt, [hx(x) for x in t["slots"]], table_id)
    slot_entry = {en["slot"]: en["entry"] for en in t["entries"]}
    entries = [(en["type"], hx(en["value"])) for en in t["entries"]]
    op = doc["negative_operator"]
    seed = hx(op["signing_key_seed"])
    c.eq("negative operator: verifying key", ed_public_key(seed), hx(op["verifying_key"]))
    c.eq("negative operator: digest", table_digest([hx(x) for x in t["slots"]], 2048), hx(op["digest"]))
    statement = (b"BMMF\x01" + op["version"].to_bytes(8, "big") + op["created"].to_bytes(8, "big") + table_id
                 + hx(op["digest"]) + (2048).to_bytes(4, "big") + hx(t["header"]))
    for n in doc["negative"]:
        if n["kind"] == "voucher":
            got = classify_voucher(alpha, table, slot_entry, entries, hx(n["input"]))
            # SPEC 10: a forgery carries `forged`, whose inputs rebuild its bytes. A case
            # whose result is `forged` without the field is a failed check, not a skipped one.
            if n["result"] == "forged" or "forged" in n:
                f = n.get("forged")
                if f is None:
                    c.eq(f"negative: {n['what']}: the `forged` field", "missing", "present")
                else:
                    c.eq(f"negative: {n['what']}: bytes",
                         forge(table, int.from_bytes(hx(f["gamma"]), "little"), hx(f["payload_key"]), f["type"],
                               hx(f["value"]), hx(f["associated_data"])), hx(n["input"]))
        elif n["kind"] == "key_file":
            got = classify_key_file(hx(n["input"]))
        else:
            got = classify_signature(hx(n["verifying_key"]), hx(n["statement"]), hx(n["signature"]))
            c.eq(f"negative: {n['what']}: statement", hx(n["statement"]), statement)
            c.eq(f"negative: {n['what']}: rule broken",
                 signature_rule(hx(n["verifying_key"]), hx(n["statement"]), hx(n["signature"])),
                 SIGNATURE_RULES[n["what"]])
            if n["what"] == "the valid signature":
                c.eq("negative: the valid signature is the seed's",
                     ed_sign(seed, b"blindmatch-v1/manifest" + statement), hx(n["signature"]))
        c.eq(f"negative: {n['what']}", got, n["result"])


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    root = os.path.dirname(os.path.dirname(here))
    path = sys.argv[1] if len(sys.argv) > 1 else os.path.join(root, "protocol", "vectors", "blindmatch-v1.json")
    c = Checker()
    check_primitives(c, os.path.join(root, "protocol", "tests", "data"))
    with open(path) as f:
        doc = json.load(f)
    check_vectors(c, doc)
    check_lifecycle(c, doc)
    check_chunked(c, doc)
    check_extra(c, doc)
    vectors = os.path.join(root, "protocol", "vectors")
    with open(os.path.join(vectors, "blindmatch-v2-threshold.json")) as f:
        v2 = json.load(f)
    with open(os.path.join(vectors, "blindmatch-wire.json")) as f:
        check_wire(c, doc, v2, json.load(f))
    print(f"interop: {c.passed} passed, {c.failed} failed")
    return 0 if c.failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
