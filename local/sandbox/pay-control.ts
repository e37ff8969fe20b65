import { randomInt } from 'node:crypto';
import { envValue } from '#lib/config';
import { formatTimeExpire } from '#lib/wechat-pay/v2-protocol';
import type { Delivery, PayStore, SandboxOrder } from './pay-store';
import { controlBody, json, type Sandbox, type SandboxReply } from './server';

/**
 * The payment control API the tests and the demo drive (DESIGN.md "Local stack"): `POST /sandbox/pay` plays the
 * user paying an open prepay and WeChat delivering the notify, retrying on its schedule until acknowledged;
 * `POST /sandbox/pay/notify-again` resends one notify; `GET /sandbox/notifications` lists every delivery.
 */

/** WeChat Pay's notify retry delays after a failed delivery, seconds: 15s/15s/30s/3m/10m/20m/30m/30m/30m/60m/3h/3h/3h/6h/6h (24h4m). */
export const NOTIFY_RETRY_SECONDS: readonly number[] = [
  15, 15, 30, 180, 600, 1200, 1800, 1800, 1800, 3600, 10800, 10800, 10800, 21600, 21600,
];

export interface PayControlOptions {
  /** Divides the retry schedule (60 → 0.25 s, 0.25 s, 0.5 s, 3 s…); default SANDBOX_NOTIFY_SPEEDUP, else 60. */
  speedup?: number;
}

/** How much of a merchant's reply a delivery record keeps. */
const MAX_REPLY_CHARS = 2000;

/** A WeChat Pay transaction_id: 28 digits, `4200` + 6 digits + the CST date yyyyMMdd + 10 digits. */
export function newTransactionId(now = new Date()): string {
  const digits = (count: number) => Array.from({ length: count }, () => randomInt(10)).join('');
  return `4200${digits(6)}${formatTimeExpire(now).slice(0, 8)}${digits(10)}`;
}

/** Registers the /sandbox/ payment routes; pending retries are unref'd timers cleared by `sandbox.close()`. */
export function registerPayControl(sandbox: Sandbox, store: PayStore, options: PayControlOptions = {}): void {
  const speedup = options.speedup ?? Number(envValue('SANDBOX_NOTIFY_SPEEDUP') || '60');
  if (!Number.isFinite(speedup) || speedup <= 0) {
    throw new Error('SANDBOX_NOTIFY_SPEEDUP must be a positive number');
  }
  const timers = new Set<NodeJS.Timeout>();
  let closed = false;
  sandbox.onClose(() => {
    closed = true;
    for (const timer of timers) clearTimeout(timer);
    timers.clear();
  });

  /** One notify through the order's version notifier, recorded in store.deliveries. */
  const deliver = async (order: SandboxOrder): Promise<Delivery> => {
    const at = new Date().toISOString();
    const notifier = store.notifiers[order.version];
    let result: Awaited<ReturnType<NonNullable<typeof notifier>>>;
    try {
      result = notifier
        ? await notifier(order)
        : { status: null, reply: `no ${order.version} notifier registered`, accepted: false };
    } catch (error) {
      result = { status: null, reply: `notifier failed: ${(error as Error).message}`, accepted: false };
    }
    const delivery: Delivery = {
      outTradeNo: order.outTradeNo,
      version: order.version,
      attempt: store.deliveries.filter((d) => d.outTradeNo === order.outTradeNo).length + 1,
      at,
      status: result.status,
      reply: result.reply.slice(0, MAX_REPLY_CHARS),
      accepted: result.accepted,
    };
    store.deliveries.push(delivery);
    return delivery;
  };

  /** Schedules retry `index` of the WeChat schedule; each failed retry schedules the next, until one is accepted. */
  const scheduleRetry = (outTradeNo: string, index: number): void => {
    const delaySeconds = NOTIFY_RETRY_SECONDS[index];
    if (closed || delaySeconds === undefined) return;
    const timer = setTimeout(
      () => {
        timers.delete(timer);
        const order = store.orders.get(outTradeNo);
        if (closed || !order) return;
        void deliver(order).then((delivery) => {
          if (!delivery.accepted) scheduleRetry(outTradeNo, index + 1);
        });
      },
      (delaySeconds * 1000) / speedup,
    );
    timer.unref();
    timers.add(timer);
  };

  const paidAnswer = (order: SandboxOrder, delivery: Delivery): SandboxReply =>
    json(200, {
      outTradeNo: order.outTradeNo,
      transactionId: order.transactionId,
      delivered: delivery.accepted,
      status: delivery.status,
      reply: delivery.reply,
    });

  /** The order a control body names, or the 400/404 answer. */
  const named = (body: Record<string, unknown>): SandboxOrder | SandboxReply => {
    const { outTradeNo } = body;
    if (typeof outTradeNo !== 'string' || outTradeNo === '')
      return json(400, { error: 'expected {outTradeNo}' });
    return store.orders.get(outTradeNo) ?? json(404, { error: `no sandbox order ${outTradeNo}` });
  };

  sandbox.route('POST', '/sandbox/pay', async (request) => {
    const order = named(controlBody(request));
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
    const first = await deliver(order);
    if (!first.accepted) scheduleRetry(order.outTradeNo, 0);
    return paidAnswer(order, first);
  });

  sandbox.route('POST', '/sandbox/pay/notify-again', async (request) => {
    const order = named(controlBody(request));
    if ('status' in order) return order;
    if (order.tradeState !== 'SUCCESS') return json(409, { error: 'order is not paid' });
    return paidAnswer(order, await deliver(order));
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
