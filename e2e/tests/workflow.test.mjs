// Workflow and calendar journeys: the system administrator uploads a process drawn in the bpmn.io
// modeler; a window clerk starts it; a department's staff member finds it in the to-do list,
// claims and completes it; a staff member reads the 2026 holiday calendar.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
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

async function logIn(page, username) {
  await page.goto(`${server.base}/login`);
  await page.getByLabel('用户名').fill(username);
  await page.getByLabel('密码').fill('Jiahe@2026');
  await page.getByRole('button', { name: '登录', exact: true }).click();
}

async function logOut(page) {
  await page.getByRole('button', { name: '退出登录' }).click();
  await page.waitForURL('**/login');
}

test('a process file is uploaded, started and handled from the to-do list', async () => {
  mkdirSync('test-results', { recursive: true });
  const fixture = readFileSync(new URL('../../crates/workflow/tests/fixtures/parallel_approval.bpmn', import.meta.url), 'utf8')
    .replace('tongban:candidateUnit="行政审批服务局"', 'tongban:candidateUnit="行政审批服务局（政务服务中心）"');
  const file = join(mkdtempSync(join(tmpdir(), 'tb-bpmn-')), 'parallel_approval.bpmn');
  writeFileSync(file, fixture);

  const page = await browser.newPage({ locale: 'zh-CN' });
  await logIn(page, 'sysadmin');
  await page.waitForURL('**/login/enrol');
  const secret = (await page.locator('#totp-secret').textContent()).trim();
  await page.getByLabel('动态口令').fill(totp(secret, -30));
  await page.getByRole('button', { name: '确认绑定' }).click();
  await page.getByRole('link', { name: '我已保存，继续' }).click();
  await page.getByRole('link', { name: '流程定义' }).click();
  await page.getByLabel('BPMN 文件').setInputFiles(file);
  await page.getByRole('button', { name: '上传' }).click();
  await page.waitForURL(/\/admin\/workflows\/\d+\?done=definition_saved/);
  await page.locator('figure.diagram svg').waitFor();
  assert.ok(await page.getByRole('cell', { name: '自然资源局审查 Task_land' }).isVisible());
  await page.screenshot({ path: 'test-results/workflow-definition.png', fullPage: true });
  const definitionUrl = page.url().split('?')[0];
  await logOut(page);

  await logIn(page, 'liuyang');
  await page.waitForURL('**/workbench');
  await page.goto(definitionUrl);
  await page.getByLabel('标题').fill('嘉禾县某商住楼项目并联审批');
  await page.getByLabel('业务编号').fill('JH-2026-0042');
  await page.getByRole('button', { name: '发起', exact: true }).click();
  await page.waitForURL(/\/workflow\/instances\/\d+/);
  assert.equal((await page.locator('#instance-status').textContent()).trim(), '办理中');
  await logOut(page);

  await logIn(page, 'zhoujun');
  await page.waitForURL('**/workbench');
  await page.getByRole('link', { name: '待办事项' }).click();
  await page.getByRole('link', { name: '自然资源局审查' }).click();
  await page.getByRole('button', { name: '签收' }).click();
  await page.getByLabel('办理意见').fill('用地符合规划，同意。');
  await page.getByRole('button', { name: '提交' }).click();
  await page.waitForURL('**/tasks?done=task_done');
  await page.getByRole('link', { name: '已办事项' }).click();
  await page.getByRole('cell', { name: '用地符合规划，同意。' }).waitFor();
  await page.screenshot({ path: 'test-results/workflow-done.png', fullPage: true });
  await page.close();
});

test('the 2026 calendar marks the Spring Festival and its make-up working days', async () => {
  const page = await browser.newPage({ locale: 'zh-CN' });
  await logIn(page, 'huangli');
  await page.waitForURL('**/workbench');
  await page.getByRole('link', { name: '工作日历' }).click();
  await page.goto(`${server.base}/admin/calendar?year=2026`);
  const body = await page.locator('main').textContent();
  assert.match(body, /春节/);
  assert.match(body, /国务院办公厅/);
  await page.screenshot({ path: 'test-results/calendar-2026.png', fullPage: true });
  await page.close();
});
