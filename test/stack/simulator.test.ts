import { existsSync } from 'node:fs';
import { type Browser, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, beforeEach, expect, inject, it } from 'vitest';

/**
 * The simulator page (the sandbox's GET /) in headless Chromium, through the data-testid contract: sign in →
 * buy → pay → member, and buy → cancel → CLOSED, with no console error. Chromium is Debian's /usr/bin/chromium
 * (apt-get install chromium) unless CHROME_PATH names another Chrome or Chromium.
 */
const { sandboxUrl } = inject('stack');
const CHROME = process.env.CHROME_PATH || '/usr/bin/chromium';
/** How long the page may take to show a state (a cold function on a busy machine takes seconds). */
const WAIT = { timeout: 20_000, interval: 100 };

let browser: Browser;
let page: Page;
let consoleErrors: string[];

beforeAll(async () => {
  if (!existsSync(CHROME)) {
    throw new Error(
      `no Chrome at ${CHROME}: apt-get install chromium, or set CHROME_PATH to a Chrome or Chromium`,
    );
  }
  // Playwright gives every launch a fresh temporary profile (--user-data-dir) and removes it on close.
  browser = await chromium.launch({
    executablePath: CHROME,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
    ],
  });
});

afterAll(async () => {
  await browser?.close();
});

beforeEach(async () => {
  // A fresh context per test: a new simulated WeChat user (the page keeps its openid in localStorage).
  const context = await browser.newContext({ viewport: { width: 1360, height: 900 } });
  page = await context.newPage();
  consoleErrors = [];
  page.on('console', (message) => {
    if (message.type() === 'error') consoleErrors.push(message.text());
  });
  page.on('pageerror', (error) => consoleErrors.push(error.message));
  await page.goto(sandboxUrl);
  await page.getByTestId('sign-in').click();
  await expect.poll(() => page.getByTestId('membership').textContent(), WAIT).toContain('尚未开通会员');
});

it('signs in, buys a plan, pays in the cashier and shows the membership expiry', async () => {
  // Act
  await page.getByTestId('plan-monthly').click();
  await page.getByTestId('pay-confirm').click();

  // Assess
  await expect.poll(() => page.getByTestId('order-status').textContent(), WAIT).toContain('PAID');
  await expect
    .poll(() => page.getByTestId('membership').textContent(), WAIT)
    .toMatch(/有效期至 \d{4}-\d{2}-\d{2}/);
  if (process.env.SIMULATOR_SCREENSHOT) await page.screenshot({ path: process.env.SIMULATOR_SCREENSHOT });
  expect(consoleErrors).toEqual([]);
});

it('buys a plan, cancels in the cashier and shows the order CLOSED', async () => {
  // Act
  await page.getByTestId('plan-quarterly').click();
  await page.getByTestId('pay-cancel').click();

  // Assess
  await expect.poll(() => page.getByTestId('order-status').textContent(), WAIT).toContain('CLOSED');
  expect(await page.getByTestId('membership').textContent()).toContain('尚未开通会员');
  expect(consoleErrors).toEqual([]);
});

it('runs the reconciler from the backend panel and shows what it did', async () => {
  // Prepare: a paid order (the pass finds nothing left to credit twice)
  await page.getByTestId('plan-yearly').click();
  await page.getByTestId('pay-confirm').click();
  await expect.poll(() => page.getByTestId('order-status').textContent(), WAIT).toContain('PAID');

  // Act
  await page.getByTestId('reconcile').click();

  // Assess
  await expect
    .poll(() => page.getByTestId('reconcile-result').textContent(), WAIT)
    .toMatch(/查询 \d+ 笔：补记 \d+/);
  expect(consoleErrors).toEqual([]);
});

it('refunds the last paid order from the backend panel and shows the membership days taken back', async () => {
  // Prepare: a paid monthly order (its notify credited it)
  await page.getByTestId('plan-monthly').click();
  await page.getByTestId('pay-confirm').click();
  await expect.poll(() => page.getByTestId('membership').textContent(), WAIT).toMatch(/有效期至/);

  // Act: refund it in full (the sandbox refunds at once and sends the refund notify)
  await page.getByTestId('refund').click();

  // Assess: the order's days are all taken back, and this user had no other membership
  await expect
    .poll(() => page.getByTestId('refund-result').textContent(), WAIT)
    .toMatch(/已退款 ¥[\d.]+ \/ ¥[\d.]+，订单 REFUNDED；会员已失效/);
  expect(await page.getByTestId('membership').textContent()).toContain('尚未开通会员');
  expect(await page.getByTestId('order-status').textContent()).toContain('REFUNDED');
  if (process.env.SIMULATOR_REFUND_SCREENSHOT) {
    await page.screenshot({ path: process.env.SIMULATOR_REFUND_SCREENSHOT, fullPage: true });
  }
  expect(consoleErrors).toEqual([]);
});

it('binds a phone number through getPhoneNumber and shows it masked to its user', async () => {
  // Act: the tap on <button open-type="getPhoneNumber"> (the sandbox issues the code) and POST /wechat/phone
  await page.getByTestId('bind-phone').click();

  // Assess: the sandbox's number (a mainland 138… number), country code 86, middle four digits hidden
  await expect
    .poll(() => page.getByTestId('phone-number').textContent(), WAIT)
    .toMatch(/^\+86 138\*{4}\d{4}$/);
  expect(await page.getByTestId('bind-phone').textContent()).toBe('更换手机号');
  if (process.env.SIMULATOR_PHONE_SCREENSHOT) {
    await page.screenshot({ path: process.env.SIMULATOR_PHONE_SCREENSHOT });
  }
  expect(consoleErrors).toEqual([]);
});

it('opens the H5 page as the same WeChat user: web OAuth, the wx.config signature, pay under the official account', async () => {
  // Prepare: the simulator signed this WeChat user in (beforeEach); the H5 page shares its unionid
  await page.getByTestId('open-h5').click();
  await page.waitForURL('**/h5/demo.html');

  // Act: scope=auto through the local API's authorize and callback, and WeChat's page (the sandbox): silent
  // first, then (this official-account openid is new) snsapi_userinfo, whose unionid finds the account
  await page.getByTestId('h5-auto').click();

  // Assess: back on the page with the fragment read and cleared, signed in as the mini-program's account
  await expect
    .poll(() => page.getByTestId('h5-same-user').textContent(), WAIT)
    .toContain('与小程序是同一账号');
  expect(new URL(page.url()).hash).toBe('');
  await expect.poll(() => page.getByTestId('h5-signature').textContent(), WAIT).toMatch(/^[0-9a-f]{40}$/);

  // Act: pay under the official account (getBrandWCPayRequest, played by the sandbox cashier)
  await page.getByTestId('h5-pay').click();

  // Assess
  await expect.poll(() => page.getByTestId('h5-order-status').textContent(), WAIT).toContain('PAID');
  await expect.poll(() => page.getByTestId('h5-membership').textContent(), WAIT).toMatch(/有效期至/);
  if (process.env.SIMULATOR_H5_SCREENSHOT)
    await page.screenshot({ path: process.env.SIMULATOR_H5_SCREENSHOT });
  expect(consoleErrors).toEqual([]);
});

it('takes an ABNORMAL refund back through apply-abnormal (v3), or says where to re-apply it (v2)', async () => {
  // Prepare: a paid monthly order, refunded while the user's card is closed (WeChat reports ABNORMAL)
  await page.getByTestId('plan-monthly').click();
  await page.getByTestId('pay-confirm').click();
  await expect.poll(() => page.getByTestId('membership').textContent(), WAIT).toMatch(/有效期至/);
  await page.getByTestId('refund-abnormal').check();
  await page.getByTestId('refund').click();
  await expect.poll(() => page.getByTestId('refund-result').textContent(), WAIT).toContain('异常 ABNORMAL');
  expect(await page.getByTestId('membership').textContent()).toMatch(/有效期至/);
  const { refunds } = (await (await fetch(`${sandboxUrl}/sandbox/refunds`)).json()) as {
    refunds: { version: string }[];
  };
  const version = refunds.at(-1)?.version;

  // Act: the operator re-applies it to the merchant's bank account
  await page.getByTestId('refund-reapply').click();

  // Assess: v3 revokes the days once WeChat reports SUCCESS; v2 has no such API and says so
  if (version === 'v3') {
    await expect
      .poll(() => page.getByTestId('refund-result').textContent(), WAIT)
      .toMatch(/已退款 ¥[\d.]+ \/ ¥[\d.]+，订单 REFUNDED；会员已失效/);
    expect(await page.getByTestId('membership').textContent()).toContain('尚未开通会员');
  } else {
    expect(version).toBe('v2');
    await expect
      .poll(() => page.getByTestId('refund-result').textContent(), WAIT)
      .toContain('ABNORMAL_REFUND_V3_ONLY');
    expect(await page.getByTestId('membership').textContent()).toMatch(/有效期至/);
    // The browser logs the route's 409, the answer under test, as a failed resource load.
    consoleErrors = consoleErrors.filter((error) => !error.includes('status of 409 (Conflict)'));
  }
  if (process.env.SIMULATOR_ABNORMAL_SCREENSHOT) {
    await page.screenshot({ path: process.env.SIMULATOR_ABNORMAL_SCREENSHOT, fullPage: true });
  }
  expect(consoleErrors).toEqual([]);
});
