"""Checks Examples/Check.swift against the Swift the package generates, as
far as that is possible without a Swift compiler (none exists where this
project is built): every method called on a value (`history.check(...)`)
must be one the package declares, one called on a type of the package
(`Manifest.verify(...)`) one that type declares, and every call of a
declared name must use the argument labels of one of its declarations (a
method, an initializer, a record's memberwise initializer or a top-level
function). Calls on the app's own `transport` are the app's.

    python3 check-example.py    exit 1 naming each call that does not fit

It catches a renamed method or label after the interface changes; it does
not type-check.
"""

import pathlib
import re
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import reference  # noqa: E402  (the declarations, parsed once, there)

EXAMPLE = reference.HERE / "Examples" / "Check.swift"


def labels_of(params):
    """The argument labels of a parameter or argument list ("_" for none)."""
    out, depth, part = [], 0, ""
    for ch in params + ",":
        if ch in "([<":
            depth += 1
        elif ch in ")]>":
            depth -= 1
        if ch == "," and depth == 0:
            if part.strip():
                m = re.match(r"\s*`?(\w+)`?\s*(\w+\s*)?:", part)
                out.append(m.group(1) if m and not part.strip().startswith("let ") else "_")
            part = ""
        else:
            part += ch
    return tuple(out)


APPS = {"transport"}  # receivers whose methods are the example's own


def declared():
    """({name: {labels, ...}}, {type: {member names}}) of what the package
    declares."""
    types, functions = reference.parse()
    known, members = {}, {}
    for t in types:
        names = set()
        for d, _ in t["members"]:
            m = re.match(r"(?:static )?(?:func `?(\w+)|(init)|case (\w+)|var (\w+))", d)
            names |= {n for n in m.groups() if n}
        members[t["name"]] = names
        for decl, _ in t["members"]:
            if t["kind"] == "enum":
                continue
            if t["kind"] == "struct":  # fields: the memberwise initializer
                known.setdefault(t["name"], set())
                continue
            m = re.match(r"(?:static )?(?:func `?(\w+)`?|(init))\((.*?)\)(?: throws)?(?: ->.*)?$", decl)
            name = m.group(1) or t["name"]
            known.setdefault(name, set()).add(labels_of(m.group(3)))
        if t["kind"] == "struct":
            fields = tuple(re.match(r"var (\w+)", d).group(1) for d, _ in t["members"])
            known.setdefault(t["name"], set()).add(fields)
    for decl, _ in functions:
        m = re.match(r"func (\w+)\((.*?)\)", decl)
        known.setdefault(m.group(1), set()).add(labels_of(m.group(2)))
    return known, members


def calls(source):
    """(line, receiver or None, name, labels) of every call in `source`,
    declarations aside."""
    for number, line in enumerate(source.splitlines(), 1):
        code = line.split("//")[0]
        for m in re.finditer(r"(?<![\w.]func )(?<!case )(?:\b(\w+)\s*\.\s*)?\b(\w+)\(", code):
            if re.search(r"\b(func|init)\s*$", code[: m.start()]) or code[: m.start()].rstrip().endswith("BlindmatchError."):
                continue
            depth, i = 1, m.end()
            while i < len(code) and depth:
                depth += {"(": 1, ")": -1}.get(code[i], 0)
                i += 1
            if depth:  # the call goes on over the next lines
                rest = source.splitlines()[number:]
                args = code[m.end():] + " " + " ".join(rest)
                depth, j = 1, 0
                while depth and j < len(args):
                    depth += {"(": 1, ")": -1}.get(args[j], 0)
                    j += 1
                args = args[: j - 1]
            else:
                args = code[m.end(): i - 1]
            yield number, m.group(1), m.group(2), labels_of(args)


def main():
    known, members = declared()
    source = EXAMPLE.read_text()
    bad = []
    used = 0
    for number, receiver, name, labels in calls(source):
        where = f"Examples/Check.swift:{number}"
        if receiver in members:
            if name not in members[receiver]:
                bad.append(f"{where}: {receiver}.{name} is not declared by {receiver}")
                continue
        elif receiver and receiver[0].islower() and receiver not in APPS and name not in known:
            bad.append(f"{where}: {receiver}.{name}(...): the package declares no method {name}")
            continue
        if name in known:
            used += 1
            if labels not in known[name]:
                want = " or ".join("(" + ":".join(l) + ":)" for l in sorted(known[name]))
                bad.append(f"{where}: {name}({':'.join(labels)}:) is not declared; it takes {want}")
    for line in bad:
        print(line, file=sys.stderr)
    if bad:
        sys.exit(1)
    print(f"swift: Examples/Check.swift: {used} calls into the package, each as declared")


if __name__ == "__main__":
    main()
