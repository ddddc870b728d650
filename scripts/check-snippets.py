#!/usr/bin/env python3
"""README snippets work as written: every fenced block that follows a
`<!-- snippet: PATH -->` line must appear, line for line, in PATH, a file
that the tests compile and run. Exits 1 naming each snippet that does not."""

import pathlib
import re
import sys

root = pathlib.Path(__file__).resolve().parents[1]
readme = (root / "README.md").read_text()
pattern = re.compile(r"<!-- snippet: (\S+) -->\n```\w*\n(.*?)```", re.S)
bad = 0
found = 0
for m in pattern.finditer(readme):
    found += 1
    path, block = m.group(1), m.group(2)
    text = (root / path).read_text()
    if block not in text:
        line = readme[: m.start()].count("\n") + 1
        print(f"README.md:{line}: snippet is not in {path} as written", file=sys.stderr)
        bad += 1
if found == 0:
    print("README.md: no snippets found (marker format changed?)", file=sys.stderr)
    sys.exit(1)
print(f"snippets: {found} checked, {bad} differ")
sys.exit(1 if bad else 0)
