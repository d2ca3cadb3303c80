// Electronic seals in a browser, and the package checked outside tongban: the security
// administrator issues the service hall's seal certificate and registers its seal image, the hall's
// office director seals a notice and downloads the package, the verification page says it is
// valid, and sm-crypto (an independent SM2/SM3 implementation from npm) re-hashes the document
// and checks the SM2 signature with the key in the signer's certificate.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { X509Certificate } from 'node:crypto';
import smCrypto from 'sm-crypto';
import { startServer, launchBrowser, logIn as logInAs, SEAL_PNG } from './harness.mjs';

const { sm2, sm3 } = smCrypto;
let server;
let browser;

before(async () => {
  server = await startServer();
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

test('a unit seals a notice, the page verifies it, and an independent SM2/SM3 library agrees', async () => {
  // The security administrator: seal certificate and seal image for the service hall.
  const admin = await logInAs(server, await browser.newContext({ locale: 'zh-CN' }), 'secadmin', { enrol: true });
  await admin.goto(`${server.base}/admin/pki`);
  await admin.locator('#unit_id').selectOption({ label: '行政审批服务局（政务服务中心）' });
  await admin.getByRole('button', { name: '签发' }).nth(1).click();
  await admin.waitForURL('**/admin/pki?done=certificate_issued');
  await admin.locator('#seal_unit').selectOption({ label: '行政审批服务局（政务服务中心）' });
  await admin.locator('#image').setInputFiles({ name: 'seal.png', mimeType: 'image/png', buffer: SEAL_PNG });
  await admin.getByRole('button', { name: '登记单位印章' }).click();
  await admin.waitForURL('**/admin/pki?done=seal_registered');

  // The office director seals a notice.
  const context = await browser.newContext({ locale: 'zh-CN', acceptDownloads: true });
  const page = await logInAs(server, context, 'zhaomin');
  await page.getByRole('link', { name: '用印' }).click();
  await page.getByLabel('文件标题').fill('关于公布政务服务事项目录的通知');
  await page.getByLabel('发文字号').fill('嘉审批发〔2026〕3号');
  const notice = Buffer.from('%PDF-1.7\n嘉禾县行政审批服务局关于公布政务服务事项目录的通知\n');
  await page.locator('#file').setInputFiles({ name: 'notice.pdf', mimeType: 'application/pdf', buffer: notice });
  const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: '盖章并下载' }).click()]);
  const packagePath = await download.path();
  const bytes = readFileSync(packagePath);

  // The verification page, without logging in.
  const anyone = await (await browser.newContext({ locale: 'zh-CN' })).newPage();
  await anyone.goto(`${server.base}/verify`);
  await anyone.locator('#package').setInputFiles({ name: 'notice.tbseal.json', mimeType: 'application/json', buffer: bytes });
  await anyone.getByRole('button', { name: '核验' }).click();
  await anyone.locator('#verdict').waitFor();
  assert.match(await anyone.locator('#verdict').textContent(), /印章有效/);
  assert.match(await anyone.locator('#v-unit').textContent(), /行政审批服务局/);
  await anyone.screenshot({ path: 'test-results/seal-verified.png', fullPage: true });

  // Outside tongban: sm-crypto re-hashes the document and checks the SM2 signature.
  const pkg = JSON.parse(bytes.toString('utf8'));
  const manifest = JSON.parse(pkg.manifest);
  const file = Buffer.from(pkg.file, 'base64');
  assert.deepEqual(file, notice, 'the sealed document is the uploaded one');
  assert.equal(sm3(Array.from(file)), manifest.file.sm3, 'SM3 of the document (GB/T 32905) agrees');
  assert.equal(manifest.metadata.doc_number, '嘉审批发〔2026〕3号');
  const spki = new X509Certificate(pkg.certificates[0]).publicKey.export({ type: 'spki', format: 'der' });
  const point = spki.subarray(spki.length - 65).toString('hex');
  const signature = Buffer.from(pkg.signature.value, 'base64').toString('hex');
  const message = Array.from(Buffer.from(pkg.manifest, 'utf8'));
  assert.equal(pkg.signature.algorithm, 'sm2-with-sm3');
  assert.ok(sm2.doVerifySignature(message, signature, point, { der: true, hash: true, userId: pkg.signature.user_id }), 'SM2 signature verifies');
  const changed = Array.from(Buffer.from(pkg.manifest.replace('3号', '4号'), 'utf8'));
  assert.ok(!sm2.doVerifySignature(changed, signature, point, { der: true, hash: true, userId: pkg.signature.user_id }), 'a changed manifest does not');
  await context.close();
});
