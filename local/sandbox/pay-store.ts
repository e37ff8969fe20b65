import type { PayVersion } from '#lib/wechat-pay/fields';

/**
 * The sandbox merchant's orders, shared by the v2 (pay-v2.ts) and v3 (pay-v3.ts) endpoints, the notify deliverer
 * and the control routes (/sandbox/pay, /sandbox/notifications). Amounts are integer fen.
 */

export type TradeState = 'NOTPAY' | 'SUCCESS' | 'CLOSED';

export interface SandboxOrder {
  version: PayVersion;
  outTradeNo: string;
  appId: string;
  mchId: string;
  openid: string;
  description: string;
  totalFee: number;
  notifyUrl: string;
  /** The request's business parameters, compared on a repeated prepay for the same out_trade_no. */
  fingerprint: string;
  prepayId: string;
  tradeState: TradeState;
  createdAt: number;
  transactionId?: string;
  /** Unix seconds. */
  paidAt?: number;
}

/**
 * What one notify delivery came to: the merchant's HTTP status (null: no answer), its reply, and whether WeChat
 * counts it as received.
 */
export interface NotifyResult {
  status: number | null;
  reply: string;
  accepted: boolean;
}

/**
 * Which notify to send: the genuine one, or a probe the merchant must refuse — `forged` (body altered after
 * signing), `stale` (v3: Wechatpay-Timestamp 10 minutes old), `signtest` (v3: a WECHATPAY/SIGNTEST/ signature).
 */
export type NotifyVariant = 'genuine' | 'forged' | 'stale' | 'signtest';

/** Every variant, for the control route's check. */
export const NOTIFY_VARIANTS: readonly NotifyVariant[] = ['genuine', 'forged', 'stale', 'signtest'];

export interface Delivery extends NotifyResult {
  outTradeNo: string;
  variant: NotifyVariant;
  version: PayVersion;
  attempt: number;
  at: string;
}

/**
 * Sends one signed notify for a paid order (built by the order's API version) and reports the merchant's reply;
 * undefined when this version has no such variant (v2 carries no timestamp or serial to probe).
 */
export type Notifier = (order: SandboxOrder, variant?: NotifyVariant) => Promise<NotifyResult> | undefined;

/** The five `wx.requestPayment` fields (plus the appId the cashier knows), as the mini-program passes them. */
export interface CashierParams {
  appId: string;
  timeStamp: string;
  nonceStr: string;
  package: string;
  signType: string;
  paySign: string;
}

export class PayStore {
  readonly orders = new Map<string, SandboxOrder>();
  readonly deliveries: Delivery[] = [];
  readonly notifiers: Partial<Record<PayVersion, Notifier>> = {};
  /** Checks a `wx.requestPayment` paySign as WeChat's cashier does, per API version. */
  readonly paySignCheckers: Partial<Record<PayVersion, (params: CashierParams) => boolean>> = {};

  /** The order a prepay_id belongs to (what the cashier knows from `package`). */
  byPrepayId(prepayId: string): SandboxOrder | undefined {
    for (const order of this.orders.values()) if (order.prepayId === prepayId) return order;
    return undefined;
  }
}
