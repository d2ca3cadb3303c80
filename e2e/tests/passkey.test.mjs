// Passkeys (通行密钥) through Chromium's virtual WebAuthn authenticator (DevTools protocol):
// 1. a newcomer administrator registers a relying party in the admin page, adds a passkey under
//    "my account", and logs in to that system through tongban with the passkey alone;
// 2. step-up: a system that asks for acr hwk sends a password session back to confirm with a
//    passkey, and the session is renewed in place (same sid);
// 3. a citizen adds a passkey on the public side and logs in with it; it does not open staff pages.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { mkdirSync } from 'node:fs';
import { startServer, launchBrowser, totp } from './harness.mjs';

let server;
let browser;
let rp;
const RP = 'http://127.0.0.1:9104';
// The relying party the first test registers (the tests of a file run in order).
const archive = { id: 'county-archive', secret: '' };

before(async () => {
  mkdirSync('test-results', { recursive: true });
  server = await startServer({ localhost: true });
  browser = await launchBrowser();
  rp = await new Promise((ok) => {
    const s = createServer((req, res) => {
      const url = new URL(req.url, RP);
      const esc = (v) => (v ?? '').replace(/[&<>"]/g, (c) => `&#${c.charCodeAt(0)};`);
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      res.end(`<h1 id="rp">archive</h1><p id="code">${esc(url.searchParams.get('code'))}</p><p id="error">${esc(url.searchParams.get('error'))}</p>`);
    });
    s.listen(9104, '127.0.0.1', () => ok(s));
  });
});

after(async () => {
  rp?.close();
  await browser?.close();
  await server?.stop();
});

// A browser context with a virtual platform authenticator that verifies the user (like a
// fingerprint reader) and keeps resident keys.
async function withAuthenticator(context, page) {
  const cdp = await context.newCDPSession(page);
  await cdp.send('WebAuthn.enable');
  const { authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', {
    options: { protocol: 'ctap2', transport: 'internal', hasResidentKey: true, hasUserVerification: true, isUserVerified: true, automaticPresenceSimulation: true },
  });
  return { cdp, authenticatorId };
}

function authorizeUrl(clientId, extra = {}) {
  const q = new URLSearchParams({ response_type: 'code', client_id: clientId, redirect_uri: `${RP}/callback`, scope: 'openid profile', state: 's1', nonce: 'n1', ...extra });
  return `${server.base}/realms/staff/authorize?${q}`;
}

async function redeem(clientId, secret, code) {
  const resp = await fetch(`${server.api}/realms/staff/token`, {
    method: 'POST',
    headers: { authorization: `Basic ${Buffer.from(`${clientId}:${secret}`).toString('base64')}`, 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'authorization_code', code, redirect_uri: `${RP}/callback` }),
  });
  assert.equal(resp.status, 200, await resp.clone().text());
  const tokens = await resp.json();
  return JSON.parse(Buffer.from(tokens.id_token.split('.')[1], 'base64url').toString());
}

async function passwordLogin(page, username) {
  await page.getByLabel('用户名').fill(username);
  await page.getByLabel('密码').fill('Jiahe@2026');
  await page.getByRole('button', { name: '登录', exact: true }).click();
}

async function addPasskey(page, name) {
  await page.getByLabel('名称').fill(name);
  await page.getByRole('button', { name: '添加通行密钥' }).click();
  await page.waitForURL('**done=passkey_added');
  assert.match(await page.locator('#passkey-list').textContent(), new RegExp(name));
}

test('a newcomer registers a client in the admin page and logs in to it with a passkey', async () => {
  const context = await browser.newContext({ locale: 'zh-CN' });
  const page = await context.newPage();
  const { cdp, authenticatorId } = await withAuthenticator(context, page);

  // First log-in of the system administrator (password, then TOTP enrolment).
  await page.goto(`${server.base}/login`);
  await passwordLogin(page, 'sysadmin');
  await page.waitForURL('**/login/enrol');
  const totpSecret = (await page.locator('#totp-secret').textContent()).trim();
  await page.getByLabel('动态口令').fill(totp(totpSecret, -30));
  await page.getByRole('button', { name: '确认绑定' }).click();
  await page.getByRole('link', { name: '我已保存，继续' }).click();
  await page.waitForURL('**/workbench');

  // Register the county archive system as a relying party.
  await page.goto(`${server.base}/admin/clients/new`);
  await page.getByLabel('client_id').fill('county-archive');
  await page.getByLabel('名称').fill('县档案管理系统');
  await page.locator('#redirect_uris').fill(`${RP}/callback`);
  await page.getByRole('button', { name: '保存' }).click();
  const clientSecret = (await page.locator('#client-secret').textContent()).trim();
  assert.ok(clientSecret.length >= 32, 'the secret is shown once');
  archive.secret = clientSecret;

  // Add a passkey under "my account", then log out.
  await page.goto(`${server.base}/me/sessions`);
  await addPasskey(page, '办公室指纹');
  const { credentials } = await cdp.send('WebAuthn.getCredentials', { authenticatorId });
  assert.equal(credentials.length, 1);
  assert.equal(credentials[0].isResidentCredential, true, 'a passkey is discoverable');
  await page.getByRole('button', { name: '退出登录' }).click();
  await page.waitForURL('**/login');

  // The archive system sends the user to tongban; a passkey alone logs in (no password, no TOTP).
  await page.goto(authorizeUrl('county-archive'));
  await page.waitForURL('**/login');
  await page.screenshot({ path: 'test-results/passkey-login.png', fullPage: true });
  await page.getByRole('button', { name: '使用通行密钥登录' }).click();
  // A system registered by hand is not first-party: the user consents once.
  await page.getByText('县档案管理系统').waitFor();
  await page.getByRole('button', { name: '同意并继续' }).click();
  await page.waitForURL(`${RP}/callback**`);
  const code = (await page.locator('#code').textContent()).trim();
  assert.ok(code.length > 20, 'the archive system received a code');
  const idToken = await redeem('county-archive', clientSecret, code);
  assert.equal(idToken.preferred_username, 'sysadmin');
  assert.deepEqual(idToken.amr, ['hwk', 'user', 'mfa']);
  assert.equal(idToken.acr, 'urn:tongban:acr:hwk');

  // The passkey's use is on record in "my account".
  await page.goto(`${server.base}/me/sessions`);
  const row = await page.locator('#passkey-list tbody tr').first().textContent();
  assert.match(row, /办公室指纹.*\d{4}-\d{2}-\d{2}.*\d{4}-\d{2}-\d{2}/s, 'created and last used are shown');
  await context.close();
});

test('step-up: a system asking for a passkey gets the password session confirmed in place', async () => {
  const context = await browser.newContext({ locale: 'zh-CN' });
  const page = await context.newPage();
  await withAuthenticator(context, page);
  await page.goto(`${server.base}/login`);
  await passwordLogin(page, 'zhoujun');
  await page.waitForURL('**/workbench');
  await page.goto(`${server.base}/me/sessions`);
  await addPasskey(page, '笔记本电脑');

  // A sensitive action in the archive system demands hwk: the password session must be
  // confirmed with a passkey (the user name is kept, the notice says why).
  await page.goto(authorizeUrl(archive.id, { acr_values: 'urn:tongban:acr:hwk' }));
  await page.waitForURL('**/login?reauth=hwk');
  assert.match(await page.locator('#reauth-notice').textContent(), /通行密钥/);
  assert.equal(await page.getByLabel('用户名').inputValue(), 'zhoujun');
  await page.getByRole('button', { name: '使用通行密钥登录' }).click();
  await page.getByRole('button', { name: '同意并继续' }).click();
  await page.waitForURL(`${RP}/callback**`);
  const claims = await redeem(archive.id, archive.secret, (await page.locator('#code').textContent()).trim());
  assert.equal(claims.preferred_username, 'zhoujun');
  assert.equal(claims.acr, 'urn:tongban:acr:hwk');

  // The same session: "my account" still lists one session, no second log-in was opened.
  await page.goto(`${server.base}/me/sessions`);
  assert.equal(await page.getByText('当前会话').count(), 1);
  await context.close();
});

test('a citizen adds a passkey and logs in with it; it opens no staff page', async () => {
  const context = await browser.newContext({ locale: 'zh-CN' });
  const page = await context.newPage();
  await withAuthenticator(context, page);
  await page.goto(`${server.base}/public/login`);
  await page.getByLabel('手机号码或证件号码').fill('13807351234');
  await page.getByLabel('密码').fill('Jiahe@2026');
  await page.getByRole('button', { name: '登录', exact: true }).click();
  await page.waitForURL('**/public');
  await addPasskey(page, '我的手机');
  await page.getByRole('button', { name: '退出', exact: true }).click();
  await page.waitForURL('**/public/login');

  await page.getByRole('button', { name: '使用通行密钥登录' }).click();
  await page.waitForURL('**/public');
  await page.locator('#public-me').waitFor();

  // The staff log-in refuses the citizen's key: it belongs to the public realm only.
  await page.goto(`${server.base}/login`);
  await page.getByRole('button', { name: '使用通行密钥登录' }).click();
  await page.locator('[data-passkey-message]').filter({ hasText: '通行密钥验证失败' }).waitFor();
  assert.match(page.url(), /\/login$/);
  await context.close();
});
