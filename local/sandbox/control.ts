import { envValue } from '#lib/env';
import { newTransactionId } from '#lib/wechat-pay/fields';
import type { LoginCodes } from './login';
import { NotifyDeliverer } from './notify-deliverer';
import {
  type CashierParams,
  type Delivery,
  NOTIFY_VARIANTS,
  type NotifyVariant,
  type PayStore,
  type SandboxOrder,
} from './pay-store';
import { controlBody, FAULT_MODES, type FaultMode, json, type Sandbox, type SandboxReply } from './server';

/**
 * The control API under /sandbox/ that tests and the demo drive (DESIGN.md "Local stack"), kept apart from the
 * WeChat endpoints: faults and the call log, wx.login codes, and payments: `POST /sandbox/pay {outTradeNo | prepayId,
 * deliver?}` plays the user paying an open prepay and WeChat delivering the notify, retrying on its schedule until
 * acknowledged (`deliver: false`: the notify is lost); `POST /sandbox/close` closes an unpaid order on WeChat's side;
 * `POST /sandbox/cashier` is WeChat's cashier for `wx.requestPayment` (paySign checked; open, pay, pay-lose-notify,
 * cancel); `POST /sandbox/pay/notify-again {outTradeNo, variant?}` resends one notify, genuine or a forged, stale
 * or SIGNTEST probe; `GET /sandbox/notifications` lists every delivery.
 */

export interface PayControlOptions {
  /** Divides the retry schedule (60 → 0.25 s, 0.25 s, 0.5 s, 3 s…); default SANDBOX_NOTIFY_SPEEDUP, else 60. */
  speedup?: number;
  /** The mini-program appid the cashier signs for; default WECHAT_APPID. */
  appId?: string;
}

/**
 * `POST /sandbox/faults {endpoint, mode: timeout|busy|5xx|quota, count?}`, `DELETE /sandbox/faults`, `GET
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
      return json(400, { error: 'expected {endpoint, mode: timeout|busy|5xx|quota, count?}' });
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
  const appId = options.appId ?? envValue('WECHAT_APPID');
  const speedup = options.speedup ?? Number(envValue('SANDBOX_NOTIFY_SPEEDUP') || '60');
  if (!Number.isFinite(speedup) || speedup <= 0) {
    throw new Error('SANDBOX_NOTIFY_SPEEDUP must be a positive number');
  }
  const deliverer = new NotifyDeliverer(store, speedup);
  sandbox.onClose(() => deliverer.close());

  /** The user pays: the order SUCCESS, then the notify (unless `deliver` is false: a notify lost on the way). */
  async function pay(order: SandboxOrder, deliver: boolean): Promise<SandboxReply> {
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
    if (!deliver) return paidAnswer(order, undefined);
    return paidAnswer(order, await deliverer.deliverUntilAccepted(order));
  }

  /** WeChat's side closes an unpaid order (the user walked away and it timed out, or the merchant closed it). */
  function close(order: SandboxOrder): SandboxReply {
    if (order.tradeState === 'SUCCESS') return json(409, { error: 'order is already paid' });
    order.tradeState = 'CLOSED';
    return json(200, { outTradeNo: order.outTradeNo, tradeState: order.tradeState });
  }

  sandbox.route('POST', '/sandbox/pay', async (request) => {
    const body = controlBody(request);
    const order = namedOrder(store, body);
    return 'status' in order ? order : pay(order, body.deliver !== false);
  });

  sandbox.route('POST', '/sandbox/close', (request) => {
    const order = namedOrder(store, controlBody(request));
    return 'status' in order ? order : close(order);
  });

  sandbox.route('POST', '/sandbox/pay/notify-again', async (request) => {
    const body = controlBody(request);
    const order = namedOrder(store, body);
    if ('status' in order) return order;
    const variant = (body.variant ?? 'genuine') as NotifyVariant;
    if (!NOTIFY_VARIANTS.includes(variant)) {
      return json(400, { error: `variant must be one of ${NOTIFY_VARIANTS.join(', ')}` });
    }
    if (order.tradeState !== 'SUCCESS') return json(409, { error: 'order is not paid' });
    const delivery = await deliverer.deliver(order, variant);
    if (!delivery) return json(400, { error: `a ${order.version} notify has no ${variant} variant` });
    return paidAnswer(order, delivery);
  });

  // WeChat's cashier: wx.requestPayment's five fields, the paySign checked as WeChat does, then the user's choice.
  sandbox.route('POST', '/sandbox/cashier', async (request) => {
    const body = controlBody(request);
    const fields = Object.fromEntries(CASHIER_FIELDS.map((name) => [name, String(body[name] ?? '')]));
    // H5's getBrandWCPayRequest passes the official account's appId; a mini-program's is the sandbox's own.
    const params = { ...fields, appId: typeof body.appId === 'string' ? body.appId : appId } as CashierParams;
    const order = store.byPrepayId(params.package.replace(/^prepay_id=/, ''));
    if (!order) return json(404, { errMsg: 'requestPayment:fail prepay_id not found' });
    if (order.appId !== params.appId) return json(400, { errMsg: 'requestPayment:fail appid mismatch' });
    if (!store.paySignCheckers[order.version]?.(params)) {
      return json(400, { errMsg: 'requestPayment:fail sign error' });
    }
    switch (body.action) {
      case 'open':
        return json(200, {
          outTradeNo: order.outTradeNo,
          description: order.description,
          totalFee: order.totalFee,
          version: order.version,
          tradeState: order.tradeState,
        });
      case 'pay':
        return pay(order, true);
      case 'pay-lose-notify':
        return pay(order, false);
      case 'cancel':
        // The user closes the cashier: nothing changes at WeChat (the app closes the order itself).
        return json(200, { outTradeNo: order.outTradeNo, tradeState: order.tradeState });
      default:
        return json(400, { error: 'action must be open, pay, pay-lose-notify or cancel' });
    }
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

/** The fields of `wx.requestPayment` the cashier reads (the appId is the sandbox's own). */
const CASHIER_FIELDS = ['timeStamp', 'nonceStr', 'package', 'signType', 'paySign'] as const;

/** The order a control body names by `outTradeNo` (or `prepayId`), or the 400/404 answer. */
function namedOrder(store: PayStore, body: Record<string, unknown>): SandboxOrder | SandboxReply {
  const { outTradeNo, prepayId } = body;
  if (typeof prepayId === 'string' && prepayId !== '') {
    return store.byPrepayId(prepayId) ?? json(404, { error: `no sandbox order with prepay_id ${prepayId}` });
  }
  if (typeof outTradeNo !== 'string' || outTradeNo === '')
    return json(400, { error: 'expected {outTradeNo} or {prepayId}' });
  return store.orders.get(outTradeNo) ?? json(404, { error: `no sandbox order ${outTradeNo}` });
}

function paidAnswer(order: SandboxOrder, delivery: Delivery | undefined): SandboxReply {
  return json(200, {
    outTradeNo: order.outTradeNo,
    version: order.version,
    transactionId: order.transactionId,
    delivered: delivery?.accepted ?? false,
    status: delivery?.status ?? null,
    reply: delivery?.reply ?? 'notify not sent (deliver: false)',
  });
}
