import type { Delivery, NotifyResult, NotifyVariant, PayStore, SandboxOrder } from './pay-store';

/**
 * Notify delivery, for both API versions: `sendNotify` POSTs one built notify to the order's notify_url (the v2 and
 * v3 notifiers call it), and `NotifyDeliverer` records each attempt and retries on WeChat Pay's schedule until the
 * merchant acknowledges.
 */

/**
 * WeChat Pay's notify retry delays after a failed delivery, seconds:
 * 15s/15s/30s/3m/10m/20m/30m/30m/30m/60m/3h/3h/3h/6h/6h (24h4m).
 */
export const NOTIFY_RETRY_SECONDS: readonly number[] = [
  15, 15, 30, 180, 600, 1200, 1800, 1800, 1800, 3600, 10800, 10800, 10800, 21600, 21600,
];

/** How long WeChat waits for the merchant's answer, ms. */
const NOTIFY_TIMEOUT_MS = 5000;
/** How much of a merchant's reply a delivery record keeps. */
const MAX_REPLY_CHARS = 2000;

/**
 * POSTs the notify `build()` returns for a paid order to its notify_url (5 s timeout) and reports the answer;
 * `accepts` decides from status and reply text whether WeChat would count it as received. Never throws: an unpaid
 * order, a build error or a network failure come back as `{status: null, accepted: false}` with the reason.
 */
export async function sendNotify(
  order: SandboxOrder,
  build: () => { headers: Record<string, string>; body: string },
  accepts: (status: number, reply: string) => boolean,
): Promise<NotifyResult> {
  if (order.tradeState !== 'SUCCESS' || !order.transactionId) {
    return { status: null, reply: 'order is not paid', accepted: false };
  }
  let notify: { headers: Record<string, string>; body: string };
  try {
    notify = build();
  } catch (error) {
    return { status: null, reply: `cannot build notify: ${(error as Error).message}`, accepted: false };
  }
  try {
    const response = await fetch(order.notifyUrl, {
      method: 'POST',
      headers: notify.headers,
      body: notify.body,
      signal: AbortSignal.timeout(NOTIFY_TIMEOUT_MS),
    });
    const reply = await response.text();
    return { status: response.status, reply, accepted: accepts(response.status, reply) };
  } catch (error) {
    return { status: null, reply: `network: ${(error as Error).name}`, accepted: false };
  }
}

/**
 * Delivers notifies through `store.notifiers`, records every attempt in `store.deliveries`, and retries on
 * WeChat's schedule divided by `speedup`.
 */
export class NotifyDeliverer {
  private readonly timers = new Set<NodeJS.Timeout>();
  private closed = false;

  constructor(
    private readonly store: PayStore,
    private readonly speedup: number,
  ) {}

  /**
   * One attempt through the order's version notifier, recorded with its attempt number; undefined (nothing
   * sent) when that version has no such variant.
   */
  async deliver(order: SandboxOrder, variant: NotifyVariant = 'genuine'): Promise<Delivery | undefined> {
    const at = new Date().toISOString();
    const notifier = this.store.notifiers[order.version];
    let result: NotifyResult;
    try {
      const sent = notifier
        ? notifier(order, variant)
        : Promise.resolve({
            status: null,
            reply: `no ${order.version} notifier registered`,
            accepted: false,
          });
      if (!sent) return undefined;
      result = await sent;
    } catch (error) {
      result = { status: null, reply: `notifier failed: ${(error as Error).message}`, accepted: false };
    }
    const delivery: Delivery = {
      outTradeNo: order.outTradeNo,
      version: order.version,
      variant,
      attempt: this.store.deliveries.filter((d) => d.outTradeNo === order.outTradeNo).length + 1,
      at,
      status: result.status,
      reply: result.reply.slice(0, MAX_REPLY_CHARS),
      accepted: result.accepted,
    };
    this.store.deliveries.push(delivery);
    return delivery;
  }

  /** The first attempt now; when it is not accepted, retries follow on the schedule (unref'd timers) until one is. */
  async deliverUntilAccepted(order: SandboxOrder): Promise<Delivery> {
    const first = (await this.deliver(order)) as Delivery;
    if (!first.accepted) this.scheduleRetry(order.outTradeNo, 0);
    return first;
  }

  /** Cancels every pending retry; later ones are not scheduled. */
  close(): void {
    this.closed = true;
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
  }

  /** Schedules retry `index` of the WeChat schedule; each failed retry schedules the next. */
  private scheduleRetry(outTradeNo: string, index: number): void {
    const delaySeconds = NOTIFY_RETRY_SECONDS[index];
    if (this.closed || delaySeconds === undefined) return;
    const timer = setTimeout(
      () => {
        this.timers.delete(timer);
        const order = this.store.orders.get(outTradeNo);
        if (this.closed || !order) return;
        void this.deliver(order).then((delivery) => {
          if (!delivery?.accepted) this.scheduleRetry(outTradeNo, index + 1);
        });
      },
      (delaySeconds * 1000) / this.speedup,
    );
    timer.unref();
    this.timers.add(timer);
  }
}
