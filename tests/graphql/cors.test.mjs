// CORS as a browser enforces it: headless Chromium (Debian's, driven by playwright-core) opens pages
// served from two other origins, and each page calls Latch with fetch. The origin listed in
// server.cors.allowed_origins reads Latch's answers, credentials included, on every tenant; the
// other origin is blocked by the browser on the default tenant but allowed on the tenant that lists
// it in its allowed_origins (under /t/web). Requests with a JSON body and an Authorization header are
// what makes the browser send preflights.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";
import { smtpCapture, startLatch, signup, freePort } from "./harness.mjs";

const chromiumPath = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
let smtp, latch, browser, profile, appSite, otherSite, access;

// site serves a blank page on its own origin: the app a browser user opens.
async function site() {
  const port = await freePort();
  const server = createServer((req, res) => {
    res.writeHead(200, { "Content-Type": "text/html; charset=utf-8" });
    res.end("<!doctype html><title>app</title><p>an app on another origin</p>");
  });
  await new Promise((resolve) => server.listen(port, "127.0.0.1", resolve));
  // The browser keeps its connections open: close them, or close() waits for them.
  const close = () => new Promise((resolve) => { server.close(resolve); server.closeAllConnections(); });
  return { origin: `http://127.0.0.1:${port}`, close };
}

before(async () => {
  smtp = await smtpCapture();
  appSite = await site();
  otherSite = await site();
  latch = await startLatch(smtp, {
    LATCH_SERVER_CORS_ALLOWED_ORIGINS: appSite.origin,
    LATCH_SERVER_CORS_ALLOW_CREDENTIALS: "true",
  });
  latch.cli("tenant", "create", "--id", "web", "--name", "Web", "--allowed-origins", otherSite.origin);
  ({ accessToken: access } = await signup(latch.base, smtp, "cors@example.test", "correct horse battery"));
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
  await appSite?.close();
  await otherSite?.close();
  await smtp?.close();
});

// fromPage runs the calls in a page of origin and answers, for each, what the page could see:
// {status, body, requestId, allowCredentials} or {blocked: message}.
async function fromPage(origin, calls) {
  const page = await browser.newPage();
  try {
    await page.goto(origin + "/");
    return await page.evaluate(async (calls) => {
      const out = [];
      for (const c of calls) {
        try {
          const res = await fetch(c.url, {
            method: c.method ?? "POST",
            headers: c.headers ?? { "Content-Type": "application/json" },
            body: c.body === undefined ? undefined : JSON.stringify(c.body),
            credentials: c.credentials ?? "same-origin",
          });
          out.push({ status: res.status, body: await res.json(), requestId: res.headers.get("X-Request-Id") });
        } catch (e) {
          out.push({ blocked: String(e) });
        }
      }
      return out;
    }, calls);
  } finally {
    await page.close();
  }
}

test("the configured origin reads Latch's answers, with credentials, on every tenant", async () => {
  const [login, me, tenantLogin] = await fromPage(appSite.origin, [
    { url: `${latch.base}/v2/auth/login`, body: { email: "cors@example.test", password: "correct horse battery" }, credentials: "include" },
    { url: `${latch.base}/graphql`, body: { query: "{ me { email } }" },
      headers: { "Content-Type": "application/json", Authorization: `JWT ${access}` } },
    { url: `${latch.base}/t/web/v2/auth/login`, body: { email: "nobody@example.test", password: "wrong password" } },
  ]);
  assert.equal(login.status, 200, JSON.stringify(login));
  assert.equal(login.body.expiresIn, 600);
  assert.match(login.requestId ?? "", /^[0-9a-f]{24}$/, "X-Request-Id is exposed to the page");
  assert.deepEqual(me.body, { data: { me: { email: "cors@example.test" } } });
  assert.equal(tenantLogin.status, 401);
  assert.equal(tenantLogin.body.code, "invalid_credentials");
});

test("another origin is blocked by the browser, except on the tenant that lists it", async () => {
  const [login, graphql, tenantLogin] = await fromPage(otherSite.origin, [
    { url: `${latch.base}/v2/auth/login`, body: { email: "cors@example.test", password: "correct horse battery" } },
    { url: `${latch.base}/graphql`, body: { query: "{ me { email } }" },
      headers: { "Content-Type": "application/json", Authorization: `JWT ${access}` } },
    { url: `${latch.base}/t/web/v2/auth/login`, body: { email: "nobody@example.test", password: "wrong password" } },
  ]);
  assert.ok(login.blocked, `the default tenant's login answered a page it does not allow: ${JSON.stringify(login)}`);
  assert.ok(graphql.blocked, `GraphQL answered a page it does not allow: ${JSON.stringify(graphql)}`);
  assert.equal(tenantLogin.status, 401, JSON.stringify(tenantLogin));
  assert.equal(tenantLogin.body.code, "invalid_credentials");
});

test("with credentials on, a tenant-listed origin may send them and an origin listed nowhere gets nothing", async () => {
  // The tenant's origin with credentials: Latch allows credentials for every listed origin, so this
  // works; a page of an origin listed nowhere gets nothing, with or without them.
  const [withCreds] = await fromPage(otherSite.origin, [
    { url: `${latch.base}/t/web/v2/auth/refresh`, body: {}, credentials: "include" },
  ]);
  assert.equal(withCreds.blocked, undefined, JSON.stringify(withCreds));
  assert.equal(typeof withCreds.body.code, "string", JSON.stringify(withCreds));
  const stray = await site();
  try {
    const [blocked] = await fromPage(stray.origin, [
      { url: `${latch.base}/t/web/v2/auth/refresh`, body: {}, credentials: "include" },
    ]);
    assert.ok(blocked.blocked, JSON.stringify(blocked));
  } finally {
    await stray.close();
  }
});
