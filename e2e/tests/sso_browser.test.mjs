// Single sign-on in a browser: a staff member logs in once through the legacy OA, opens the
// 12345 system without logging in again (consenting the first time), sees both systems under
// "my account", and logging out from the OA logs the browser out of tongban too, so the 12345
// system asks for a log-in again. The two relying parties are played by small servers on their
// registered addresses whose callback pages show the code they received.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import { startServer, launchBrowser } from './harness.mjs';

let server;
let browser;
let relyingParties = [];

before(async () => {
  server = await startServer();
  browser = await launchBrowser();
  relyingParties = await Promise.all([playRelyingParty(9101), playRelyingParty(9102)]);
});

after(async () => {
  for (const rp of relyingParties) rp.close();
  await browser?.close();
  await server?.stop();
});

const OA = 'http://127.0.0.1:9101';
const HOTLINE = 'http://127.0.0.1:9102';

function authorizeUrl(clientId, redirect, scope, pkce) {
  const q = new URLSearchParams({ response_type: 'code', client_id: clientId, redirect_uri: redirect, scope, state: `st-${clientId}`, nonce: 'n' });
  if (pkce) {
    q.set('code_challenge', createHash('sha256').update(pkce).digest('base64url'));
    q.set('code_challenge_method', 'S256');
  }
  return `${server.base}/realms/staff/authorize?${q}`;
}

// The relying parties' callback pages: small servers on their registered addresses that show
// what arrived (a redirect is followed by the browser's network stack, so it cannot be faked by
// request interception).
function playRelyingParty(port) {
  const server = createServer((req, res) => {
    const url = new URL(req.url, `http://127.0.0.1:${port}`);
    const esc = (v) => (v ?? '').replace(/[&<>"]/g, (c) => `&#${c.charCodeAt(0)};`);
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    res.end(`<h1 id="rp">${port}</h1><p id="code">${esc(url.searchParams.get('code'))}</p><p id="state">${esc(url.searchParams.get('state'))}</p>`);
  });
  return new Promise((ok) => server.listen(port, '127.0.0.1', () => ok(server)));
}

test('log in once to the OA, open the 12345 system without a second log-in, log out everywhere', async () => {
  const context = await browser.newContext({ locale: 'zh-CN' });
  const page = await context.newPage();

  // The OA sends the user to tongban; tongban asks for the log-in, then returns to the OA.
  await page.goto(authorizeUrl('legacy-oa', `${OA}/callback`, 'openid profile unit'));
  await page.waitForURL('**/login');
  await page.getByLabel('用户名').fill('zhoujun');
  await page.getByLabel('密码').fill('Jiahe@2026');
  await page.getByRole('button', { name: '登录', exact: true }).click();
  await page.waitForURL(`${OA}/callback**`);
  const oaCode = (await page.locator('#code').textContent()).trim();
  assert.ok(oaCode.length > 20, 'the OA received a code');
  assert.equal((await page.locator('#state').textContent()).trim(), 'st-legacy-oa');

  // The OA redeems it (server to server) and keeps the ID token for the logout later.
  const basic = Buffer.from('legacy-oa:demo-legacy-oa-secret-change-me').toString('base64');
  const tokenResp = await fetch(`${server.base}/realms/staff/token`, {
    method: 'POST',
    headers: { authorization: `Basic ${basic}`, 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'authorization_code', code: oaCode, redirect_uri: `${OA}/callback` }),
  });
  assert.equal(tokenResp.status, 200);
  const tokens = await tokenResp.json();

  // The 12345 system: no second log-in; its first visit asks for consent.
  const verifier = randomBytes(32).toString('base64url');
  await page.goto(authorizeUrl('hotline-12345', `${HOTLINE}/callback`, 'openid profile phone', verifier));
  await page.getByText('12345政务服务便民热线系统').waitFor();
  assert.match(await page.locator('#consent-scopes').textContent(), /手机号码/);
  await page.getByRole('button', { name: '同意并继续' }).click();
  await page.waitForURL(`${HOTLINE}/callback**`);
  assert.ok((await page.locator('#code').textContent()).trim().length > 20, 'the 12345 system received a code without a log-in page');

  // "My account" lists the systems the user let in.
  await page.goto(`${server.base}/me/sessions`);
  const grants = await page.locator('#app-grants').textContent();
  assert.match(grants, /12345政务服务便民热线系统/);

  // Logging out from the OA ends the tongban session: the 12345 system must ask again.
  const logout = new URLSearchParams({ id_token_hint: tokens.id_token, post_logout_redirect_uri: `${OA}/`, state: 'bye' });
  await page.goto(`${server.base}/realms/staff/logout?${logout}`);
  await page.waitForURL(`${OA}/?state=bye`);
  await page.goto(authorizeUrl('hotline-12345', `${HOTLINE}/callback`, 'openid profile phone', verifier));
  await page.waitForURL('**/login');
  await page.screenshot({ path: 'test-results/sso-logged-out.png', fullPage: true });
  await context.close();
});
