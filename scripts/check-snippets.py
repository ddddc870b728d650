#!/usr/bin/env python3
"""README snippets work as written: every fenced block that follows a
`<!-- snippet: PATH -->` line must appear, line for line, in PATH, a file
that the tests compile and run; and every name the binding sections use
exists in a binding (below). Exits 1 naming each that does not."""

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

# Names: every method, function, field or member the README's binding
# sections name in inline code (`Table.accountSubmission(account, uploads)`,
# `Upload(voucher_id=...)`, `manifest.synthetic_bound`) is declared by a
# binding, per the reference pages generated from the code. A snake_case
# name must be Python's, C's or the protocol's; a camelCase one Kotlin's,
# Swift's, JavaScript's or the protocol's.
REFERENCES = {
    "snake": ["bindings/python/REFERENCE.md", "bindings/c/REFERENCE.md", "proto/proto/blindmatch/v1/blindmatch.proto"],
    "camel": ["bindings/kotlin/REFERENCE.md", "bindings/swift/REFERENCE.md", "bindings/js/REFERENCE.md",
              "proto/proto/blindmatch/v1/blindmatch.proto"],
}
SECTIONS = ["### Threshold mode", "## The client in other languages (bindings)"]


def declarations(path):
    """The words a reference page (or the .proto) writes as code: fenced
    blocks, inline code, headings, bold and declaration lines (Dokka's
    `fun ...`), not its prose."""
    text = (root / path).read_text()
    if path.endswith(".proto"):
        return set(re.findall(r"\w+", re.sub(r"//[^\n]*", "", text)))
    code = re.findall(r"```.*?```", text, flags=re.S)
    text = re.sub(r"```.*?```", "", text, flags=re.S)
    code += re.findall(r"`([^`\n]+)`", text)
    code += re.findall(r"^#+ .*$", text, flags=re.M)
    code += re.findall(r"\*\*([^*\n]+)\*\*", text)
    code += re.findall(r"^(?:fun|val|var|constructor|class|data class|sealed class|enum class|object|interface|open class)\b.*$",
                       text, flags=re.M)
    return set(re.findall(r"\w+", "\n".join(code)))


declared = {}
for group, paths in REFERENCES.items():
    declared[group] = set()
    for path in paths:
        if not (root / path).exists():
            print(f"names: {path} is missing", file=sys.stderr)
            sys.exit(1)
        declared[group] |= declarations(path)
# Commands, paths and file extensions are not names; nor is the web
# platform's own API.
shell = re.compile(r"^(\$|cargo |pip |npm |mvn |cd |python|node |bash |blindmatch|\.)|/|^[\w.-]+\.(kt|mjs|js|py|c|h|swift|md|ts)$")
PLATFORM = {"getRandomValues"}
checked = 0
missing = []
for heading in SECTIONS:
    start = readme.index(heading + "\n")
    level = heading.split()[0]
    end = readme.find("\n" + level + " ", start + len(heading))
    end = len(readme) if end < 0 else end
    # Inline code only: fenced blocks are the snippets above.
    prose = re.sub(r"```.*?```", "", readme[start:end], flags=re.S)
    for span in re.findall(r"`([^`\n]+)`", prose):
        if shell.search(span):
            continue
        names = re.findall(r"(\w+)\(", span) + re.findall(r"\.([A-Za-z_]\w*)", span) + re.findall(r"(\w+)=", span)
        for name in names:
            if name.isupper() or name.isdigit() or name in PLATFORM:
                continue
            groups = ["snake"] if "_" in name else ["camel"] if re.search(r"[a-z][A-Z]", name) else ["snake", "camel"]
            checked += 1
            if not any(name in declared[g] for g in groups):
                line = readme[: readme.index(span)].count("\n") + 1
                missing.append(f"README.md:{line}: `{span}`: no binding declares {name}")
for m in missing:
    print(m, file=sys.stderr)
print(f"names: {checked} names in the binding sections checked, {len(missing)} undeclared")
sys.exit(1 if bad or missing else 0)
