#!/usr/bin/env python3
"""Checks manifests `helm template` rendered from deploy/helm/blindmatch
(deploy/helm/test.sh): every `--flag` and every BLINDMATCH_* variable given
to a container of the server's image is one its subcommand's `--help` lists
(the real binary's), the probes ask /ready and /live on the port the admin
listener is given, every container runs as uid 65532 on a read-only root,
the memory follows README's sizing rule for the flags rendered, and the
replicas are at least two under a PodDisruptionBudget.

    check-rendered.py BLINDMATCH_SERVER IMAGE LOADED_MIB < rendered.yaml

Prints one line per problem and exits 1 if there is any."""

import math
import re
import subprocess
import sys

import yaml

binary, image, loaded_mib = sys.argv[1], sys.argv[2], int(sys.argv[3])
docs = [d for d in yaml.safe_load_all(sys.stdin) if d]
problems = []
helps = {}


def known(subcommand):
    """The long flags and environment variables `SUBCOMMAND --help` lists."""
    if subcommand not in helps:
        out = subprocess.run([binary, subcommand, "--help"], capture_output=True, text=True)
        if out.returncode != 0:
            problems.append(f"{binary} {subcommand} --help failed: {out.stderr.strip()}")
        text = out.stdout
        flags = set(re.findall(r"^\s+(?:-\w, )?(--[a-z0-9-]+)", text, re.M))
        env = set(re.findall(r"\[env: (BLINDMATCH_[A-Z0-9_]+)=", text))
        helps[subcommand] = (flags, env)
    return helps[subcommand]


def mib(quantity):
    units = {"Mi": 1, "Gi": 1024, "M": 1e6 / 2**20, "G": 1e9 / 2**20}
    m = re.fullmatch(r"(\d+)(Mi|Gi|M|G)", str(quantity))
    if not m:
        problems.append(f"memory {quantity!r}: not in Mi, Gi, M or G")
        return 0
    return int(m.group(1)) * units[m.group(2)]


def pods():
    for d in docs:
        if d["kind"] in ("Deployment", "Job"):
            yield d, d["spec"]["template"]["spec"]


servers = 0
for doc, spec in pods():
    where = f'{doc["kind"]} {doc["metadata"]["name"]}'
    pod_user = spec.get("securityContext", {}).get("runAsUser")
    for c in spec.get("initContainers", []) + spec["containers"]:
        at = f'{where}, container {c["name"]}'
        sc = c.get("securityContext", {})
        if sc.get("runAsUser", pod_user) != 65532 or sc.get("readOnlyRootFilesystem") is not True:
            problems.append(f"{at}: not uid 65532 on a read-only root")
        if not c["image"].startswith(image + ":"):
            continue
        args = c.get("args", [])
        if not args or args[0].startswith("-"):
            problems.append(f"{at}: no subcommand in args {args}")
            continue
        flags, env = known(args[0])
        given = {a.split("=", 1)[0]: a.split("=", 1)[1] if "=" in a else None for a in args[1:]}
        for flag in given:
            if flag not in flags:
                problems.append(f"{at}: {flag} is not a flag of `{args[0]}` ({args[0]} --help)")
        for e in c.get("env", []):
            if e["name"].startswith("BLINDMATCH_") and e["name"] not in env:
                problems.append(f'{at}: {e["name"]} is not a variable of `{args[0]}`')
        if args[0] != "serve":
            continue
        servers += 1
        admin = given.get("--admin-listen", "")
        ports = {p["name"]: p["containerPort"] for p in c.get("ports", [])}
        for probe, path in (("readinessProbe", "/ready"), ("livenessProbe", "/live")):
            get = c.get(probe, {}).get("httpGet", {})
            port = ports.get(get.get("port"), get.get("port"))
            if get.get("path") != path or not admin.endswith(f":{port}"):
                problems.append(f"{at}: {probe} asks {get} (port {port}), not {path} on --admin-listen {admin}")
        # README, "Overload": loaded + budget + connections x 0.3 MiB.
        need = loaded_mib + int(given["--max-inflight-mib"]) + math.ceil(0.3 * int(given["--max-connections"]))
        res = c.get("resources", {})
        for kind in ("requests", "limits"):
            got = mib(res.get(kind, {}).get("memory", "0Mi"))
            if got < need:
                problems.append(f"{at}: memory {kind} {got:.0f} MiB is below the sizing rule's {need} MiB")
        if doc["spec"].get("replicas", 1) < 2:
            problems.append(f"{at}: fewer than 2 replicas")
        labels = doc["spec"]["selector"]["matchLabels"]
        if not any(d["kind"] == "PodDisruptionBudget" and d["spec"]["selector"]["matchLabels"] == labels for d in docs):
            problems.append(f"{at}: no PodDisruptionBudget selects its pods")

if servers == 0:
    problems.append("no container runs `serve`")
for p in problems:
    print(p)
print(f"helm: {len(docs)} manifests, {servers} server(s), {sum(len(f) for f, _ in helps.values())} flags known: {len(problems)} problem(s)")
sys.exit(1 if problems else 0)
