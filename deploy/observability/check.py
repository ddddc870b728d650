#!/usr/bin/env python3
"""Checks grafana-dashboard.json and prometheus-alerts.yaml against what a
running server exports (deploy/observability/test.sh scrapes one): both
parse; every metric a query names is one the scrape declares (a counter's
samples end in _total, a histogram's in _bucket, _sum and _count; `up` is
Prometheus's own); every metric the server exports is on the dashboard;
every `kind` a query selects is a kind the server's code counts; every
rule has a severity, a summary and a description; every panel but a row
queries the dashboard's data source variable; no two panels share an id or
overlap on the 24-column grid.

    check.py SCRAPE SERVER_SRC_DIR

Prints one line per problem and exits 1 if there is any."""

import json
import pathlib
import re
import sys

import yaml

here = pathlib.Path(__file__).resolve().parent
scrape = pathlib.Path(sys.argv[1]).read_text()
sources = "\n".join(p.read_text() for p in pathlib.Path(sys.argv[2]).rglob("*.rs"))
problems = []

# What the server exports, from the scrape's TYPE lines (a family appears
# there before its first sample).
families = dict(re.findall(r"^# TYPE (\S+) (\S+)$", scrape, re.M))
if not families:
    problems.append("the scrape declares no metric (not Prometheus text?)")
suffixes = {"counter": ["_total"], "histogram": ["_bucket", "_sum", "_count"]}
exported = {}
for name, kind in families.items():
    for s in suffixes.get(kind, [""]):
        exported[name + s] = name

dashboard = json.loads((here / "grafana-dashboard.json").read_text())
rules = yaml.safe_load((here / "prometheus-alerts.yaml").read_text())

queries = []  # (where, expr)
for p in dashboard["panels"]:
    where = f'dashboard panel {p["id"]} "{p["title"]}"'
    if p["type"] == "row":
        # A row only heads the panels below it: no query, no data source.
        continue
    if p.get("datasource", {}).get("uid") != "${datasource}":
        problems.append(f"{where}: not on the ${{datasource}} variable")
    if not p.get("targets"):
        problems.append(f"{where}: no query")
    for t in p.get("targets", []):
        queries.append((where, t["expr"]))
for v in dashboard["templating"]["list"]:
    if v["type"] == "query":
        queries.append((f'dashboard variable {v["name"]}', v["definition"]))
ids = [p["id"] for p in dashboard["panels"]]
if len(ids) != len(set(ids)):
    problems.append("dashboard: two panels share an id")
cells = {}  # (x, y) -> the panel there
for p in dashboard["panels"]:
    g = p["gridPos"]
    if g["x"] < 0 or g["w"] < 1 or g["x"] + g["w"] > 24:
        problems.append(f'dashboard panel {p["id"]}: gridPos x {g["x"]} w {g["w"]} is not within the 24 columns')
    for x in range(g["x"], g["x"] + g["w"]):
        for y in range(g["y"], g["y"] + g["h"]):
            if (x, y) in cells:
                problems.append(f'dashboard panel {p["id"]} overlaps panel {cells[x, y]} at x {x} y {y}')
                break
            cells[x, y] = p["id"]
        else:
            continue
        break

alerts = 0
for group in rules["groups"]:
    for rule in group["rules"]:
        where = f'alert {rule.get("alert", "?")}'
        alerts += 1
        if not rule.get("labels", {}).get("severity"):
            problems.append(f"{where}: no severity label")
        for a in ("summary", "description"):
            if not rule.get("annotations", {}).get(a):
                problems.append(f"{where}: no {a}")
        queries.append((where, rule["expr"]))

used = set()
for where, expr in queries:
    for name in re.findall(r"\b(blindmatch_[a-z0-9_]+)\b", expr):
        if name not in exported:
            problems.append(f"{where}: {name} is not a metric the server exports")
        else:
            used.add(exported[name])
    for name in re.findall(r"\b([a-z_]+)\{", expr):
        if not name.startswith("blindmatch_") and name != "up":
            problems.append(f"{where}: {name} is neither the server's nor Prometheus's up")
    for values in re.findall(r'\bkind=~?"([^"]+)"', expr):
        for kind in values.split("|"):
            if f'"{kind}"' not in sources:
                problems.append(f'{where}: kind "{kind}" is not one the server counts (server/src)')

on_dashboard = {exported[n] for w, e in queries if w.startswith("dashboard")
                for n in re.findall(r"\b(blindmatch_[a-z0-9_]+)\b", e) if n in exported}
for name in sorted(set(families) - on_dashboard):
    problems.append(f"dashboard: {name}, exported by the server, is on no panel")

for p in problems:
    print(p)
print(f"observability: {len(dashboard['panels'])} panels, {alerts} alerts, "
      f"{len(used)} of the server's {len(families)} metrics queried: {len(problems)} problem(s)")
sys.exit(1 if problems else 0)
