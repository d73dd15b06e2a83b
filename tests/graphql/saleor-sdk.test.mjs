// The official @saleor/auth-sdk, unmodified, against a real Latch on Postgres: signIn, fetchWithAuth
// against `query me`, its automatic refresh once the access token has expired (twice, with the refresh
// token it kept from signIn), and signOut. The SDK logs in with one call and never stores a new
// refresh token, so it is pointed at a tenant whose second step is off and whose refresh tokens do not
// rotate, at /t/{tenant}/graphql; and it attaches the access token only to a URL equal to the token's
// iss, so that tenant's issuer is that URL, as the README tells operators to do.
import { test, before, after, mock } from "node:test";
import assert from "node:assert/strict";
import { createSaleorAuthClient } from "@saleor/auth-sdk";
import { smtpCapture, startLatch } from "./harness.mjs";

const password = "correct horse battery";
let smtp, latch;

before(async () => {
  smtp = await smtpCapture();
  latch = await startLatch(smtp);
});

after(async () => {
  mock.timers.reset();
  await latch?.stop();
  await smtp?.close();
});

// memoryStorage is the Storage-like object the SDK accepts for its tokens (a browser passes
// localStorage).
function memoryStorage() {
  const m = new Map();
  return {
    getItem: (k) => m.get(k) ?? null,
    setItem: (k, v) => { m.set(k, String(v)); },
    removeItem: (k) => { m.delete(k); },
    values: () => [...m.values()],
  };
}

async function me(client, url) {
  const res = await client.fetchWithAuth(url, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ query: "{ me { email tenantId } }" }),
  });
  assert.equal(res.status, 200);
  return (await res.json()).data.me;
}

// laterBy moves the SDK's clock (Date) forward; Latch's clock is not moved, so the server still
// takes the old access token: what is tested is that the SDK refreshes by itself when it judges the
// token expired, and that Latch answers that refresh in the shape the SDK reads.
function laterBy(ms) {
  const now = Date.now();
  mock.timers.reset();
  mock.timers.enable({ apis: ["Date"], now: now + ms });
}

test("the Saleor SDK signs in, fetches with auth, refreshes by itself and signs out", async () => {
  const url = `${latch.base}/t/shop/graphql`;
  latch.cli("tenant", "create", "--id", "shop", "--name", "Shop", "--second-step", "off",
    "--refresh-rotation=false", "--issuer", url);
  const email = "sdk@example.test";
  latch.cli("user", "create", "--tenant", "shop", "--email", email, "--password", password);

  const refreshStorage = memoryStorage();
  const accessStorage = memoryStorage();
  const client = createSaleorAuthClient({ saleorApiUrl: url, refreshTokenStorage: refreshStorage, accessTokenStorage: accessStorage });
  const accessKey = `${url}+saleor_auth_access_token`;
  const refreshKey = `${url}+saleor_auth_module_refresh_token`;

  const signedIn = await client.signIn({ email, password });
  assert.deepEqual(signedIn.data.tokenCreate.errors, []);
  assert.ok(refreshStorage.values().includes("signedIn"), "the SDK did not record a sign-in");
  const first = accessStorage.getItem(accessKey);
  const refresh = refreshStorage.getItem(refreshKey);
  assert.ok(first && refresh?.startsWith("lrt_"));

  assert.deepEqual(await me(client, url), { email, tenantId: "shop" });

  try {
    // An hour later, by the SDK's clock, the access token has expired: fetchWithAuth refreshes first.
    laterBy(60 * 60 * 1000);
    assert.deepEqual(await me(client, url), { email, tenantId: "shop" });
    const second = accessStorage.getItem(accessKey);
    assert.notEqual(second, first, "the SDK did not refresh the expired access token");
    // And again, with the same refresh token: the tenant does not rotate, so it still works.
    laterBy(2 * 60 * 60 * 1000);
    assert.deepEqual(await me(client, url), { email, tenantId: "shop" });
    assert.notEqual(accessStorage.getItem(accessKey), second, "the SDK did not refresh a second time");
    assert.equal(refreshStorage.getItem(refreshKey), refresh);
  } finally {
    mock.timers.reset();
  }

  client.signOut();
  assert.equal(accessStorage.getItem(accessKey), null);
  assert.equal(refreshStorage.getItem(refreshKey), null);
  assert.equal(await me(client, url), null);
});

test("on a tenant with a second step, the SDK's one-call signIn hands back OTP_REQUIRED", async () => {
  const url = `${latch.base}/graphql`;
  const email = "two-steps@example.test";
  latch.cli("user", "create", "--email", email, "--password", password);
  const client = createSaleorAuthClient({ saleorApiUrl: url, refreshTokenStorage: memoryStorage(), accessTokenStorage: memoryStorage() });
  const answer = await client.signIn({ email, password });
  assert.deepEqual(answer.data.tokenCreate.errors.map((e) => [e.field, e.code]), [["otp", "OTP_REQUIRED"]]);
  assert.equal(answer.data.tokenCreate.token, null);
  assert.match(await smtp.codeFor(email), /^\d{6}$/, "the first call emailed a code");
});
