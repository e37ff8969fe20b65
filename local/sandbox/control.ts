import { envValue } from '#lib/env';
import { newTransactionId } from '#lib/wechat-pay/fields';
import type { LoginCodes } from './login';
import { NotifyDeliverer } from './notify-deliverer';
import type { Delivery, PayStore, SandboxOrder } from './pay-store';
import { controlBody, FAULT_MODES, type FaultMode, json, type Sandbox, type SandboxReply } from './server';

/**
 * The control API under /sandbox/ that tests and the demo drive (DESIGN.md "Local stack"), kept apart from the
 * WeChat endpoints: faults and the call log, wx.login codes, and payments: `POST /sandbox/pay` plays the user paying
 * an open prepay and WeChat delivering the notify, retrying on its schedule until acknowledged;
 * `POST /sandbox/pay/notify-again` resends one notify; `GET /sandbox/notifications` lists every delivery.
 */

export interface PayControlOptions {
  /** Divides the retry schedule (60 → 0.25 s, 0.25 s, 0.5 s, 3 s…); default SANDBOX_NOTIFY_SPEEDUP, else 60. */
  speedup?: number;
}

/**
 * `POST /sandbox/faults {endpoint, mode: timeout|busy|5xx, count?}`, `DELETE /sandbox/faults`, `GET
 * /sandbox/calls`.
 */
export function registerFaultControl(sandbox: Sandbox): void {
  sandbox.route('POST', '/sandbox/faults', (request) => {
    const { endpoint, mode, count } = controlBody(request) as {
      endpoint?: string;
      mode?: FaultMode;
      count?: number;
    };
    if (!endpoint || !mode || !FAULT_MODES.includes(mode)) {
      return json(400, { error: 'expected {endpoint, mode: timeout|busy|5xx, count?}' });
    }
    sandbox.faults.set(endpoint, { mode, remaining: count });
    return json(200, { endpoint, mode, count: count ?? null });
  });
  sandbox.route('DELETE', '/sandbox/faults', () => {
    sandbox.faults.clear();
    return json(200, { cleared: true });
  });
  sandbox.route('GET', '/sandbox/calls', () => json(200, { calls: sandbox.calls }));
}

/** `POST /sandbox/login {openid?, unionid?}` → `{code, openid}`: plays wx.login (a single-use code, 5 minutes). */
export function registerLoginControl(sandbox: Sandbox, codes: LoginCodes): void {
  sandbox.route('POST', '/sandbox/login', (request) => {
    const body = controlBody(request);
    const openid = typeof body.openid === 'string' ? body.openid : undefined;
    const unionid = typeof body.unionid === 'string' ? body.unionid : undefined;
    return json(200, codes.issue(openid, unionid));
  });
}

/**
 * Registers the /sandbox/ payment routes; pending notify retries are cleared by `sandbox.close()`; throws on a
 * speedup that is not a positive number.
 */
export function registerPayControl(sandbox: Sandbox, store: PayStore, options: PayControlOptions = {}): void {
  const speedup = options.speedup ?? Number(envValue('SANDBOX_NOTIFY_SPEEDUP') || '60');
  if (!Number.isFinite(speedup) || speedup <= 0) {
    throw new Error('SANDBOX_NOTIFY_SPEEDUP must be a positive number');
  }
  const deliverer = new NotifyDeliverer(store, speedup);
  sandbox.onClose(() => deliverer.close());

  sandbox.route('POST', '/sandbox/pay', async (request) => {
    const body = controlBody(request);
    const order = namedOrder(store, body);
    if ('status' in order) return order;
    if (order.tradeState === 'SUCCESS') {
      return json(409, { error: 'order is already paid', transactionId: order.transactionId });
    }
    if (order.tradeState === 'CLOSED') return json(409, { error: 'order is closed' });
    if (!store.notifiers[order.version]) {
      return json(501, { error: `no ${order.version} notifier registered in this sandbox` });
    }
    // Marked paid before the first await, so a concurrent second /sandbox/pay sees SUCCESS (409).
    order.tradeState = 'SUCCESS';
    order.transactionId = newTransactionId();
    order.paidAt = Math.floor(Date.now() / 1000);
    // `deliver: false` plays the lost notify: paid at WeChat, nothing delivered until notify-again.
    if (body.deliver === false) {
      return json(200, {
        outTradeNo: order.outTradeNo,
        transactionId: order.transactionId,
        delivered: false,
      });
    }
    return paidAnswer(order, await deliverer.deliverUntilAccepted(order));
  });

  sandbox.route('POST', '/sandbox/pay/notify-again', async (request) => {
    const order = namedOrder(store, controlBody(request));
    if ('status' in order) return order;
    if (order.tradeState !== 'SUCCESS') return json(409, { error: 'order is not paid' });
    return paidAnswer(order, await deliverer.deliver(order));
  });

  sandbox.route('GET', '/sandbox/notifications', ({ url }) => {
    const outTradeNo = url.searchParams.get('outTradeNo');
    return json(200, {
      notifications: outTradeNo
        ? store.deliveries.filter((delivery) => delivery.outTradeNo === outTradeNo)
        : store.deliveries,
    });
  });
}

/** The order a control body names, or the 400/404 answer. */
function namedOrder(store: PayStore, body: Record<string, unknown>): SandboxOrder | SandboxReply {
  const { outTradeNo } = body;
  if (typeof outTradeNo !== 'string' || outTradeNo === '')
    return json(400, { error: 'expected {outTradeNo}' });
  return store.orders.get(outTradeNo) ?? json(404, { error: `no sandbox order ${outTradeNo}` });
}

function paidAnswer(order: SandboxOrder, delivery: Delivery): SandboxReply {
  return json(200, {
    outTradeNo: order.outTradeNo,
    transactionId: order.transactionId,
    delivered: delivery.accepted,
    status: delivery.status,
    reply: delivery.reply,
  });
}
