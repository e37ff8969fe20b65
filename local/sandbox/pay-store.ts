/**
 * The sandbox merchant's orders, shared by the v2 (pay-v2.ts) and v3 (pay-v3.ts) endpoints and the
 * control routes (/sandbox/pay, /sandbox/notifications). Amounts are integer fen.
 */

export type TradeState = 'NOTPAY' | 'SUCCESS' | 'CLOSED';

export interface SandboxOrder {
  version: 'v2' | 'v3';
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

export interface Delivery {
  outTradeNo: string;
  version: 'v2' | 'v3';
  attempt: number;
  at: string;
  status: number | null;
  reply: string;
  /** Whether WeChat would count this reply as received (v2 SUCCESS XML; v3 2xx). */
  accepted: boolean;
}

/** Sends one signed notify for a paid order and reports the merchant's reply. */
export type Notifier = (
  order: SandboxOrder,
) => Promise<{ status: number | null; reply: string; accepted: boolean }>;

export class PayStore {
  readonly orders = new Map<string, SandboxOrder>();
  readonly deliveries: Delivery[] = [];
  readonly notifiers: Partial<Record<'v2' | 'v3', Notifier>> = {};
}
