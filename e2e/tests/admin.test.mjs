// The system administrator's first day: log in (enrolling TOTP), create a unit and a user, log out.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { startServer, launchBrowser, totp } from './harness.mjs';

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

test('demo system admin logs in, creates a unit and a user, logs out', async () => {
  mkdirSync('test-results', { recursive: true });
  const page = await browser.newPage({ locale: 'zh-CN' });
  await page.goto(`${server.base}/`);
  assert.match(await page.title(), /工作人员登录/);

  await page.getByLabel('用户名').fill('sysadmin');
  await page.getByLabel('密码').fill('Jiahe@2026');
  await page.getByRole('button', { name: '登录', exact: true }).click();

  // First log-in of an administrator: enrol an authenticator.
  await page.waitForURL('**/login/enrol');
  const secret = (await page.locator('#totp-secret').textContent()).trim();
  await page.getByLabel('动态口令').fill(totp(secret, -30));
  await page.getByRole('button', { name: '确认绑定' }).click();
  await page.locator('#recovery-codes li').first().waitFor();
  assert.equal(await page.locator('#recovery-codes li').count(), 10);
  await page.getByRole('link', { name: '我已保存，继续' }).click();
  await page.waitForURL('**/workbench');
  await page.screenshot({ path: 'test-results/workbench.png', fullPage: true });

  // Create a unit under the county government.
  await page.getByRole('link', { name: '单位管理' }).click();
  await page.getByRole('link', { name: '新建单位' }).click();
  await page.getByLabel('名称').fill('县数据资源局');
  await page.getByLabel('上级单位').selectOption({ label: '嘉禾县人民政府' });
  await page.getByLabel('类型').selectOption('department');
  await page.getByLabel('行政区划代码').selectOption('431024');
  await page.getByRole('button', { name: '保存' }).click();
  await page.waitForURL('**/admin/units?done=unit_saved');
  await page.getByRole('cell', { name: '县数据资源局' }).waitFor();

  // Create an account in it.
  await page.getByRole('link', { name: '账号管理' }).click();
  await page.getByRole('link', { name: '新建账号' }).click();
  await page.getByLabel('用户名').fill('chenjing');
  await page.getByLabel('姓名').fill('陈静');
  await page.getByLabel('所属单位').selectOption({ label: '　县数据资源局' });
  await page.getByLabel('职务').fill('数据管理科科长');
  await page.getByRole('button', { name: '保存' }).click();
  const oneTime = (await page.locator('#one-time-password').textContent()).trim();
  assert.ok(oneTime.length >= 12, 'a one-time password is shown once');
  assert.ok(await page.getByText('县数据资源局').first().isVisible());
  await page.screenshot({ path: 'test-results/user-created.png', fullPage: true });

  // Log out.
  await page.getByRole('button', { name: '退出登录' }).click();
  await page.waitForURL('**/login');
  assert.match(await page.title(), /工作人员登录/);
  await page.goto(`${server.base}/admin/units`);
  await page.waitForURL('**/login');
});
