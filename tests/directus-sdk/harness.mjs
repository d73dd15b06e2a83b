// A real Latch for the SDK test: the built binary on a fresh Postgres database, its mail going to an
// SMTP capture in this process. Nothing here knows Latch's internals; it talks HTTP and SMTP.
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { SMTPServer } from 'smtp-server';

const adminURL = process.env.TEST_DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable';

// Mailbox is an SMTP server on loopback that keeps every message by recipient.
export class Mailbox {
  #messages = new Map(); // address -> [raw message]
  #seen = new Map(); // address -> how many were taken
  #server;

  async start() {
    this.#server = new SMTPServer({
      authOptional: true,
      disabledCommands: ['STARTTLS', 'AUTH'],
      logger: false,
      onData: (stream, session, done) => {
        const chunks = [];
        stream.on('data', (c) => chunks.push(c));
        stream.on('end', () => {
          const raw = Buffer.concat(chunks).toString('utf8');
          for (const rcpt of session.envelope.rcptTo) {
            const to = rcpt.address.toLowerCase();
            if (!this.#messages.has(to)) this.#messages.set(to, []);
            this.#messages.get(to).push(raw);
          }
          done();
        });
      },
    });
    await new Promise((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen(0, '127.0.0.1', resolve);
    });
    return this.#server.server.address().port;
  }

  // count is how many messages the address has received.
  count(address) {
    return (this.#messages.get(address.toLowerCase()) || []).length;
  }

  // nextMessage waits for the next message to the address and returns it, raw.
  async nextMessage(address) {
    const to = address.toLowerCase();
    const deadline = Date.now() + 10_000;
    for (;;) {
      const list = this.#messages.get(to) || [];
      const seen = this.#seen.get(to) || 0;
      if (list.length > seen) {
        this.#seen.set(to, seen + 1);
        return list[seen];
      }
      if (Date.now() > deadline) throw new Error(`no message to ${address} within 10 s`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  // nextCode waits for the next message to the address that carries a six-digit code and returns the
  // code; security notices (authenticator turned on or off) carry none and are passed over.
  async nextCode(address) {
    for (;;) {
      const m = /code: (\d{6})/.exec(await this.nextMessage(address));
      if (m) return m[1];
    }
  }

  close() {
    return new Promise((resolve) => this.#server.close(resolve));
  }
}

function psql(sql) {
  execFileSync('psql', [adminURL, '-v', 'ON_ERROR_STOP=1', '-q', '-c', sql], { stdio: ['ignore', 'ignore', 'inherit'] });
}

// startLatch runs `latch serve` on a fresh database and resolves with its base URL once it listens.
export async function startLatch(smtpPort, env = {}) {
  const bin = process.env.LATCH_BIN;
  if (!bin) throw new Error('LATCH_BIN must name a built latch binary (see .ci/run)');
  const db = 'latch_sdk_' + randomBytes(6).toString('hex');
  psql(`CREATE DATABASE ${db}`);
  const dbURL = new URL(adminURL);
  dbURL.pathname = '/' + db;
  const dir = mkdtempSync(join(tmpdir(), 'latch-sdk-'));
  const latchEnv = {
      PATH: process.env.PATH,
      LATCH_DATABASE_URL: dbURL.toString(),
      LATCH_SERVER_ADDR: '127.0.0.1:0',
      LATCH_MAIL_DRIVER: 'smtp',
      LATCH_MAIL_SMTP_HOST: '127.0.0.1',
      LATCH_MAIL_SMTP_PORT: String(smtpPort),
      LATCH_MAIL_SMTP_TLS: 'none',
      LATCH_CODES_RESEND_COOLDOWN: '0s',
      LATCH_RATELIMIT_IP_PER_MINUTE: '0',
      LATCH_PASSWORD_ARGON2_MEMORY_KIB: '8192',
      LATCH_PASSWORD_ARGON2_ITERATIONS: '1',
      // Postgres needs a key-encryption key; one is generated into this file at start.
      LATCH_SECRETS_ENCRYPTION_KEY_FILE: join(dir, 'latch.kek'),
      ...env,
  };
  const child = spawn(bin, ['serve'], {
    cwd: dir, // no config.yaml there: defaults plus the environment above
    env: latchEnv,
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let log = '';
  const base = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('latch did not start within 30 s:\n' + log)), 30_000);
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk) => {
      log += chunk;
      for (const line of log.split('\n')) {
        try {
          const entry = JSON.parse(line);
          if (entry.msg === 'listening') {
            clearTimeout(timer);
            resolve('http://' + entry.addr);
          }
        } catch {
          // a partial line; the rest comes with the next chunk
        }
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`latch exited with ${code}:\n${log}`));
    });
  });
  return {
    base,
    log: () => log,
    // cli runs a latch command (tenant create, user create ...) against the same database.
    cli: (...args) => execFileSync(bin, args, { cwd: dir, env: latchEnv, stdio: ['ignore', 'ignore', 'inherit'] }),
    async stop() {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await exited;
      rmSync(dir, { recursive: true, force: true });
      psql(`DROP DATABASE IF EXISTS ${db} WITH (FORCE)`);
    },
  };
}

// signup registers an account through Latch's own v2 API and confirms it with the emailed code.
export async function signup(base, mailbox, email, password) {
  const post = async (path, body) => {
    const r = await fetch(base + path, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
    if (!r.ok) throw new Error(`${path}: ${r.status} ${await r.text()}`);
  };
  await post('/v2/auth/register', { email, password });
  await post('/v2/auth/validate-register', { email, emailToken: await mailbox.nextCode(email) });
}
