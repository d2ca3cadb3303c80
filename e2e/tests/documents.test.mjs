// Official document exchange (公文交换) in a browser: the security administrator gives the service
// hall and the natural resources bureau their seals and makes 周军 his bureau's document office;
// the hall's office drafts a notice and sends it for review, countersigning by the housing bureau
// (会签) and sign-off; it numbers it (嘉审批发〔year〕N号), seals it and sends it to a distribution
// group of three bureaus; one bureau signs for it with its seal; the hall's tracking shows the
// signed receipt beside the others' states.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, launchBrowser, logIn as logInAs, SEAL_PNG } from './harness.mjs';

let server;
let browser;
const logIn = (context, username, options) => logInAs(server, context, username, options);

before(async () => {
  server = await startServer();
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

const HALL = '行政审批服务局（政务服务中心）';
const LAND = '自然资源局';
const HOUSING = '住房和城乡建设局';

test('the hall issues a sealed notice to the bureau and sees its signed receipt', async () => {
  // Set-up by the security administrator.
  const admin = await logIn(await browser.newContext({ locale: 'zh-CN' }), 'secadmin', { enrol: true });
  for (const unit of [HALL, LAND]) {
    await admin.goto(`${server.base}/admin/pki`);
    await admin.locator('#unit_id').selectOption({ label: unit });
    await admin.getByRole('button', { name: '签发' }).nth(1).click();
    await admin.waitForURL('**/admin/pki?done=certificate_issued');
    await admin.locator('#seal_unit').selectOption({ label: unit });
    await admin.locator('#image').setInputFiles({ name: 'seal.png', mimeType: 'image/png', buffer: SEAL_PNG });
    await admin.getByRole('button', { name: '登记单位印章' }).click();
    await admin.waitForURL('**/admin/pki?done=seal_registered');
  }
  await admin.goto(`${server.base}/admin/users`);
  await admin.getByRole('link', { name: 'zhoujun' }).click();
  await admin.locator('#role_id').selectOption({ label: '单位管理员' });
  await admin.locator('#scope').selectOption({ label: '本单位' });
  await admin.getByRole('button', { name: '授予角色' }).click();

  // The hall's office drafts, numbers, seals and sends.
  const hall = await logIn(await browser.newContext({ locale: 'zh-CN' }), 'zhaomin');
  await hall.getByRole('link', { name: '公文' }).first().click();
  await hall.getByRole('link', { name: '拟稿' }).click();
  await hall.getByLabel('发文机关标志').fill('嘉禾县行政审批服务局文件');
  await hall.getByLabel('紧急程度').selectOption('特急');
  await hall.getByLabel('标题').fill('关于规范工程建设项目审批材料的通知');
  await hall.getByLabel('主送机关').fill('县自然资源局：');
  await hall.getByLabel('正文').fill('为进一步规范工程建设项目审批，现将有关事项通知如下。');
  await hall.getByRole('button', { name: '保存' }).click();
  await hall.waitForURL('**/documents/*?done=document_saved');
  const draftUrl = hall.url().split('?')[0];
  // An attachment (附件), previewed in the page.
  await hall.getByLabel('添加附件').setInputFiles({ name: '审批材料清单.png', mimeType: 'image/png', buffer: SEAL_PNG });
  await hall.locator('#attachments').getByRole('button', { name: '上传' }).click();
  await hall.waitForURL('**?done=attachment_added*');
  await hall.locator('#attachments summary').first().click();
  const preview = hall.locator('#attachments img[alt="审批材料清单.png"]');
  await preview.waitFor();
  assert.ok(await preview.evaluate((img) => img.complete && img.naturalWidth > 0), 'the image preview loads');
  await hall.getByLabel('核稿人（用户名）').fill('zhaomin');
  await hall.getByLabel(HOUSING, { exact: true }).check();
  await hall.getByLabel('签发人（用户名）').fill('zhangwei');
  await hall.getByRole('button', { name: '送审（核稿、会签、签发）' }).click();
  await hall.waitForURL('**?done=document_submitted');
  await hall.getByRole('link', { name: '待办事项' }).click();
  await hall.getByRole('link', { name: '核稿' }).click();
  await hall.getByLabel('办理意见').fill('已核，文字无误。');
  await hall.getByRole('button', { name: '提交' }).click();
  await hall.waitForURL('**/tasks?done=task_done');
  // 会签: the task waits in the housing bureau's queue; 徐辉 opens the draft, claims and countersigns.
  const housing = await logIn(await browser.newContext({ locale: 'zh-CN' }), 'xuhui');
  await housing.getByRole('link', { name: '待办事项' }).click();
  await housing.getByRole('link', { name: '会签' }).click();
  const taskUrl = housing.url();
  await housing.locator('#business-document').click();
  assert.match(await housing.locator('h1').textContent(), /关于规范工程建设项目审批材料的通知/);
  await housing.goto(taskUrl);
  await housing.getByRole('button', { name: '签收' }).click();
  await housing.getByLabel('办理意见').fill('同意，无修改意见。');
  await housing.getByRole('button', { name: '提交' }).click();
  await housing.waitForURL('**/tasks?done=task_done');
  await hall.goto(draftUrl);
  assert.match(await hall.locator('#countersigns').textContent(), /住房和城乡建设局.*已办.*徐辉.*同意，无修改意见。/s);
  const leader = await logIn(await browser.newContext({ locale: 'zh-CN' }), 'zhangwei');
  await leader.getByRole('link', { name: '待办事项' }).click();
  await leader.getByRole('link', { name: '签发' }).click();
  await leader.getByLabel('办理意见').fill('同意印发。');
  await leader.getByRole('button', { name: '提交' }).click();
  await leader.waitForURL('**/tasks?done=task_done');
  // The end of the process reaches the document through the outbox (a background loop).
  for (let i = 0; i < 50; i++) {
    await hall.goto(draftUrl);
    if ((await hall.locator('#document-status').textContent()).includes('已签发')) break;
    await new Promise((r) => setTimeout(r, 200));
  }
  assert.match(await hall.locator('#document-status').textContent(), /已签发/);
  await hall.getByRole('button', { name: '编号' }).click();
  await hall.waitForURL('**?done=document_numbered');
  const number = (await hall.locator('#doc-number').textContent()).trim();
  assert.match(number, /^嘉审批发〔\d{4}〕1号/);
  // No file uploaded: tongban renders the GB/T 9704 PDF and presses the seal on it.
  // Sent to the demo's distribution group (分发组): the three bureaus of joint approval.
  await hall.getByRole('checkbox', { name: /审批联办单位/ }).check();
  await hall.getByRole('button', { name: '盖章并分发' }).click();
  await hall.waitForURL('**?done=document_issued');
  const sent = await hall.locator('#tracking').textContent();
  for (const unit of [LAND, HOUSING, '市场监督管理局']) assert.match(sent, new RegExp(`${unit}.*已送达`, 's'));
  const documentUrl = hall.url().split('?')[0];
  const pdf = await hall.request.get(`${documentUrl}/pdf`);
  assert.equal(pdf.headers()['content-type'], 'application/pdf');
  assert.ok((await pdf.body()).subarray(0, 5).toString() === '%PDF-', 'the rendered, sealed PDF');

  // The bureau: urgent first in its inbox, opened, signed for.
  const land = await logIn(await browser.newContext({ locale: 'zh-CN' }), 'zhoujun');
  await land.goto(`${server.base}/inbox`);
  await land.getByRole('link', { name: '关于规范工程建设项目审批材料的通知' }).click();
  assert.match(await land.locator('#delivery-status').textContent(), /已阅/);
  assert.match(await land.locator('#delivered-attachments').textContent(), /审批材料清单\.png.*已随公文签章/s);
  await land.getByRole('button', { name: '签收' }).click();
  await land.waitForURL('**?done=document_signed');
  assert.match(await land.locator('#delivery-status').textContent(), /已签收/);

  // The hall sees the receipt, its signature checked.
  await hall.goto(documentUrl);
  const tracking = await hall.locator('#tracking').textContent();
  assert.match(tracking, /已签收/);
  assert.match(tracking, /回执签名有效/);
  await hall.screenshot({ path: 'test-results/document-tracking.png', fullPage: true });
});
