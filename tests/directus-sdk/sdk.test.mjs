// The official @directus/sdk, unmodified, against a real Latch: login in two calls (emailed code) and
// in one call (authenticator code, or a tenant without a second step under /t/{tenant}/directus),
// manual and automatic refresh, logout, readMe and the two-factor commands, in json mode.
// Authenticator codes come from otplib, not from Latch.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  createDirectus, authentication, rest, readMe, refresh,
  generateTwoFactorSecret, enableTwoFactor, disableTwoFactor,
} from '@directus/sdk';
import { generateSync } from 'otplib';
import { Mailbox, startLatch, signup } from './harness.mjs';

const password = 'correct horse battery';
let mailbox;
let latch;
const clients = [];

before(async () => {
  mailbox = new Mailbox();
  latch = await startLatch(await mailbox.start());
});

after(async () => {
  // A client whose test failed before its logout still holds the SDK's refresh timer.
  for (const c of clients) c.stopRefreshing();
  await latch?.stop();
  await mailbox?.close();
});

// client is an SDK client as an integrator writes it, with a storage the test can look into and a
// fetch that counts the refreshes the SDK makes on its own; path is where the surface answers.
function client(path = '/directus') {
  let stored = null;
  const storage = { get: async () => stored, set: async (v) => { stored = v; } };
  const calls = { refresh: 0 };
  const counting = (url, init) => {
    if (new URL(url).pathname.endsWith('/auth/refresh')) calls.refresh++;
    return fetch(url, init);
  };
  const sdk = createDirectus(latch.base + path, { globals: { fetch: counting } })
    .with(authentication('json', { storage }))
    .with(rest());
  clients.push(sdk);
  return { sdk, storage, calls };
}

// errorOf is what the SDK throws for a Directus error answer: the first error's code and message.
async function errorOf(promise) {
  try {
    await promise;
  } catch (e) {
    assert.ok(Array.isArray(e.errors), `the SDK threw ${e}, not a Directus error`);
    return { code: e.errors[0].extensions.code, message: e.errors[0].message, status: e.response?.status };
  }
  assert.fail('the call succeeded');
}

// A TOTP code for the step a given number of steps from now.
function totp(secret, steps = 0) {
  return generateSync({ secret, epoch: Math.floor(Date.now() / 1000) + 30 * steps });
}

test('email-code user: login in two calls, readMe, manual and automatic refresh, logout', async () => {
  const email = 'sdk-email@example.test';
  await signup(latch.base, mailbox, email, password);
  const { sdk, storage, calls } = client();

  const first = await errorOf(sdk.login({ email, password }));
  assert.equal(first.code, 'INVALID_OTP');
  assert.equal(first.status, 401);
  assert.match(first.message, /emailed/);

  const data = await sdk.login({ email, password }, { otp: await mailbox.nextCode(email) });
  assert.ok(data.access_token);
  assert.match(data.refresh_token, /^lrt_/);
  // The access token's lifetime (15 minutes by default) in milliseconds, less the part of a second
  // its whole-second exp claim leaves.
  assert.ok(data.expires > 15 * 60 * 1000 - 2000 && data.expires <= 15 * 60 * 1000, `expires ${data.expires}`);

  const me = await sdk.request(readMe());
  assert.equal(me.email, email);
  assert.equal(me.tfa_enabled, false);
  assert.equal(me.email_verified, true);

  // Manual refresh, through the client and through the rest command.
  const before = (await storage.get()).refresh_token;
  const manual = await sdk.refresh();
  assert.notEqual(manual.refresh_token, before);
  assert.equal((await storage.get()).refresh_token, manual.refresh_token);
  const byCommand = await sdk.request(refresh({ mode: 'json', refresh_token: manual.refresh_token }));
  assert.notEqual(byCommand.refresh_token, manual.refresh_token);
  await storage.set({ ...byCommand, expires_at: Date.now() + byCommand.expires });

  // Automatic refresh: once the stored token is about to expire, the SDK refreshes before the request.
  const rotated = (await storage.get()).refresh_token;
  await storage.set({ ...(await storage.get()), expires_at: Date.now() });
  const refreshes = calls.refresh;
  assert.equal((await sdk.request(readMe())).email, email);
  assert.equal(calls.refresh, refreshes + 1);
  const now = await storage.get();
  assert.notEqual(now.refresh_token, rotated);
  assert.ok(now.expires_at > Date.now() + 60_000);

  // Logout ends the session: its refresh token no longer works anywhere.
  const last = now.refresh_token;
  await sdk.logout();
  assert.equal((await storage.get()).refresh_token, null);
  const dead = await fetch(latch.base + '/directus/auth/refresh', {
    method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ refresh_token: last, mode: 'json' }),
  });
  assert.equal(dead.status, 401);
  assert.equal((await dead.json()).errors[0].extensions.code, 'INVALID_CREDENTIALS');
});

test('authenticator user: tfa generate and enable, login in one call, tfa disable', async () => {
  const email = 'sdk-totp@example.test';
  await signup(latch.base, mailbox, email, password);
  const { sdk } = client();
  assert.equal((await errorOf(sdk.login({ email, password }))).code, 'INVALID_OTP');
  await sdk.login({ email, password }, { otp: await mailbox.nextCode(email) });

  assert.equal((await errorOf(sdk.request(generateTwoFactorSecret('not the password')))).code, 'INVALID_CREDENTIALS');
  const { secret, otpauth_url: url } = await sdk.request(generateTwoFactorSecret(password));
  assert.match(url, /^otpauth:\/\/totp\//);
  assert.match(url, new RegExp('secret=' + secret));
  // The previous step's code is within the allowed skew; enabling with it leaves the current and the
  // next step for the calls below, each of which must be later than the last one accepted.
  assert.equal(await sdk.request(enableTwoFactor(secret, totp(secret, -1))), null);
  assert.equal((await sdk.request(readMe())).tfa_enabled, true);
  // The owner is told by email; wait for that notice so the count below is of what comes after it.
  assert.match(await mailbox.nextMessage(email), /Authenticator app turned on/);

  // Without a code nothing is emailed, and the message says so; with the app's code, one call.
  const mails = mailbox.count(email);
  const { sdk: phone } = client();
  const asked = await errorOf(phone.login({ email, password }));
  assert.equal(asked.code, 'INVALID_OTP');
  assert.match(asked.message, /no code was emailed/);
  const code = totp(secret);
  const data = await phone.login({ email, password }, { otp: code });
  assert.ok(data.access_token);
  assert.match(data.refresh_token, /^lrt_/);
  assert.equal((await phone.request(readMe())).email, email);
  assert.equal(mailbox.count(email), mails);

  // A code works once.
  const { sdk: replay } = client();
  assert.equal((await errorOf(replay.login({ email, password }, { otp: code }))).code, 'INVALID_OTP');

  assert.equal((await errorOf(phone.request(disableTwoFactor('000000' === totp(secret, 1) ? '111111' : '000000')))).code, 'INVALID_OTP');
  assert.equal(await phone.request(disableTwoFactor(totp(secret, 1))), null);
  assert.equal((await phone.request(readMe())).tfa_enabled, false);

  // Back to emailed codes.
  const { sdk: after } = client();
  assert.match((await errorOf(after.login({ email, password }))).message, /emailed/);
  await after.login({ email, password }, { otp: await mailbox.nextCode(email) });
  for (const c of [sdk, phone, after]) await c.logout();
});

test('a tenant without a second step, under /t/{tenant}/directus: login in one call', async () => {
  const email = 'sdk-quick@example.test';
  latch.cli('tenant', 'create', '--id', 'quick', '--second-step', 'off');
  latch.cli('user', 'create', '--tenant', 'quick', '--email', email, '--password', password);
  const mails = mailbox.count(email);
  const { sdk } = client('/t/quick/directus');
  const data = await sdk.login({ email, password });
  assert.match(data.refresh_token, /^lrt_/);
  const me = await sdk.request(readMe());
  assert.equal(me.tenant, 'quick');
  assert.equal(me.email, email);
  assert.notEqual((await sdk.refresh()).refresh_token, data.refresh_token);
  assert.equal(mailbox.count(email), mails);
  await sdk.logout();
});
