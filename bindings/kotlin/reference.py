"""Writes bindings/kotlin/REFERENCE.md, the Kotlin binding's reference, from
the code's KDoc: Dokka (dokka-maven-plugin with its GFM plugin, configured in
pom.xml) documents the ready client (org.blindmatch.client) and uniffi's
generated Kotlin (org.blindmatch, whose KDoc is the Rust doc comments), one
Markdown file per declaration; this script joins them into one page, in
Dokka's order, with the links between them made links within the page.

    python3 reference.py           run Dokka, rewrite REFERENCE.md
    python3 reference.py --check   run Dokka, fail if REFERENCE.md differs
                                   (test.sh, in CI)

Run it after `mvn package` (or install): Dokka reads uniffi's Kotlin under
target/uniffi/generated, which the build writes. Dokka leaves out what is
marked @suppress (uniffi's converters); everything else public is here. A
declaration of the ready client without a doc comment is an error.
"""

import os
import posixpath
import re
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE / "REFERENCE.md"
DOKKA = HERE / "target" / "dokka"
PACKAGES = ["org.blindmatch.client", "org.blindmatch"]
# Packages whose every declaration must carry a doc comment (ours; uniffi's
# plumbing, such as `Disposable` or `destroy`, has none).
DOCUMENTED = {"org.blindmatch.client"}

PREAMBLE = """\
# blindmatch for Kotlin/JVM: reference

Generated from the code's KDoc by Dokka and `bindings/kotlin/reference.py`;
do not edit (`python3 reference.py` in bindings/kotlin rewrites it after
`mvn package`, and test.sh fails when it is stale). The classes of
`org.blindmatch` are uniffi's Kotlin over the Rust core: their docs are the
core's, shared by every binding (its errors: bindings/ERRORS.md). Examples:
`src/main/kotlin/org/blindmatch/example/` (Quickstart.kt: version 1;
Threshold.kt: an account, its rate from the manifest's synthetic bound;
Refused.kt: what an app does with a refused table).

## Installing

One jar, `org.blindmatch:blindmatch`, with the native library inside (JNA
finds it on the classpath) and gRPC stubs generated from the service's
.proto. `mvn install` in bindings/kotlin puts it in the local Maven
repository; an app depends on it as on any other:

```xml
<dependency>
  <groupId>org.blindmatch</groupId>
  <artifactId>blindmatch</artifactId>
  <version>0.1.0</version>
</dependency>
```

It brings grpc-api, grpc-stub, grpc-protobuf and protobuf-java, and the
gRPC transport grpc-netty-shaded at runtime. The transport is the app's
choice: `Client(url, ...)` makes its channel with `Grpc.newChannelBuilder`,
which takes whichever transport is on the classpath, and `Client(channel,
...)` takes a channel the app built. An Android app leaves Netty out and
uses OkHttp (and an `.so` per ABI, built with cargo-ndk; not built here):

```kotlin
// build.gradle.kts
implementation("org.blindmatch:blindmatch:0.1.0") {
    exclude(group = "io.grpc", module = "grpc-netty-shaded")
}
implementation("io.grpc:grpc-okhttp:1.85.1")

// the app: its own channel, and interceptors that add its metadata
val channel = OkHttpChannelBuilder.forAddress("list.example.org", 443).useTransportSecurity().build()
val client = Client(ClientInterceptors.intercept(channel, authenticate), operatorKey, cacheDir = cacheDir)
```

"""

LINK = re.compile(r"\[([^\]]*)\]\(([^)\s]+)\)")


def run_dokka():
    if not (HERE / "target" / "uniffi" / "generated").is_dir():
        sys.exit("reference.py: target/uniffi/generated is missing: run `mvn package` in bindings/kotlin first")
    mvn = ["mvn", "--batch-mode", "--no-transfer-progress", "-q", "-Dstyle.color=never"]
    if os.environ.get("BLINDMATCH_M2"):
        mvn.append("-Dmaven.repo.local=" + os.environ["BLINDMATCH_M2"])
    shutil.rmtree(DOKKA, ignore_errors=True)  # no page of a declaration gone since
    subprocess.run(mvn + ["dokka:dokka"], cwd=HERE, check=True, stdout=subprocess.DEVNULL)


class Page:
    """One declaration: its heading, its Dokka file and its text."""

    def __init__(self, title, path, body, level, package):
        self.title, self.path, self.body, self.level, self.package = title, path, body, level, package
        self.anchor = None


def read(path):
    return (DOKKA / path).read_text(encoding="utf-8")


def body_of(text):
    """The page less Dokka's breadcrumb, its title and platform markers."""
    lines = text.splitlines()
    out, seen_title = [], False
    for line in lines:
        if line.startswith("//["):
            continue
        if not seen_title and line.startswith("# "):
            seen_title = True
            continue
        if line.strip() in ("[JVM]\\", "[JVM]"):
            continue
        out.append(line.replace("[JVM]<br>", ""))
    return out


def demote(lines):
    """A member page's own headings (Throws, Parameters) as bold lines."""
    return [re.sub(r"^#{1,6} (.*)$", r"**\1**", line) for line in lines]


def sections(lines):
    """(heading, lines) for each `## ` or `#### ` section, and the lines before them."""
    head, parts, current = [], [], None
    for line in lines:
        m = re.match(r"#{2,4} (.*)", line)
        if m:
            current = (m.group(1).strip(), [])
            parts.append(current)
        elif current is None:
            head.append(line)
        else:
            current[1].append(line)
    return head, parts


def table_links(lines):
    """The first link of each table row: (name, target)."""
    for line in lines:
        if line.startswith("| [") or line.startswith("|["):
            m = LINK.search(line)
            if m:
                yield m.group(1), m.group(2)


def strip_blank(lines):
    while lines and not lines[0].strip():
        lines = lines[1:]
    while lines and not lines[-1].strip():
        lines = lines[:-1]
    return lines


def walk_type(path, name, package, pages, seen, classes):
    """The type page at `path` (a Dokka index.md), then its members and nested types."""
    if path in seen:
        return
    seen.add(path)
    head, parts = sections(body_of(read(path)))
    here = posixpath.dirname(path)
    interface_of = name[: -len("Interface")] if name.endswith("Interface") else None
    if interface_of and interface_of in classes:
        # uniffi's interface for a class: the same docs as the class's.
        target = posixpath.relpath(classes[interface_of], here)
        head = strip_blank(head) + ["", f"Implemented by [{interface_of}]({target}), under which its members are documented."]
        pages.append(Page(name, path, strip_blank(head), 3, package))
        return
    pages.append(Page(name, path, strip_blank(head), 3, package))
    members, nested = [], []
    for section, lines in parts:
        for label, target in table_links(lines):
            if "#" in target:
                continue  # inherited (Enum.name, Throwable.message): documented where declared
            resolved = posixpath.normpath(posixpath.join(here, target))
            if posixpath.dirname(resolved) == here and resolved.endswith(".md") and resolved != path:
                if resolved not in [m[1] for m in members]:
                    members.append(("constructor" if section == "Constructors" else label, resolved))
            elif resolved.endswith("/index.md") and posixpath.dirname(posixpath.dirname(resolved)) == here:
                if resolved not in [n[1] for n in nested]:
                    nested.append((label, resolved))
    for label, member in members:
        if member in seen:
            continue
        seen.add(member)
        pages.append(Page(f"{name}.{label}", member, demote(strip_blank(body_of(read(member)))), 4, package))
    for label, inner in nested:
        walk_type(inner, f"{name}.{label}", package, pages, seen, classes)


def walk():
    module = next(p for p in DOKKA.iterdir() if p.is_dir()).name
    pages, seen = [], set()
    for package in PACKAGES:
        index = f"{module}/{package}/index.md"
        _, parts = sections(body_of(read(index)))
        pages.append(Page(f"Package {package}", index, [], 2, package))
        here = posixpath.dirname(index)
        types, functions = [], []
        for section, lines in parts:
            for label, target in table_links(lines):
                resolved = posixpath.normpath(posixpath.join(here, target))
                (types if section == "Types" else functions).append((label, resolved))
        classes = {label: target for label, target in types}
        for label, target in types:
            walk_type(target, label, package, pages, seen, classes)
        for label, target in functions:
            if target not in seen:
                seen.add(target)
                pages.append(Page(label, target, demote(strip_blank(body_of(read(target)))), 3, package))
    return pages


def slug(title, used):
    """GitHub's anchor for a heading, made unique as GitHub does."""
    base = re.sub(r"[^\w\- ]", "", title.lower()).replace(" ", "-")
    n = used.get(base, 0)
    used[base] = n + 1
    return base if n == 0 else f"{base}-{n}"


def render(pages):
    used = {}
    anchors = {}
    for page in pages:
        page.anchor = slug(page.title, used)
        anchors[page.path] = page.anchor
        # A type's directory index stands for the type.
    missing = []
    out = [PREAMBLE, "## Contents\n\n"]
    for page in pages:
        if page.level == 2:
            out.append(f"- [{page.title}](#{page.anchor})\n")
        elif page.level == 3 and "." not in page.title:
            out.append(f"  - [{page.title}](#{page.anchor})\n")
    out.append("\n")

    def relink(line, here):
        def sub(m):
            text, target = m.group(1), m.group(2)
            if target.startswith(("http://", "https://")):
                return m.group(0)
            resolved = posixpath.normpath(posixpath.join(here, target.split("#")[0]))
            anchor = anchors.get(resolved)
            return f"[{text}](#{anchor})" if anchor else text
        return LINK.sub(sub, line)

    for page in pages:
        out.append("#" * page.level + " " + page.title + "\n\n")
        here = posixpath.dirname(page.path)
        text = "\n".join(relink(line, here) for line in page.body).strip()
        text = re.sub(r"\n{3,}", "\n\n", text)
        if text:
            out.append(text + "\n\n")
        if page.package in DOCUMENTED and page.level > 2 and not has_doc(page.body):
            missing.append(page.title)
    if missing:
        sys.exit("reference.py: no doc comment on " + ", ".join(missing) + " (org.blindmatch.client)")
    return "".join(out).rstrip("\n") + "\n"


def has_doc(lines):
    """Whether a page has prose beyond its signature lines."""
    for block in "\n".join(lines).split("\n\n"):
        block = block.strip()
        if not block or block.startswith(("@", "|", "#")):
            continue
        if re.match(r"^(open |override |abstract |sealed |data |const |private |protected |inline )*"
                    r"(fun|val|var|class|object|interface|constructor|enum)\b", block):
            continue
        return True
    return False


def main():
    check = "--check" in sys.argv[1:]
    run_dokka()
    text = render(walk())
    if check:
        if not OUT.exists() or OUT.read_text(encoding="utf-8") != text:
            sys.exit(f"{OUT.relative_to(HERE.parent.parent)} is stale: run `python3 reference.py` in bindings/kotlin (after `mvn package`)")
        print(f"kotlin: {OUT.name} is what the code's KDoc gives")
    else:
        OUT.write_text(text, encoding="utf-8")
        print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
