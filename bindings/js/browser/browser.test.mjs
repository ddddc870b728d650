// A real browser: Debian's Chromium, headless, driven by Playwright. The page
// (bindings/js/browser) uses the packaged browser client ("blindmatch/web"):
// it verifies the manifest (a quorum of co-signers), downloads the table and
// keeps it in IndexedDB, hashes a picked file with WebCrypto, makes its
// voucher in WebAssembly and submits it over gRPC-Web to a real server run
// with --grpc-web-origin. A listed file is recorded with its note, an
// unlisted one is not; a reload takes the table from IndexedDB; in threshold
// mode the page's account leaves a candidate. The screenshot is kept in
// target/bindings/js/browser.png.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { createServer } from "node:http";
import { extname, join } from "node:path";
import { after, before, test } from "node:test";

import { chromium } from "playwright-core";
import { TestServer } from "./server.mjs";

const dist = process.env.BLINDMATCH_PAGE;
const screenshot = process.env.BLINDMATCH_SCREENSHOT;
const types = { ".html": "text/html", ".js": "text/javascript", ".wasm": "application/wasm" };
let page, browser, server, thresholdServer, web, origin;

before(async () => {
  // The page's own origin: a static server on a free loopback port.
  web = createServer((req, res) => {
    const path = new URL(req.url, "http://x").pathname.replace(/^\/$/, "/index.html");
    try {
      const body = readFileSync(join(dist, path.replace(/\.\./g, "")));
      res.writeHead(200, { "content-type": types[extname(path)] ?? "application/octet-stream" });
      res.end(body);
    } catch {
      res.writeHead(404).end();
    }
  });
  await new Promise((r) => web.listen(0, "127.0.0.1", r));
  origin = `http://127.0.0.1:${web.address().port}`;
  server = new TestServer(`--grpc-web-origin ${origin}`);
  thresholdServer = new TestServer(`--grpc-web-origin ${origin}`, "3:2");
  browser = await chromium.launch({
    executablePath: process.env.BLINDMATCH_CHROMIUM ?? "/usr/bin/chromium",
    // As root, without a user namespace sandbox; no network beyond loopback.
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  page = await browser.newPage();
  page.on("console", (m) => console.log(`page: ${m.text()}`));
  // Pinned to hotlines a and b, which audited and co-signed the table.
  const orgs = ["a", "b"].map((n) => readFileSync(join(server.dir, `org-${n}.sign.pub`), "utf8").trim()).join(",");
  await page.goto(`${origin}/index.html?server=http://${server.target}&operator=${server.operatorHex}&orgs=${orgs}&quorum=2`);
  await page.waitForFunction(() => document.getElementById("status").textContent.includes("verified"), null, { timeout: 30000 });
  assert.equal(await page.textContent("#status"), "table version 1 verified (download), co-signed by Hotline a, Hotline b; pick a file");
});

after(async () => {
  await browser?.close();
  server?.stop();
  thresholdServer?.stop();
  web?.close();
});

async function check(name, content, note) {
  await page.setInputFiles("#file", { name, mimeType: "image/jpeg", buffer: Buffer.from(content) });
  await page.fill("#ad", note);
  await page.click("#check");
  await page.waitForFunction((n) => document.getElementById("status").textContent.startsWith(`${n}: `), name, { timeout: 30000 });
  return page.textContent("#status");
}

test("a listed file is recorded with its note, an unlisted one is not", async () => {
  // bindings/testkit lists SHA-256("listed-0").
  assert.equal(await check("holiday.jpg", "listed-0", "browser: listed"), "holiday.jpg: acknowledged (1 voucher)");
  assert.equal(await check("cat.jpg", "not on any list", "browser: unlisted"), "cat.jpg: acknowledged (1 voucher)");
  await page.screenshot({ path: screenshot, fullPage: true });
  const matches = server.matches(1);
  assert.deepEqual(matches.map((m) => m.associated_data), ["browser: listed"]);
  assert.equal(matches[0].item_type, "sha256");
});

test("a reload takes the table from IndexedDB", async () => {
  await page.reload();
  await page.waitForFunction(() => document.getElementById("status").textContent.includes("verified"), null, { timeout: 30000 });
  assert.equal(await page.textContent("#status"), "table version 1 verified (cached), co-signed by Hotline a, Hotline b; pick a file");
  assert.equal(await check("again.jpg", "not listed either", "browser: again"), "again.jpg: acknowledged (1 voucher)");
});

test("threshold mode: the page's account leaves a candidate", async () => {
  const other = await browser.newPage();
  page = other;
  other.on("console", (m) => console.log(`page: ${m.text()}`));
  await other.goto(`${origin}/index.html?server=http://${thresholdServer.target}&operator=${thresholdServer.operatorHex}&account=browser-account`);
  await other.waitForFunction(() => /verified|error/.test(document.getElementById("status").textContent), null, { timeout: 30000 });
  assert.equal(await other.textContent("#status"), "table version 1 verified (download), threshold 3; pick a file");
  assert.equal(await check("holiday.jpg", "listed-0", "browser: account"), "holiday.jpg: acknowledged (1 voucher)");
  const mine = thresholdServer.accounts(1).find((a) => a.account_hex === Buffer.from("browser-account").toString("hex"));
  assert.ok(mine, "the server holds the account's candidate");
  assert.deepEqual([mine.unrevealed, mine.real], [1, 0]); // below t = 3: nothing revealed
});
