import { randomBytes } from 'node:crypto';
import { expect, inject, it } from 'vitest';
import { createWxShim } from '#test/helpers/wx-shim';
import { createClient } from '../../client/index.js';

/**
 * The simulator's WeChat-side buttons: after a payment, a duplicate notify is acknowledged (no second credit), and
 * a forged, a stale and a WECHATPAY/SIGNTEST/ notify are each refused (the last two exist on v3 only).
 */
const { apiUrl, sandboxUrl } = inject('stack');

async function notifyAgain(outTradeNo: string, variant: string) {
  const response = await fetch(`${sandboxUrl}/sandbox/pay/notify-again`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ outTradeNo, variant }),
  });
  return {
    status: response.status,
    body: (await response.json()) as { version?: string; delivered?: boolean; error?: string },
  };
}

it('acknowledges a duplicate and refuses forged, stale and SIGNTEST notifies without a second credit', async () => {
  // Arrange
  const wx = createWxShim(sandboxUrl, `oProbe${randomBytes(9).toString('base64url')}`);
  const api = createClient({ baseUrl: apiUrl, wx, pollIntervalMs: 200 });
  const order = await api.pay('monthly');
  const paidUntil = (await api.me()).membershipExpiredAt;

  // Act
  const duplicate = await notifyAgain(order.outTradeNo, 'genuine');
  const forged = await notifyAgain(order.outTradeNo, 'forged');
  const stale = await notifyAgain(order.outTradeNo, 'stale');
  const signtest = await notifyAgain(order.outTradeNo, 'signtest');

  // Assess
  expect(duplicate.body.delivered).toBe(true);
  expect(forged.body.delivered).toBe(false);
  for (const probe of [stale, signtest]) {
    // v3 refuses them; a v2 notify has no timestamp or serial, so the sandbox has no such probe (400).
    if (duplicate.body.version === 'v3')
      expect(probe).toMatchObject({ status: 200, body: { delivered: false } });
    else expect(probe.body.error).toMatch(/has no (stale|signtest) variant/);
  }
  expect((await api.me()).membershipExpiredAt).toBe(paidUntil);
});
