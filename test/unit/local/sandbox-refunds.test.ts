import { afterEach, describe, expect, it } from 'vitest';
import { PayStore, processedRefunds, type SandboxOrder } from '#local/sandbox/pay-store';
import {
  type RefundRefusal,
  reapplyAbnormalRefund,
  registerRefundControl,
  requestRefund,
} from '#local/sandbox/refunds';
import { Sandbox } from '#local/sandbox/server';
import { thrown } from '#test/helpers/outcomes';

const sandboxes: Sandbox[] = [];

afterEach(async () => {
  for (const sandbox of sandboxes.splice(0)) await sandbox.close();
});

/** A store with one paid 1800-fen v3 order, its refund desk registered on a sandbox (not listening). */
function paidStore(): { store: PayStore; sandbox: Sandbox; order: SandboxOrder } {
  const store = new PayStore();
  const sandbox = new Sandbox();
  sandboxes.push(sandbox);
  registerRefundControl(sandbox, store, 60);
  const order: SandboxOrder = {
    version: 'v3',
    outTradeNo: 'M20261121080000abcdefABCDEF',
    appId: 'wx5a1d0c0ffee0d0e1',
    mchId: '1900000109',
    openid: 'oSandbox',
    description: '会员-月度会员',
    totalFee: 1800,
    notifyUrl: 'http://127.0.0.1:9/notify',
    fingerprint: '',
    prepayId: 'wx_prepay',
    tradeState: 'SUCCESS',
    createdAt: 1_763_712_000,
    transactionId: '4200000215201811190261405420',
    paidAt: 1_763_712_060,
  };
  store.orders.set(order.outTradeNo, order);
  return { store, sandbox, order };
}

const ask = (overrides: Partial<Parameters<typeof requestRefund>[1]> = {}) => ({
  version: 'v3' as const,
  outTradeNo: 'M20261121080000abcdefABCDEF',
  outRefundNo: 'R1',
  totalFee: 1800,
  refundFee: 600,
  notifyUrl: 'http://127.0.0.1:9/notify',
  ...overrides,
});

async function control(sandbox: Sandbox, path: string, body: unknown) {
  const reply = await sandbox.handle({
    method: 'POST',
    url: new URL(path, 'http://sandbox'),
    headers: {},
    body: JSON.stringify(body),
  });
  return { status: reply?.status, body: JSON.parse(String(reply?.body ?? '{}')) as Record<string, unknown> };
}

describe('the sandbox refund desk', () => {
  it('answers the same refund for a repeated out_refund_no with the same parameters (refunded once)', () => {
    // Prepare
    const { store } = paidStore();
    // Act
    const first = requestRefund(store, ask());
    const again = requestRefund(store, ask());
    // Assess
    expect(again).toBe(first);
    expect(first).toMatchObject({ status: 'PROCESSING', refundFee: 600, totalFee: 1800 });
    expect(store.refunds.size).toBe(1);
  });

  it('refuses a reused number with other parameters, more than remains, the wrong total and an unpaid order', () => {
    // Prepare
    const { store, order } = paidStore();
    requestRefund(store, ask({ refundFee: 1500 }));
    // Act
    const refusals = [
      thrown(() => requestRefund(store, ask({ refundFee: 1000 }))),
      thrown(() => requestRefund(store, ask({ outRefundNo: 'R2', refundFee: 301 }))),
      thrown(() => requestRefund(store, ask({ outRefundNo: 'R3', totalFee: 1700, refundFee: 1 }))),
      (() => {
        order.tradeState = 'NOTPAY';
        return thrown(() => requestRefund(store, ask({ outRefundNo: 'R4', refundFee: 1 })));
      })(),
    ];
    // Assess
    expect(refusals.map((error) => (error as RefundRefusal).code)).toEqual([
      'REFUND_FEE_MISMATCH',
      'INVALID_REQUEST',
      'INVALID_REQUEST',
      'TRADE_STATE_ERROR',
    ]);
  });

  it('finishes a refund after its delay as planned, and lists processed refunds with their success times', async () => {
    // Prepare
    const { store, sandbox } = paidStore();
    await control(sandbox, '/sandbox/refunds/outcome', { mode: 'SUCCESS', deliver: false, delayMs: 0 });
    requestRefund(store, ask());
    await control(sandbox, '/sandbox/refunds/outcome', { mode: 'CLOSED', deliver: false, delayMs: 0 });
    requestRefund(store, ask({ outRefundNo: 'R2' }));
    const before = processedRefunds(store);
    // Act
    await new Promise((resolve) => setTimeout(resolve, 20));
    // Assess
    expect(before).toEqual([]);
    const processed = processedRefunds(store);
    expect(processed.map((refund) => [refund.outRefundNo, refund.status])).toEqual([
      ['R1', 'SUCCESS'],
      ['R2', 'CLOSED'],
    ]);
    expect(processed[0]?.successAt).toBeGreaterThanOrEqual(
      processed[0]?.createdAt ?? Number.POSITIVE_INFINITY,
    );
    expect(processed[1]?.successAt).toBeUndefined();
    expect(processedRefunds(store, 'v2')).toEqual([]);
  });

  it('refuses an unknown outcome mode and a notify-again for a refund still PROCESSING', async () => {
    // Prepare
    const { store, sandbox } = paidStore();
    await control(sandbox, '/sandbox/refunds/outcome', { mode: 'SUCCESS', delayMs: 60_000 });
    requestRefund(store, ask());
    // Act
    const badMode = await control(sandbox, '/sandbox/refunds/outcome', { mode: 'REFUNDCLOSE' });
    const early = await control(sandbox, '/sandbox/refunds/notify-again', { outRefundNo: 'R1' });
    const unknown = await control(sandbox, '/sandbox/refunds/notify-again', { outRefundNo: 'R404' });
    // Assess
    expect([badMode.status, early.status, unknown.status]).toEqual([400, 409, 404]);
  });

  it('apply-abnormal-refund: an ABNORMAL refund goes PROCESSING and stays so until resolved; others are refused', async () => {
    // Prepare
    const { store, sandbox } = paidStore();
    await control(sandbox, '/sandbox/refunds/outcome', { mode: 'ABNORMAL', deliver: false, delayMs: 0 });
    const refund = requestRefund(store, ask());
    await new Promise((resolve) => setTimeout(resolve, 20));
    const reapply = { refundId: refund.refundId, outRefundNo: 'R1', type: 'MERCHANT_BANK_CARD' };
    // Act
    const unknown = thrown(() => reapplyAbnormalRefund(store, { ...reapply, refundId: '5030nosuchrefund' }));
    const otherNo = thrown(() => reapplyAbnormalRefund(store, { ...reapply, outRefundNo: 'R2' }));
    const reapplied = reapplyAbnormalRefund(store, reapply);
    const twice = thrown(() => reapplyAbnormalRefund(store, reapply));
    await new Promise((resolve) => setTimeout(resolve, 20));
    const stillProcessing = refund.status;
    const resolved = await control(sandbox, '/sandbox/refunds/resolve', {
      outRefundNo: 'R1',
      status: 'SUCCESS',
    });
    // Assess
    expect([unknown, otherNo, twice].map((error) => (error as RefundRefusal).code)).toEqual([
      'RESOURCE_NOT_EXISTS',
      'PARAM_ERROR',
      'INVALID_REQUEST',
    ]);
    expect((unknown as RefundRefusal).httpStatus).toBe(404);
    expect(reapplied.reapplications).toEqual([{ type: 'MERCHANT_BANK_CARD', at: expect.any(Number) }]);
    expect(stillProcessing).toBe('PROCESSING');
    expect(resolved.status).toBe(200);
    expect(refund.status).toBe('SUCCESS');
    expect(refund.successAt).toEqual(expect.any(Number));
  });

  it('resolve also takes a fresh PROCESSING refund, and its planned finish then leaves it alone', async () => {
    // Prepare
    const { store, sandbox } = paidStore();
    await control(sandbox, '/sandbox/refunds/outcome', { mode: 'SUCCESS', deliver: false, delayMs: 10 });
    const refund = requestRefund(store, ask());
    // Act
    const resolved = await control(sandbox, '/sandbox/refunds/resolve', {
      outRefundNo: 'R1',
      status: 'CLOSED',
    });
    await new Promise((resolve) => setTimeout(resolve, 40));
    // Assess
    expect(resolved.status).toBe(200);
    expect(refund.status).toBe('CLOSED');
  });
});
