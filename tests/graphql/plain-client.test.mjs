// A plain GraphQL client (fetch) against a real Latch on Postgres: the graphql-jwt set, and Saleor's
// tokenCreate in two calls with the code read from a real SMTP capture.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { smtpCapture, startLatch, graphql, signup } from "./harness.mjs";

const password = "correct horse battery";
let smtp, latch, url;

before(async () => {
  smtp = await smtpCapture();
  latch = await startLatch(smtp);
  url = `${latch.base}/graphql`;
});

after(async () => {
  await latch?.stop();
  await smtp?.close();
});

test("graphql-jwt: tokenAuth in two calls, verifyToken, refreshToken, revokeToken", async () => {
  const email = "jwt-client@example.test";
  await signup(latch.base, smtp, email, password);
  const auth = `mutation($username: String!, $password: String!, $otp: String) {
    tokenAuth(username: $username, password: $password, otp: $otp) { token refreshToken payload refreshExpiresIn }
  }`;

  // The first call checks the password and emails the code; the answer is an error saying so.
  let r = await graphql(url, auth, { username: email, password });
  assert.equal(r.status, 200);
  assert.equal(r.body.data.tokenAuth, null);
  assert.equal(r.body.errors[0].extensions.code, "OTP_REQUIRED");

  const otp = await smtp.codeFor(email);
  r = await graphql(url, auth, { username: email, password, otp });
  assert.equal(r.body.errors, undefined, JSON.stringify(r.body.errors));
  const login = r.body.data.tokenAuth;
  assert.equal(login.payload.username, email);
  assert.equal(typeof login.payload.origIat, "number");
  assert.ok(login.refreshExpiresIn > Date.now() / 1000 + 6 * 86400, `refreshExpiresIn ${login.refreshExpiresIn} is a Unix time about 7 days ahead`);

  r = await graphql(url, `mutation($t: String!) { verifyToken(token: $t) { payload } }`, { t: login.token });
  assert.equal(r.body.data.verifyToken.payload.sub, login.payload.sub);

  // django-graphql-jwt clients send the token as Authentication: JWT.
  r = await graphql(url, "{ me { email role } }", {}, { Authentication: `JWT ${login.token}` });
  assert.deepEqual(r.body.data.me, { email, role: "user" });

  r = await graphql(url, `mutation($t: String!) { refreshToken(token: $t) { token refreshToken refreshExpiresIn } }`, { t: login.refreshToken });
  const refreshed = r.body.data.refreshToken;
  assert.notEqual(refreshed.refreshToken, login.refreshToken);
  assert.equal(typeof refreshed.refreshExpiresIn, "number");

  r = await graphql(url, `mutation($t: String!) { revokeToken(refreshToken: $t) { revoked } }`, { t: refreshed.refreshToken });
  assert.ok(Math.abs(r.body.data.revokeToken.revoked - Date.now() / 1000) < 60);

  r = await graphql(url, `mutation($t: String!) { refreshToken(refreshToken: $t) { token } }`, { t: refreshed.refreshToken });
  assert.equal(r.body.data.refreshToken, null);
  assert.equal(r.body.errors[0].extensions.code, "SESSION_REVOKED");

  r = await graphql(url, `mutation { verifyToken(token: "not.a.jwt") { payload } }`);
  assert.equal(r.body.errors[0].message, "Error decoding signature");
  r = await graphql(url, auth, { username: email, password: "wrong password" });
  assert.equal(r.body.errors[0].message, "Please enter valid credentials");
});

test("Saleor: tokenCreate in two calls with the emailed code, then tokenRefresh and tokenVerify", async () => {
  const email = "saleor-client@example.test";
  await signup(latch.base, smtp, email, password);
  const create = `mutation($email: String!, $password: String!, $otp: String) {
    tokenCreate(email: $email, password: $password, otp: $otp) { token refreshToken user { email } errors { field code message } }
  }`;
  let r = await graphql(url, create, { email, password });
  assert.equal(r.status, 200);
  assert.deepEqual(r.body.data.tokenCreate.errors.map((e) => [e.field, e.code]), [["otp", "OTP_REQUIRED"]]);
  assert.equal(r.body.data.tokenCreate.token, null);

  // A wrong code is INVALID_OTP; the emailed one still works after it.
  const otp = await smtp.codeFor(email);
  r = await graphql(url, create, { email, password, otp: otp === "000000" ? "111111" : "000000" });
  assert.deepEqual(r.body.data.tokenCreate.errors.map((e) => [e.field, e.code]), [["otp", "INVALID_OTP"]]);
  r = await graphql(url, create, { email, password, otp });
  const login = r.body.data.tokenCreate;
  assert.deepEqual(login.errors, []);
  assert.equal(login.user.email, email);

  r = await graphql(url, `mutation($t: String!) { tokenRefresh(refreshToken: $t) { token refreshToken errors { code } } }`, { t: login.refreshToken });
  assert.deepEqual(r.body.data.tokenRefresh.errors, []);
  r = await graphql(url, `mutation($t: String!) { tokenVerify(token: $t) { isValid payload errors { code } } }`, { t: r.body.data.tokenRefresh.token });
  assert.equal(r.body.data.tokenVerify.isValid, true);
  assert.equal(r.body.data.tokenVerify.payload.email, email);
});
