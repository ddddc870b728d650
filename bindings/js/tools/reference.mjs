// REFERENCE.md from TypeDoc's markdown pages (typedoc-plugin-markdown, one
// page per module, in DIR): the intro (intro.md), then the modules in the
// order a reader needs them, on one page. Headings go one level down and
// every link is rewritten to the anchor GitHub gives that heading on the one
// page; a link to a heading that is not there fails the run.
//
//   node reference.mjs DIR OUT
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

const [dir, out] = process.argv.slice(2);
const pages = ["blindmatch/client.md", "blindmatch/web.md", "shared.md", "blindmatch.md"];

// GitHub's heading anchors (github-slugger): lower case, punctuation other
// than - and _ dropped, spaces to -, repeats numbered -1, -2, ... per page.
function slugger() {
  const seen = new Map();
  return (text) => {
    const base = text
      .replace(/\\(.)/g, "$1")
      .replace(/`/g, "")
      .toLowerCase()
      .replace(/[^\p{L}\p{N}\p{M}\p{Pc}\- ]/gu, "")
      .replace(/ /g, "-");
    let slug = base;
    while (seen.has(slug)) {
      seen.set(base, seen.get(base) + 1);
      slug = `${base}-${seen.get(base)}`;
    }
    seen.set(slug, 0);
    return slug;
  };
}

const headings = (text) =>
  text.split("\n").filter((l, i, all) => /^#{1,6} /.test(l) && !inFence(all, i)).map((l) => l.replace(/^#+ /, ""));
function inFence(lines, at) {
  let open = false;
  for (let i = 0; i < at; i++) if (/^```/.test(lines[i])) open = !open;
  return open;
}

const intro = readFileSync(new URL("intro.md", import.meta.url), "utf8").trimEnd();
const global = slugger();
for (const h of headings(intro)) global(h);
const anchors = new Map(); // "page#local" -> global anchor
const texts = pages.map((page) => {
  const text = readFileSync(join(dir, page), "utf8");
  const local = slugger();
  headings(text).forEach((h, i) => {
    const g = global(h);
    const l = local(h);
    anchors.set(`${page}#${l}`, g);
    if (i === 0) anchors.set(`${page}#`, g);
  });
  // Table rows carry their own anchors (<a id="...">): made unique too.
  for (const [, id] of text.matchAll(/<a id="([^"]+)"><\/a>/g)) anchors.set(`${page}#${id}`, global(id));
  return { page, text };
});

const resolve = (from, target) => {
  const [path, hash = ""] = target.split("#");
  const parts = from.split("/").slice(0, -1);
  for (const p of path ? path.split("/") : [from.split("/").pop()]) {
    if (p === "..") parts.pop();
    else if (p !== ".") parts.push(p);
  }
  return `${parts.join("/")}#${hash}`;
};

const body = texts.map(({ page, text }) => {
  const lines = text.trimEnd().split("\n");
  return lines
    .map((line, i) => {
      if (inFence(lines, i)) return line;
      if (/^#{1,5} /.test(line)) line = `#${line}`;
      line = line.replace(/<a id="([^"]+)"><\/a>/g, (all, id) => `<a id="${anchors.get(`${page}#${id}`)}"></a>`);
      return line.replace(/\]\(([^)\s]*)\)/g, (all, target) => {
        if (/^[a-z]+:/.test(target)) return all; // an outside url
        const key = resolve(page, target);
        const anchor = anchors.get(key);
        if (!anchor) throw new Error(`${page}: the link ${target} names no heading of the reference`);
        return `](#${anchor})`;
      });
    })
    .join("\n");
});

const known = new Set(anchors.values());
for (const [, anchor] of intro.matchAll(/\]\(#([^)]*)\)/g)) {
  if (!known.has(anchor)) throw new Error(`intro.md: the link #${anchor} names no heading of the reference`);
}

writeFileSync(out, [intro, ...body].join("\n\n") + "\n");
