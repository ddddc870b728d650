"""Writes bindings/swift/REFERENCE.md, the Swift package's reference, from
the Swift source uniffi generates (Sources/Blindmatch/Blindmatch.swift):
every public class, record, enum and function with the documentation
uniffi carries over from the Rust interface.

    python3 reference.py           rewrite REFERENCE.md
    python3 reference.py --check   fail if REFERENCE.md is not what the
                                   source gives (bindings/generate.sh --check)

By hand because Swift's own tool (DocC) needs a Swift toolchain, which the
machines this project is built on do not have.
"""

import pathlib
import re
import sys

HERE = pathlib.Path(__file__).resolve().parent
SOURCE = HERE / "Sources" / "Blindmatch" / "Blindmatch.swift"
OUT = HERE / "REFERENCE.md"

INTERNAL = re.compile(r"FfiConverter|uniffi|NoHandle|RustBuffer|^lift|^lower|^read|^write")


def clean_doc(lines):
    text = "\n".join(re.sub(r"^\s*\*\s?", "", l) for l in lines)
    # rustdoc's intra-doc links, as code.
    return re.sub(r"\[`([^`]+)`\]", r"`\1`", text).strip()


def code(text):
    # A declaration that holds backticks (`open`, `operator`) needs a longer fence.
    return f"`` {text} ``" if "`" in text else f"`{text}`"


def doc_block(lines, i, first):
    """The `/** ... */` comment that starts with `first` (its line's text
    after `/**`), lines[i] being the line after it: (its text, the index
    after it)."""
    block = [first]
    while "*/" not in (block[-1] if len(block) == 1 else lines[i - 1]):
        block.append(lines[i])
        i += 1
    block[-1] = block[-1].replace("*/", "")
    return clean_doc(block), i


def one_line(text):
    return " ".join(text.split())


def signature(decl):
    decl = decl.split("{")[0] if not decl.rstrip().endswith("(") else decl
    decl = re.sub(r"^(open|public)\s+", "", decl.strip())
    decl = re.sub(r"\)\s*throws\s*", ") throws ", decl)
    decl = re.sub(r"\s+->", " ->", decl)
    return " ".join(decl.split()).replace("public convenience init", "init").replace("convenience init", "init")


def parse():
    lines = SOURCE.read_text().splitlines()
    types, functions = [], []
    doc, current, i = None, None, 0
    while i < len(lines):
        line = lines[i]
        s = line.strip()
        i += 1
        if s.startswith("/**"):
            doc, i = doc_block(lines, i, s[3:])
            continue
        if not s or s.startswith(("#", "@_documentation")):
            continue
        if s == "public" and lines[i].startswith("enum "):  # uniffi writes `public` on a line of its own
            s, i = "public " + lines[i].strip(), i + 1
        top = not line.startswith((" ", "\t"))  # uniffi indents what is nested
        m = re.match(r"(open class|public struct|public enum) (\w+)", s) if top else None
        if m and not INTERNAL.search(m.group(2)):
            kind = {"open class": "class", "public struct": "struct", "public enum": "enum"}[m.group(1)]
            current = {"name": m.group(2), "kind": kind, "doc": doc or "", "members": []}
            types.append(current)
            if kind == "enum":
                i = parse_enum(lines, i, current)
                current = None
        elif m or (top and s.startswith(("public protocol", "extension", "fileprivate", "private"))):
            current = None
        elif current is not None and current["kind"] == "struct" and s.startswith("public var "):
            current["members"].append((s.removeprefix("public "), doc or ""))
        elif current is not None and current["kind"] == "struct" and s.startswith("public init("):
            current = None  # the memberwise initializer: its fields are listed
        elif re.match(r"public static func |public convenience init\b|open func ", s) and current is not None:
            name = re.search(r"(?:func `?(\w+)|init)", s).group(1) or "init"
            if not INTERNAL.search(name):
                current["members"].append((signature(s), doc or ""))
        elif s.startswith("public func ") and current is None:
            name = re.match(r"public func (\w+)", s).group(1)
            if not INTERNAL.search(name):
                functions.append((signature(s), doc or ""))
        doc = None
    return types, functions


def parse_enum(lines, i, enum):
    """The cases of an enum (with their fields and docs), up to its end."""
    doc, depth = None, 1
    while depth > 0:
        s = lines[i].strip()
        i += 1
        if s.startswith("/**") and depth == 1:
            doc, i = doc_block(lines, i, s[3:])
            continue
        if depth == 1 and s.startswith("case "):
            case = s
            if case.endswith("("):  # fields, each after its doc comment
                body = []
                while not lines[i].strip().startswith(")"):
                    body.append(lines[i])
                    i += 1
                i += 1
                fields = re.findall(r"\*/\s*(`?\w+`?: [\w.?\[\]]+)", "\n".join(body))
                case = f"{case}{', '.join(fields)})"
            enum["members"].append((case, doc or ""))
            doc = None
            continue
        depth += s.count("{") - s.count("}")
    return i


def render():
    types, functions = parse()
    out = [
        "# blindmatch for Swift: reference\n\n",
        "Generated by `bindings/swift/reference.py` from `Sources/Blindmatch/Blindmatch.swift`,\n",
        "which uniffi generates from the same interface as Python's and Kotlin's (CI checks both\n",
        "are current). **Generated, not compiled**: no Swift toolchain exists where this project is\n",
        "built and tested (`bindings/swift/README.md`). The documentation is the Rust interface's:\n",
        "where it names a method in snake case (`require_quorum`), Swift's is in camel case\n",
        "(`requireQuorum`). The errors: `bindings/ERRORS.md`. The app\n",
        "brings its own gRPC stack (grpc-swift, with stubs generated from\n",
        "`proto/proto/blindmatch/v1/blindmatch.proto`); the flow it drives is\n",
        "`bindings/swift/Examples/Check.swift`.\n\n",
        "## Types\n\n",
    ]
    for t in sorted(types, key=lambda t: t["name"].lower()):
        out.append(f"### `{t['kind']} {t['name']}`\n\n")
        if t["doc"]:
            out.append(t["doc"] + "\n\n")
        for decl, doc in t["members"]:
            out.append(f"- {code(decl)}" + (f": {one_line(doc)}\n" if doc else "\n"))
        out.append("\n")
    out.append("## Functions\n\n")
    for decl, doc in functions:
        out.append(f"- {code(decl)}" + (f": {one_line(doc)}\n" if doc else "\n"))
    return "".join(out).rstrip("\n") + "\n"


if __name__ == "__main__":
    text = render()
    if sys.argv[1:] == ["--check"]:
        if not OUT.exists() or OUT.read_text() != text:
            sys.exit("bindings/swift/REFERENCE.md is not what the Swift source gives: run python3 bindings/swift/reference.py")
        print("swift: REFERENCE.md matches the source")
    else:
        OUT.write_text(text)
