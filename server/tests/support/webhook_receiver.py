#!/usr/bin/env python3
"""A webhook receiver for the tests (server/tests/feed.rs), standard library only.

It checks each request as the Standard Webhooks specification says a receiver
must (standardwebhooks.com, "Verifying signatures"), with HMAC code of its own,
not the server's: the secret is `whsec_` and base64 in SECRET_FILE, the signed
content `webhook-id.webhook-timestamp.body`, the signature `v1,` and the base64
HMAC-SHA256 of it, one of the space-separated entries of `webhook-signature`,
compared in constant time, and the timestamp within five minutes of now.

A verified delivery is appended to OUT_FILE as one JSON line, `{"id": ...,
"body": ...}` (the body as received, text), flushed and synced before the 204
answer: a delivery answered 2xx is on disk. A request that fails the check is
answered 401 and appended to OUT_FILE.bad with the reason.

    webhook_receiver.py PORT SECRET_FILE OUT_FILE

Prints `listening PORT` once it accepts connections.
"""

import base64
import hashlib
import hmac
import json
import os
import sys
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

TOLERANCE = 300


def read_key(path):
    text = open(path).read().strip()
    if not text.startswith("whsec_"):
        sys.exit(f"{path}: not a whsec_ secret")
    return base64.b64decode(text[len("whsec_"):], validate=True)


def verify(key, headers, body):
    """None if the request is signed with `key`, else why not."""
    msg_id = headers.get("webhook-id")
    stamp = headers.get("webhook-timestamp")
    signatures = headers.get("webhook-signature")
    if not (msg_id and stamp and signatures):
        return "missing webhook-id, webhook-timestamp or webhook-signature"
    try:
        sent = int(stamp)
    except ValueError:
        return f"timestamp {stamp!r} is not a number"
    if abs(time.time() - sent) > TOLERANCE:
        return f"timestamp {sent} is more than {TOLERANCE} s from now"
    signed = msg_id.encode() + b"." + stamp.encode() + b"." + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    for entry in signatures.split(" "):
        version, _, value = entry.partition(",")
        if version == "v1" and hmac.compare_digest(value, expected):
            return None
    return "no v1 signature matches"


def append(path, line):
    with open(path, "a") as f:
        f.write(line + "\n")
        f.flush()
        os.fsync(f.fileno())


def main():
    port, key, out = int(sys.argv[1]), read_key(sys.argv[2]), sys.argv[3]

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            why = verify(key, self.headers, body)
            if why is None:
                append(out, json.dumps({"id": self.headers["webhook-id"], "body": body.decode()}))
                self.send_response(204)
            else:
                append(out + ".bad", why)
                self.send_response(401)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", port), Handler)
    print(f"listening {server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
