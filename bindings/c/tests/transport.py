"""The C example's transport in bindings/c/test.sh: the app's own
networking, here gRPC-Web over HTTP/1.1 (the server's --grpc-web-origin)
with the Python standard library alone, so the C test needs neither a gRPC
stack nor protoc. Its protobuf is the few fields these calls use.

    transport.py fetch URL DIR    GetManifest, then DownloadTable: writes
                                  DIR/statement, DIR/signature, DIR/table
    transport.py submit URL       one SubmitRequest from check's output on
                                  stdin; prints "accepted N"
"""

import pathlib
import struct
import sys
import urllib.error
import urllib.request

ORIGIN = "http://app.example"  # the origin test.sh gives the server


def varint(data, i):
    shift = value = 0
    while True:
        byte = data[i]
        i += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return value, i


def decode(message):
    """{field number: [values]} (bytes for length-delimited, int for varints)."""
    out, i = {}, 0
    while i < len(message):
        key, i = varint(message, i)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, i = varint(message, i)
        elif wire == 2:
            n, i = varint(message, i)
            value, i = message[i : i + n], i + n
        else:
            raise ValueError(f"field {number}: wire type {wire} is not used here")
        out.setdefault(number, []).append(value)
    return out


def encode_varint(n):
    out = bytearray()
    while True:
        out.append((n & 0x7F) | (0x80 if n > 0x7F else 0))
        n >>= 7
        if not n:
            return bytes(out)


def encode(fields):
    """[(field number, bytes or int)] as a message."""
    out = bytearray()
    for number, value in fields:
        if isinstance(value, int):
            out += encode_varint(number << 3) + encode_varint(value)
        else:
            out += encode_varint(number << 3 | 2) + encode_varint(len(value)) + value
    return bytes(out)


def call(url, method, request):
    """The response messages of one gRPC-Web call; raises on a status."""
    body = b"\x00" + struct.pack(">I", len(request)) + request
    http = urllib.request.Request(
        f"{url}/blindmatch.v1.{method}",
        data=body,
        headers={"content-type": "application/grpc-web+proto", "x-grpc-web": "1", "origin": ORIGIN},
    )
    with urllib.request.urlopen(http, timeout=60) as response:
        data = response.read()
        status = response.headers.get("grpc-status")
    messages, i = [], 0
    while i < len(data):
        flags, n = data[i], struct.unpack(">I", data[i + 1 : i + 5])[0]
        frame, i = data[i + 5 : i + 5 + n], i + 5 + n
        if flags & 0x80:  # trailers
            for line in frame.decode().split("\r\n"):
                if line.lower().startswith("grpc-status:"):
                    status = line.split(":", 1)[1].strip()
        else:
            messages.append(frame)
    if status != "0":
        raise SystemExit(f"transport: {method}: grpc-status {status}")
    return messages


def fetch(url, directory):
    directory = pathlib.Path(directory)
    (manifest,) = call(url, "TableService/GetManifest", b"")
    m = decode(manifest)
    (directory / "statement").write_bytes(m[14][0])
    (directory / "signature").write_bytes(m[15][0])
    table = bytearray(m[7][0])  # the header, then the slots
    for chunk in call(url, "TableService/DownloadTable", encode([(1, m[2][0]), (2, 0)])):
        table += decode(chunk).get(2, [b""])[0]
    (directory / "table").write_bytes(bytes(table))


def submit(url, lines):
    fields = {"table_id": 1, "voucher": 2, "submission_id": 3, "account_id": 4}
    request = []
    for line in lines:
        name, value = line.split()
        request.append((fields[name], bytes.fromhex(value)))
    (response,) = call(url, "VoucherService/Submit", encode(request))
    print(f"accepted {decode(response).get(1, [0])[0]}")


if __name__ == "__main__":
    if sys.argv[1] == "fetch":
        fetch(sys.argv[2], sys.argv[3])
    else:
        submit(sys.argv[2], sys.stdin.read().splitlines())
