#!/usr/bin/env python3
"""Times OpenMined PSI (`openmined.psi` from PyPI: C++ core on P-256) on the two operations
that correspond to blindmatch's server work, single-threaded, and prints JSON:

- server setup per item (`CreateSetupMessage` over N server items: one hash to the curve and
  one scalar multiplication each), against blindmatch's table build per entry;
- server request processing per item (`ProcessRequest` over M client items: one scalar
  multiplication each), against blindmatch's voucher match.

Run by `benches/peers/run.sh`, which makes the virtual environment.
Usage: openmined_psi.py [N_SERVER] [N_CLIENT]
"""

import hashlib
import json
import platform
import sys
import time

import private_set_intersection.python as psi


def items(n, salt):
    return [hashlib.sha256(f"{salt} {i}".encode()).hexdigest() for i in range(n)]


def best_of(rounds, f):
    times = []
    for _ in range(rounds):
        t = time.perf_counter()
        f()
        times.append(time.perf_counter() - t)
    times.sort()
    return times[len(times) // 2]


def main():
    n_server = int(sys.argv[1]) if len(sys.argv) > 1 else 20000
    n_client = int(sys.argv[2]) if len(sys.argv) > 2 else 5000
    server_items = items(n_server, "server")
    client_items = items(n_client, "client")[: n_client - 10] + server_items[:10]
    s = psi.server.CreateWithNewKey(True)
    c = psi.client.CreateWithNewKey(True)
    fpr = 1e-9
    setup_s = best_of(3, lambda: s.CreateSetupMessage(fpr, n_client, server_items, psi.DataStructure.RAW))
    request = c.CreateRequest(client_items)
    process_s = best_of(3, lambda: s.ProcessRequest(request))
    # Check it really intersects, so we time a working protocol.
    setup = s.CreateSetupMessage(fpr, n_client, server_items, psi.DataStructure.RAW)
    found = len(c.GetIntersection(setup, s.ProcessRequest(request)))
    print(json.dumps({
        "peer": "openmined.psi",
        "version": getattr(psi, "__version__", "unknown"),
        "python": platform.python_version(),
        "curve": "P-256",
        "threads": 1,
        "server_items": n_server,
        "client_items": n_client,
        "intersection_found": found,
        "setup_us_per_item": round(setup_s * 1e6 / n_server, 2),
        "process_us_per_item": round(process_s * 1e6 / n_client, 2),
    }))


if __name__ == "__main__":
    main()
