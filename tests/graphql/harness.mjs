// What the client tests share: a real SMTP capture, a fresh Postgres database, and a real `latch serve`
// process (the binary named by LATCH_BIN, which .ci/run builds) configured through LATCH_* variables.
import { spawn, execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { SMTPServer } from "smtp-server";

const adminURL = process.env.TEST_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable";

export async function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

// smtpCapture receives Latch's mail over real SMTP and hands out the six-digit codes in it.
export async function smtpCapture() {
  const waiting = new Map(); // address -> resolvers waiting for its next message
  const inbox = new Map(); // address -> messages not yet taken
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ["STARTTLS"],
    logger: false,
    onData(stream, session, callback) {
      const chunks = [];
      stream.on("data", (c) => chunks.push(c));
      stream.on("end", () => {
        const raw = Buffer.concat(chunks).toString("latin1");
        for (const rcpt of session.envelope.rcptTo) {
          const to = rcpt.address.toLowerCase();
          const w = waiting.get(to);
          if (w?.length) w.shift()(raw);
          else inbox.set(to, [...(inbox.get(to) ?? []), raw]);
        }
        callback();
      });
    },
  });
  const port = await freePort();
  await new Promise((resolve) => server.listen(port, "127.0.0.1", resolve));
  const nextMessage = (address) => {
    const to = address.toLowerCase();
    const queued = inbox.get(to);
    if (queued?.length) return Promise.resolve(queued.shift());
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no mail to ${to} within 10 s`)), 10_000);
      waiting.set(to, [...(waiting.get(to) ?? []), (m) => { clearTimeout(timer); resolve(m); }]);
    });
  };
  return {
    port,
    async codeFor(address) {
      const code = extractCode(await nextMessage(address));
      if (!code) throw new Error(`no code in the mail to ${address}`);
      return code;
    },
    close: () => new Promise((resolve) => server.close(resolve)),
  };
}

// extractCode finds the code in the text part of a MIME message: the line that holds six digits alone.
export function extractCode(raw) {
  for (const part of mimeParts(raw)) {
    if (!/^content-type:\s*text\/plain/im.test(part.headers)) continue;
    const m = decodeBody(part).match(/^\s*(\d{6})\s*$/m);
    if (m) return m[1];
  }
  return null;
}

function mimeParts(raw) {
  const [headers, ...rest] = raw.split(/\r?\n\r?\n/);
  const body = rest.join("\r\n\r\n");
  const boundary = headers.replace(/\r?\n\s+/g, " ").match(/boundary="?([^";\s]+)"?/i);
  if (!boundary) return [{ headers, body }];
  return body
    .split(`--${boundary[1]}`)
    .slice(1, -1)
    .flatMap((p) => mimeParts(p.replace(/^\r?\n/, "")));
}

function decodeBody({ headers, body }) {
  const enc = headers.match(/^content-transfer-encoding:\s*(\S+)/im)?.[1].toLowerCase();
  if (enc === "base64") return Buffer.from(body.replace(/\s+/g, ""), "base64").toString("utf8");
  if (enc === "quoted-printable") {
    return body.replace(/=\r?\n/g, "").replace(/=([0-9A-F]{2})/gi, (_, h) => String.fromCharCode(parseInt(h, 16)));
  }
  return body;
}

function psql(sql) {
  execFileSync("psql", [adminURL, "-v", "ON_ERROR_STOP=1", "-qc", sql], { stdio: ["ignore", "ignore", "inherit"] });
}

// startLatch starts `latch serve` on a fresh Postgres database with mail to the capture. env adds or
// overrides LATCH_* settings; it may be a function of the base URL. stop() ends the process and drops
// the database; cli(...args) runs another latch command against the same database.
export async function startLatch(smtp, env = {}) {
  const bin = process.env.LATCH_BIN;
  if (!bin) throw new Error("LATCH_BIN must name a latch binary (.ci/run builds one)");
  const db = `latch_clients_${randomBytes(6).toString("hex")}`;
  psql(`CREATE DATABASE ${db}`);
  const dbURL = new URL(adminURL);
  dbURL.pathname = `/${db}`;
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), "latch-clients-"));
  const base = `http://127.0.0.1:${port}`;
  const latchEnv = {
    PATH: process.env.PATH,
    LATCH_SERVER_ADDR: `127.0.0.1:${port}`,
    LATCH_DATABASE_URL: dbURL.toString(),
    LATCH_MAIL_DRIVER: "smtp",
    LATCH_MAIL_SMTP_HOST: "127.0.0.1",
    LATCH_MAIL_SMTP_PORT: String(smtp.port),
    LATCH_MAIL_SMTP_TLS: "none",
    LATCH_PASSWORD_ARGON2_MEMORY_KIB: "1024",
    LATCH_PASSWORD_ARGON2_ITERATIONS: "1",
    LATCH_RATELIMIT_IP_PER_MINUTE: "0",
    LATCH_LOG_LEVEL: "warn",
    // Postgres needs a key-encryption key; one is generated into this file at start.
    LATCH_SECRETS_ENCRYPTION_KEY_FILE: join(dir, "latch.kek"),
    ...(typeof env === "function" ? env(base) : env),
  };
  // cwd has no config.yaml: defaults plus the variables above.
  const child = spawn(bin, ["serve"], { cwd: dir, env: latchEnv, stdio: ["ignore", "ignore", "pipe"] });
  let log = "";
  child.stderr.on("data", (d) => { log += d; });
  const exited = new Promise((resolve) => child.once("exit", resolve));
  const stop = async () => {
    child.kill("SIGTERM");
    await exited;
    rmSync(dir, { recursive: true, force: true });
    psql(`DROP DATABASE IF EXISTS ${db} WITH (FORCE)`);
  };
  const deadline = Date.now() + 20_000;
  for (;;) {
    if (child.exitCode !== null) {
      await stop();
      throw new Error(`latch exited with ${child.exitCode}:\n${log}`);
    }
    try {
      if ((await fetch(`${base}/readyz`)).ok) break;
    } catch { /* not listening yet */ }
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`latch did not become ready:\n${log}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  // cli runs another latch command (tenant create, user create) on the same database and settings.
  const cli = (...args) => execFileSync(bin, args, { cwd: dir, env: latchEnv, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
  return { base, log: () => log, stop, cli };
}

// graphql posts one operation as any plain GraphQL client would.
export async function graphql(url, query, variables = {}, headers = {}) {
  const res = await fetch(url, {
    method: "POST",
    headers: { "Content-Type": "application/json", ...headers },
    body: JSON.stringify({ query, variables }),
  });
  return { status: res.status, body: await res.json() };
}

// signup registers an account over REST v2 and validates it with the emailed code.
export async function signup(base, smtp, email, password) {
  const post = (path, body) =>
    fetch(base + path, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
  const r = await post("/v2/auth/register", { email, password });
  if (r.status !== 201) throw new Error(`register: ${r.status} ${await r.text()}`);
  const v = await post("/v2/auth/validate-register", { email, emailToken: await smtp.codeFor(email) });
  if (v.status !== 200) throw new Error(`validate-register: ${v.status} ${await v.text()}`);
  return v.json();
}
