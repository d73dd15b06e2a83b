// The explorer page in a real browser: headless Chromium (Debian's, driven by playwright-core) loads
// GET /graphql, runs tokenVerify with an access token typed into the variables and headers, and the
// test reads the answer off the page. Every request the page makes must stay on Latch's origin.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";
import { smtpCapture, startLatch, signup } from "./harness.mjs";

const chromiumPath = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
let smtp, latch, browser, profile;

before(async () => {
  smtp = await smtpCapture();
  latch = await startLatch(smtp);
  profile = mkdtempSync(join(tmpdir(), "latch-chromium-"));
  browser = await chromium.launchPersistentContext(profile, {
    executablePath: chromiumPath,
    headless: true,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
});

after(async () => {
  await browser?.close();
  if (profile) rmSync(profile, { recursive: true, force: true });
  await latch?.stop();
  await smtp?.close();
});

test("the explorer runs tokenVerify with headers typed in the page", async () => {
  const email = "explorer@example.test";
  const { accessToken } = await signup(latch.base, smtp, email, "correct horse battery");

  const page = await browser.newPage();
  const requested = [];
  const refused = [];
  page.on("request", (req) => requested.push(req.url()));
  page.on("console", (msg) => { if (/Content Security Policy|Refused/i.test(msg.text())) refused.push(msg.text()); });
  page.on("pageerror", (err) => refused.push(String(err)));

  const res = await page.goto(`${latch.base}/graphql`);
  assert.equal(res.status(), 200);
  await page.waitForSelector("#run");
  assert.equal(await page.inputValue("#query").then((q) => q.includes("tokenVerify")), true, "the page starts with a tokenVerify example");

  await page.fill("#query", `mutation Verify($token: String!) {
  tokenVerify(token: $token) { isValid payload errors { code } }
  me: tokenVerify(token: $token) { user { email } }
}`);
  await page.fill("#variables", JSON.stringify({ token: accessToken }));
  await page.fill("#headers", JSON.stringify({ Authorization: `JWT ${accessToken}` }));
  await page.click("#run");
  await page.waitForFunction(() => document.getElementById("status").textContent.startsWith("HTTP"));

  assert.match(await page.textContent("#status"), /^HTTP 200/);
  const shown = JSON.parse(await page.textContent("#result"));
  assert.equal(shown.data.tokenVerify.isValid, true);
  assert.equal(shown.data.tokenVerify.payload.email, email);
  assert.deepEqual(shown.data.tokenVerify.errors, []);
  assert.equal(shown.data.me.user.email, email);

  // The headers typed in the page reach the server: `me` answers for the token in them.
  await page.fill("#query", "{ me { email } }");
  await page.fill("#variables", "{}");
  await page.click("#run");
  await page.waitForFunction(() => document.getElementById("result").textContent.includes("me"));
  assert.deepEqual(JSON.parse(await page.textContent("#result")), { data: { me: { email } } });

  const elsewhere = requested.filter((u) => !u.startsWith(latch.base + "/"));
  assert.deepEqual(elsewhere, [], "the page loaded something from another origin");
  assert.deepEqual(refused, [], "the page broke its own Content-Security-Policy or threw");
});
