import { envValue } from '#lib/env';
import { newRefundId } from '#lib/wechat-pay/fields';
import { NOTIFY_RETRY_SECONDS } from './notify-deliverer';
import {
  type PayStore,
  REFUND_MODES,
  type RefundDelivery,
  type RefundMode,
  type SandboxOrder,
  type SandboxRefund,
} from './pay-store';
import { controlBody, json, type Sandbox } from './server';

/**
 * WeChat's refund desk, shared by the v2 (pay-v2.ts) and v3 (pay-v3.ts) refund endpoints: a refund is accepted
 * PROCESSING, becomes SUCCESS (or what `POST /sandbox/refunds/outcome` planned) after a short delay, and its refund
 * notify is delivered to the refund's notify_url through the version's notifier, retried on WeChat's schedule until
 * acknowledged. A repeated out_refund_no with identical parameters is the same refund (refunded once).
 * Control: `POST /sandbox/refunds/outcome {mode: SUCCESS|ABNORMAL|CLOSED, deliver?, delayMs?}` (the next refund: its final
 * state, whether its notify is delivered, how long it stays PROCESSING),
 * `POST /sandbox/refunds/notify-again {outRefundNo}`, `POST /sandbox/refunds/resolve {outRefundNo, status: SUCCESS|CLOSED}`
 * (an ABNORMAL refund the merchant re-applied, or a PROCESSING one such as after v3 apply-abnormal-refund: it ends in
 * that state and its notify is delivered), `GET /sandbox/refunds`.
 */

/** A refund request, as either API version names it. */
export interface RefundAsk {
  version: SandboxOrder['version'];
  outTradeNo: string;
  outRefundNo: string;
  totalFee: number;
  refundFee: number;
  reason?: string;
  notifyUrl: string;
}

/** A refusal in WeChat's words: `code` is the version's error code. */
export class RefundRefusal extends Error {
  constructor(
    readonly code: string,
    readonly description: string,
    readonly httpStatus = 400,
  ) {
    super(`${code}: ${description}`);
  }
}

const timers = new WeakMap<PayStore, Set<NodeJS.Timeout>>();
const speedups = new WeakMap<PayStore, number>();

/** How long a refund stays PROCESSING by default, ms (SANDBOX_REFUND_DELAY_MS, default 300). */
function defaultDelay(): number {
  return Number(envValue('SANDBOX_REFUND_DELAY_MS') || '300');
}

function later(store: PayStore, ms: number, run: () => void): void {
  let set = timers.get(store);
  if (!set) {
    set = new Set();
    timers.set(store, set);
  }
  const owned = set;
  const timer = setTimeout(() => {
    owned.delete(timer);
    run();
  }, ms);
  timer.unref();
  owned.add(timer);
}

/**
 * 申请退款 / 退款申请: checks the request against the paid order and the refunds so far, then answers the refund
 * (new, PROCESSING; or the one already made under this out_refund_no with the same parameters). Throws
 * RefundRefusal: order unknown or unpaid, total_fee not the order's, more than what remains, or a reused
 * out_refund_no with other parameters.
 */
export function requestRefund(store: PayStore, ask: RefundAsk): SandboxRefund {
  const order = store.orders.get(ask.outTradeNo);
  if (!order || order.version !== ask.version) throw new RefundRefusal('ORDERNOTEXIST', '订单不存在', 404);
  if (order.tradeState !== 'SUCCESS' || !order.transactionId) {
    throw new RefundRefusal('TRADE_STATE_ERROR', '订单未支付', 403);
  }
  const fingerprint = JSON.stringify([ask.outTradeNo, ask.totalFee, ask.refundFee, ask.notifyUrl]);
  const existing = store.refunds.get(ask.outRefundNo);
  if (existing) {
    if (existing.fingerprint !== fingerprint) {
      throw new RefundRefusal('REFUND_FEE_MISMATCH', '同一退款单号的请求参数与原请求不一致');
    }
    return existing;
  }
  if (ask.totalFee !== order.totalFee) throw new RefundRefusal('INVALID_REQUEST', '订单金额与原订单不一致');
  const refunded = [...store.refunds.values()]
    .filter((refund) => refund.outTradeNo === ask.outTradeNo && refund.status !== 'CLOSED')
    .reduce((sum, refund) => sum + refund.refundFee, 0);
  if (ask.refundFee < 1 || refunded + ask.refundFee > order.totalFee) {
    throw new RefundRefusal('INVALID_REQUEST', '退款金额超过订单可退金额');
  }
  const plan = store.nextRefund ?? { mode: 'SUCCESS' as const, deliver: true };
  store.nextRefund = undefined;
  const refund: SandboxRefund = {
    version: ask.version,
    outRefundNo: ask.outRefundNo,
    outTradeNo: ask.outTradeNo,
    transactionId: order.transactionId,
    refundId: newRefundId(),
    refundFee: ask.refundFee,
    totalFee: order.totalFee,
    ...(ask.reason ? { reason: ask.reason } : {}),
    notifyUrl: ask.notifyUrl,
    status: 'PROCESSING',
    plan,
    fingerprint,
    createdAt: Math.floor(Date.now() / 1000),
  };
  store.refunds.set(refund.outRefundNo, refund);
  later(store, plan.delayMs ?? defaultDelay(), () => finish(store, refund));
  return refund;
}

/** A v3 发起异常退款 as the sandbox received it, bank fields already decrypted. */
export interface AbnormalRefundAsk {
  refundId: string;
  outRefundNo: string;
  type: string;
  bankType?: string;
  bankAccount?: string;
  realName?: string;
}

/**
 * 发起异常退款: the ABNORMAL v3 refund with this refund_id goes back to PROCESSING (and stays so until
 * `POST /sandbox/refunds/resolve`), the re-application recorded. Throws RefundRefusal: 404 RESOURCE_NOT_EXISTS for an
 * unknown refund_id, 400 PARAM_ERROR when out_refund_no is not that refund's, 400 INVALID_REQUEST when it is not
 * ABNORMAL.
 */
export function reapplyAbnormalRefund(store: PayStore, ask: AbnormalRefundAsk): SandboxRefund {
  const refund = [...store.refunds.values()].find((r) => r.version === 'v3' && r.refundId === ask.refundId);
  if (!refund) throw new RefundRefusal('RESOURCE_NOT_EXISTS', '退款单不存在', 404);
  if (refund.outRefundNo !== ask.outRefundNo) {
    throw new RefundRefusal('PARAM_ERROR', 'out_refund_no 与退款单不符');
  }
  if (refund.status !== 'ABNORMAL')
    throw new RefundRefusal('INVALID_REQUEST', '退款单状态不是异常，无需重新发起');
  refund.status = 'PROCESSING';
  const { refundId: _id, outRefundNo: _no, ...reapplication } = ask;
  refund.reapplications = [
    ...(refund.reapplications ?? []),
    { ...reapplication, at: Math.floor(Date.now() / 1000) },
  ];
  return refund;
}

/** PROCESSING → the planned final state, then the notify (unless the plan loses it); a refund resolved since stays. */
function finish(store: PayStore, refund: SandboxRefund): void {
  if (refund.status !== 'PROCESSING') return;
  refund.status = refund.plan.mode;
  if (refund.status === 'SUCCESS') refund.successAt = Math.floor(Date.now() / 1000);
  if (refund.plan.deliver) void deliverUntilAccepted(store, refund, 0);
}

/** One refund notify now, recorded; undefined when the refund is not final or its version has no notifier. */
export async function deliverRefundNotify(
  store: PayStore,
  refund: SandboxRefund,
): Promise<RefundDelivery | undefined> {
  const order = store.orders.get(refund.outTradeNo);
  const notifier = store.refundNotifiers[refund.version];
  if (refund.status === 'PROCESSING' || !order || !notifier) return undefined;
  const at = new Date().toISOString();
  const result = await notifier(refund, { ...order, notifyUrl: refund.notifyUrl });
  const delivery: RefundDelivery = {
    outRefundNo: refund.outRefundNo,
    version: refund.version,
    refundStatus: refund.status,
    at,
    ...result,
  };
  store.refundDeliveries.push(delivery);
  return delivery;
}

async function deliverUntilAccepted(store: PayStore, refund: SandboxRefund, retry: number): Promise<void> {
  const delivery = await deliverRefundNotify(store, refund);
  if (delivery?.accepted) return;
  const delaySeconds = NOTIFY_RETRY_SECONDS[retry];
  if (delaySeconds === undefined || !timers.has(store)) return;
  const speedup = speedups.get(store) ?? 60;
  later(store, (delaySeconds * 1000) / speedup, () => void deliverUntilAccepted(store, refund, retry + 1));
}

/**
 * Registers the refund control routes; pending refunds and notify retries are cleared by `sandbox.close()`.
 * `speedup` divides WeChat's notify retry schedule (SANDBOX_NOTIFY_SPEEDUP, default 60).
 */
export function registerRefundControl(sandbox: Sandbox, store: PayStore, speedup?: number): void {
  timers.set(store, timers.get(store) ?? new Set());
  speedups.set(store, speedup ?? Number(envValue('SANDBOX_NOTIFY_SPEEDUP') || '60'));
  sandbox.onClose(() => {
    for (const timer of timers.get(store) ?? []) clearTimeout(timer);
    timers.delete(store);
  });

  sandbox.route('POST', '/sandbox/refunds/outcome', (request) => {
    const { mode, deliver, delayMs } = controlBody(request);
    if (!REFUND_MODES.includes(mode as RefundMode)) {
      return json(400, { error: `expected {mode: ${REFUND_MODES.join('|')}, deliver?, delayMs?}` });
    }
    if (delayMs !== undefined && (typeof delayMs !== 'number' || !Number.isInteger(delayMs) || delayMs < 0)) {
      return json(400, { error: 'delayMs must be a whole number of ms' });
    }
    store.nextRefund = {
      mode: mode as RefundMode,
      deliver: deliver !== false,
      ...(delayMs !== undefined ? { delayMs } : {}),
    };
    return json(200, { next: store.nextRefund });
  });

  sandbox.route('POST', '/sandbox/refunds/notify-again', async (request) => {
    const { outRefundNo } = controlBody(request);
    const refund = typeof outRefundNo === 'string' ? store.refunds.get(outRefundNo) : undefined;
    if (!refund) return json(404, { error: 'expected {outRefundNo} of a sandbox refund' });
    if (refund.status === 'PROCESSING') return json(409, { error: 'refund is still PROCESSING' });
    const delivery = await deliverRefundNotify(store, refund);
    if (!delivery) return json(501, { error: `no ${refund.version} refund notifier registered` });
    return json(200, delivery);
  });

  sandbox.route('POST', '/sandbox/refunds/resolve', (request) => {
    const { outRefundNo, status } = controlBody(request);
    const refund = typeof outRefundNo === 'string' ? store.refunds.get(outRefundNo) : undefined;
    if (!refund || (status !== 'SUCCESS' && status !== 'CLOSED')) {
      return json(400, { error: 'expected {outRefundNo} of a sandbox refund and {status: SUCCESS|CLOSED}' });
    }
    if (refund.status !== 'ABNORMAL' && refund.status !== 'PROCESSING') {
      return json(409, { error: `refund is ${refund.status}, not ABNORMAL or PROCESSING` });
    }
    refund.status = status;
    if (status === 'SUCCESS') refund.successAt = Math.floor(Date.now() / 1000);
    void deliverUntilAccepted(store, refund, 0);
    return json(200, { outRefundNo, status });
  });

  sandbox.route('GET', '/sandbox/refunds', ({ url }) => {
    const outTradeNo = url.searchParams.get('outTradeNo');
    const refunds = [...store.refunds.values()].filter((r) => !outTradeNo || r.outTradeNo === outTradeNo);
    return json(200, { refunds, deliveries: store.refundDeliveries });
  });
}
