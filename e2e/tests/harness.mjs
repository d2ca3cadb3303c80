// Starts a tongban server on a free port with fresh demo data, and a headless Chromium.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createServer } from 'node:net';
import { createHmac } from 'node:crypto';
import { chromium } from 'playwright-core';

const root = resolve(import.meta.dirname, '..', '..');

function freePort() {
  return new Promise((ok, fail) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => ok(port)); });
    s.on('error', fail);
  });
}

// `localhost: true` serves the pages at http://localhost:PORT (server.public_url), the origin
// passkeys are bound to: browsers refuse WebAuthn on a bare IP address. `api` stays on 127.0.0.1
// for the test's own requests.
export async function startServer({ localhost = false } = {}) {
  const bin = process.env.TONGBAN_BIN || join(root, 'target', 'debug', 'tongban');
  const dir = mkdtempSync(join(tmpdir(), 'tongban-e2e-'));
  const port = await freePort();
  const env = { ...process.env, TONGBAN_DATA_DIR: dir, TONGBAN_SERVER__BIND: `127.0.0.1:${port}` };
  if (localhost) env.TONGBAN_SERVER__PUBLIC_URL = `http://localhost:${port}`;
  delete env.TONGBAN_CONFIG;
  delete env.TONGBAN_BIN;
  delete env.TONGBAN_DATABASE__URL;
  const proc = spawn(bin, ['serve', '--demo'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  proc.stdout.on('data', (d) => { output += d; });
  proc.stderr.on('data', (d) => { output += d; });
  const api = `http://127.0.0.1:${port}`;
  const base = localhost ? `http://localhost:${port}` : api;
  for (let i = 0; i < 150; i++) {
    try {
      const r = await fetch(`${api}/healthz`);
      if (r.ok) break;
    } catch { /* not up yet */ }
    if (proc.exitCode !== null) throw new Error(`tongban exited: ${output}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    base,
    api,
    output: () => output,
    // Stops the server (it writes an audit checkpoint on the way out), then removes its data.
    stop: async () => {
      if (proc.exitCode === null && proc.signalCode === null) {
        let timer;
        const exited = new Promise((ok) => proc.once('exit', ok));
        proc.kill('SIGTERM');
        // Clear the timer afterwards, or it keeps the test process alive for the full 10 s.
        await Promise.race([exited, new Promise((ok) => { timer = setTimeout(ok, 10_000); })]);
        clearTimeout(timer);
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export async function launchBrowser() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM_PATH || '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}

function base32Decode(s) {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = '';
  for (const c of s.replace(/=+$/, '').toUpperCase()) bits += alphabet.indexOf(c).toString(2).padStart(5, '0');
  const bytes = [];
  for (let i = 0; i + 8 <= bits.length; i += 8) bytes.push(parseInt(bits.slice(i, i + 8), 2));
  return Buffer.from(bytes);
}

// RFC 6238 TOTP (SHA-1, 6 digits, 30 s) at now + offsetSeconds, as an authenticator app computes it.
export function totp(secret, offsetSeconds = 0) {
  const counter = Math.floor((Date.now() / 1000 + offsetSeconds) / 30);
  const msg = Buffer.alloc(8);
  msg.writeBigUInt64BE(BigInt(counter));
  const h = createHmac('sha1', base32Decode(secret)).update(msg).digest();
  const o = h[h.length - 1] & 0xf;
  const n = ((h[o] & 0x7f) << 24) | (h[o + 1] << 16) | (h[o + 2] << 8) | h[o + 3];
  return String(n % 1_000_000).padStart(6, '0');
}

// A 1×1 PNG standing in for a seal's scan.
export const SEAL_PNG = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==', 'base64');

// Logs a demo account in on a new page of `context` (enrolling TOTP for an administrator's first
// log-in) and answers the page at the workbench.
export async function logIn(server, context, username, { enrol = false } = {}) {
  const page = await context.newPage();
  await page.goto(`${server.base}/login`);
  await page.getByLabel('用户名').fill(username);
  await page.getByLabel('密码').fill('Jiahe@2026');
  await page.getByRole('button', { name: '登录', exact: true }).click();
  if (enrol) {
    await page.waitForURL('**/login/enrol');
    const secret = (await page.locator('#totp-secret').textContent()).trim();
    await page.getByLabel('动态口令').fill(totp(secret, -30));
    await page.getByRole('button', { name: '确认绑定' }).click();
    await page.getByRole('link', { name: '我已保存，继续' }).click();
  }
  await page.waitForURL('**/workbench');
  return page;
}
