// The whole approval story in a browser: an enterprise registers and applies online with
// uploads, the window clerk accepts, three departments review in parallel, the lead department
// decides, the applicant sees 办结 and rates the service.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { startServer, launchBrowser } from './harness.mjs';

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

// A unified social credit code with its GB 32100 check character.
function creditCode(prefix) {
  const chars = '0123456789ABCDEFGHJKLMNPQRTUWXY';
  const weights = [1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28];
  const sum = [...prefix].reduce((s, c, i) => s + chars.indexOf(c) * weights[i], 0);
  return prefix + chars[(31 - (sum % 31)) % 31];
}

async function staffPage(username) {
  const context = await browser.newContext({ locale: 'zh-CN' });
  const page = await context.newPage();
  await page.goto(`${server.base}/login`);
  await page.getByLabel('用户名').fill(username);
  await page.getByLabel('密码').fill('Jiahe@2026');
  await page.getByRole('button', { name: '登录', exact: true }).click();
  await page.waitForURL('**/workbench');
  return page;
}

async function handleTask(username, number, step, decide = false) {
  const page = await staffPage(username);
  await page.goto(`${server.base}/tasks`);
  await page.locator('#tasks tr', { hasText: number }).filter({ hasText: step }).getByRole('link', { name: step }).click();
  await page.getByRole('button', { name: '签收' }).click();
  await page.getByLabel('办理意见').fill(decide ? '经审查，符合规划条件，准予许可。' : '同意。');
  // Only the decision step asks for a decision, and nothing is chosen for the decider.
  if (decide) await page.getByRole('radio', { name: '同意', exact: true }).check();
  await page.getByRole('button', { name: '提交' }).click();
  await page.waitForURL('**/tasks?done=task_done');
  await page.context().close();
}

test('an enterprise applies online and the county processes it to 办结', async () => {
  mkdirSync('test-results', { recursive: true });
  const context = await browser.newContext({ locale: 'zh-CN', viewport: { width: 390, height: 844 } });
  const citizen = await context.newPage();
  const code = creditCode('91431024MA4N8PQ3X');
  await citizen.goto(`${server.base}/public/register`);
  await citizen.getByLabel('企业（法人）').check();
  await citizen.getByLabel('姓名或单位名称').fill('嘉禾县晋屏置业有限公司');
  await citizen.getByLabel('公民身份号码或统一社会信用代码').fill(code);
  await citizen.getByLabel('手机号码').fill('13973501234');
  await citizen.getByLabel('密码', { exact: true }).fill('Citizen#2026');
  await citizen.getByLabel('再次输入密码').fill('Citizen#2026');
  await citizen.getByRole('button', { name: '注册' }).click();
  await citizen.waitForURL('**/public?done=registered');

  await citizen.getByRole('link', { name: '查找办事事项' }).click();
  await citizen.getByRole('link', { name: '建设工程规划许可证核发' }).click();
  await citizen.getByRole('button', { name: '在线申请' }).click();
  await citizen.waitForURL(/\/public\/applications\/\d+$/);
  const applicationUrl = citizen.url();
  for (let i = 0; i < 4; i++) {
    await citizen.locator(`#file-${i}`).setInputFiles({ name: `材料${i + 1}.pdf`, mimeType: 'application/pdf', buffer: Buffer.from(`%PDF-1.7 demo ${i}`) });
    await citizen.locator(`#material-${i}`).getByRole('button', { name: '上传' }).click();
    await citizen.waitForURL('**?done=material_uploaded');
  }
  await citizen.getByLabel('项目名称').fill('晋屏镇滨河商住小区');
  await citizen.getByLabel('建设单位（个人）名称').fill('嘉禾县晋屏置业有限公司');
  await citizen.getByLabel('统一社会信用代码').fill(code);
  await citizen.getByLabel('用地面积（平方米）').fill('8600');
  await citizen.getByLabel('总建筑面积（平方米）').fill('25800');
  await citizen.getByLabel('联系电话').fill('13973501234');
  await citizen.getByRole('button', { name: '提交申请' }).click();
  await citizen.waitForURL('**/receipt');
  const number = (await citizen.locator('#receipt-number').textContent()).trim();
  assert.match(number, /^JH\d{13}$/);
  await citizen.screenshot({ path: 'test-results/receipt.png', fullPage: true });

  const clerk = await staffPage('liuyang');
  await clerk.getByRole('link', { name: '受理台' }).click();
  for (let i = 0; i < 20 && !(await clerk.getByRole('link', { name: number }).count()); i++) {
    await clerk.waitForTimeout(300);
    await clerk.reload();
  }
  await clerk.getByRole('link', { name: number }).click();
  await clerk.getByRole('button', { name: '受理', exact: true }).click();
  await clerk.waitForURL('**?done=case_updated');
  assert.equal((await clerk.locator('#case-status').textContent()).trim(), '办理中');
  await clerk.context().close();

  await handleTask('zhoujun', number, '规划审查');
  await handleTask('xuhui', number, '建设条件审查');
  await handleTask('fangyuan', number, '消防设计审查');
  await handleTask('zhoujun', number, '审批决定', true);

  for (let i = 0; i < 20; i++) {
    await citizen.goto(applicationUrl);
    if ((await citizen.locator('#application-status').textContent()).includes('已办结')) break;
    await citizen.waitForTimeout(300);
  }
  assert.equal((await citizen.locator('#application-status').textContent()).trim(), '已办结（准予）');
  // The decision document was delivered to the account; opening it is the receipt (送达).
  // (Opened in this tab rather than the link's new one: waiting for a pop-up is timing-sensitive
  // on a loaded CI machine.)
  const href = await citizen.locator('#result a').getAttribute('href');
  const doc = await citizen.context().newPage();
  await doc.goto(new URL(href, citizen.url()).toString());
  assert.match(await doc.locator('h1').textContent(), /准予行政许可决定书/);
  assert.match(await doc.locator('.no').textContent(), /嘉审批〔\d{4}〕\d+号/);
  await doc.close();
  await citizen.reload();
  assert.match(await citizen.locator('#result').textContent(), /已签收/);
  await citizen.getByLabel('非常满意').check();
  await citizen.getByRole('button', { name: '提交评价' }).click();
  await citizen.waitForURL('**?done=rated');
  assert.match(await citizen.locator('#my-rating').textContent(), /非常满意/);
  await citizen.screenshot({ path: 'test-results/application-completed.png', fullPage: true });

  const sup = await staffPage('jiangwei');
  await sup.getByRole('link', { name: '电子监察' }).click();
  assert.ok(Number((await sup.locator('#fig-completed').textContent()).trim()) >= 2, 'the dashboard counts the completion');
  await sup.context().close();
  await context.close();
});
