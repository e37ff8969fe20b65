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

export interface Delivery extends NotifyResult {
  outTradeNo: string;
  version: PayVersion;
  attempt: number;
  at: string;
}

/** Sends one signed notify for a paid order (built by the order's API version) and reports the merchant's reply. */
export type Notifier = (order: SandboxOrder) => Promise<NotifyResult>;

export class PayStore {
  readonly orders = new Map<string, SandboxOrder>();
  readonly deliveries: Delivery[] = [];
  readonly notifiers: Partial<Record<PayVersion, Notifier>> = {};
}
