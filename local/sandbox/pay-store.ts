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

/** What the next refund comes to (POST /sandbox/refunds/outcome); `deliver: false` loses its notify. */
export type RefundMode = 'SUCCESS' | 'ABNORMAL' | 'CLOSED';

/** Every refund mode, for the control route's check. */
export const REFUND_MODES: readonly RefundMode[] = ['SUCCESS', 'ABNORMAL', 'CLOSED'];

/** The fate of a refund: its final state, whether its notify is delivered, after how long (ms). */
export interface RefundPlan {
  mode: RefundMode;
  deliver: boolean;
  delayMs?: number;
}

/** A refund the sandbox received (v2 /secapi/pay/refund or v3 refunds). Amounts integer fen; times Unix seconds. */
export interface SandboxRefund {
  version: PayVersion;
  outRefundNo: string;
  outTradeNo: string;
  transactionId: string;
  refundId: string;
  /** refund_fee. */
  refundFee: number;
  /** The order's total_fee. */
  totalFee: number;
  reason?: string;
  notifyUrl: string;
  status: 'PROCESSING' | RefundMode;
  /** What PROCESSING turns into, whether its notify is delivered, after how long (ms; default the sandbox's). */
  plan: RefundPlan;
  /** The request's parameters, compared when the same out_refund_no comes again. */
  fingerprint: string;
  createdAt: number;
  /** When it became SUCCESS. */
  successAt?: number;
  /**
   * Each v3 apply-abnormal-refund it accepted, as WeChat decrypted it (the sandbox's fake bank data; tests read it
   * back to check the encryption).
   */
  reapplications?: { type: string; bankType?: string; bankAccount?: string; realName?: string; at: number }[];
}

/** One refund notify delivery. */
export interface RefundDelivery extends NotifyResult {
  outRefundNo: string;
  version: PayVersion;
  refundStatus: SandboxRefund['status'];
  at: string;
}

/** Builds and sends one refund notify for a final refund (per API version); resolves with the merchant's reply. */
export type RefundNotifier = (refund: SandboxRefund, order: SandboxOrder) => Promise<NotifyResult>;

export class PayStore {
  readonly orders = new Map<string, SandboxOrder>();
  /** Every refund by out_refund_no. */
  readonly refunds = new Map<string, SandboxRefund>();
  readonly refundDeliveries: RefundDelivery[] = [];
  readonly refundNotifiers: Partial<Record<PayVersion, RefundNotifier>> = {};
  /** The plan of the next refund (POST /sandbox/refunds/outcome); default SUCCESS, delivered. */
  nextRefund?: RefundPlan;
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

/**
 * The refunds the sandbox processed to a final state, oldest first (SUCCESS ones carry `successAt`, Unix seconds):
 * what WeChat's trade bill lists as refunds for the day of `successAt` in China time. `version` limits to one API.
 */
export function processedRefunds(store: PayStore, version?: PayVersion): SandboxRefund[] {
  return [...store.refunds.values()]
    .filter((refund) => refund.status !== 'PROCESSING' && (!version || refund.version === version))
    .sort((a, b) => (a.successAt ?? a.createdAt) - (b.successAt ?? b.createdAt));
}
