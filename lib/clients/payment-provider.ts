import type { PayVersion } from '#lib/wechat-pay/fields';
import type { RefundStatus } from '#lib/wechat-pay/refund-protocol';

/**
 * What the payments domain needs from WeChat Pay, whichever API version runs. `wechat-pay-v2.ts` and
 * `wechat-pay-v3.ts` implement it; `lib/payments/` never knows which one it holds.
 */

export interface PrepayRequest {
  outTradeNo: string;
  /** ≤ 127 bytes UTF-8. */
  description: string;
  /** Integer fen. */
  totalFee: number;
  /** The payer's openid under `appId`. */
  openid: string;
  clientIp: string;
  timeExpire: Date;
  /** The AppID to pay under: the official account's for H5 (JSAPI); absent = the mini-program's. */
  appId?: string;
}

/**
 * Exactly what `wx.requestPayment` takes; for an H5 order also `appId` (the official account's), which
 * `WeixinJSBridge.invoke('getBrandWCPayRequest', …)` needs and the paySign covers.
 */
export interface PayParams {
  appId?: string;
  timeStamp: string;
  nonceStr: string;
  package: string;
  signType: 'MD5' | 'HMAC-SHA256' | 'RSA';
  paySign: string;
}

/** A payment WeChat reports as successful, from a notify or an order query. */
export interface PaymentReport {
  outTradeNo: string;
  transactionId: string;
  /** Integer fen, the order total (not cash_fee / payer_total). */
  totalFee: number;
  currency: string;
  /** ISO 8601 UTC. */
  paidAt: string;
  appId: string;
  mchId: string;
  bankType?: string;
  /** Integer fen actually paid by the user (after coupons). */
  cashFee?: number;
  /** The channel that reported it, stored on the order as `paidVia`. */
  paidVia: 'notify-v2' | 'notify-v3' | 'orderquery-v2' | 'orderquery-v3';
}

/** WeChat's view of an order: SUCCESS carries the report; other trade states are only named. */
export type OrderQueryResult = { tradeState: 'SUCCESS'; report: PaymentReport } | { tradeState: string };

/**
 * Where an order stands after a close: CLOSED at WeChat (or never known to it), or paid after all (then the
 * report is to be settled like any other).
 */
export type CloseResult = { tradeState: 'CLOSED' } | { tradeState: 'SUCCESS'; report: PaymentReport };

export interface NotifyRequest {
  headers: Record<string, string | undefined>;
  /** The raw body exactly as received (already base64-decoded when API Gateway flagged it). */
  body: string;
}

/** A refund to request: the same parameters on every retry of one out_refund_no. Amounts integer fen. */
export interface RefundRequest {
  outTradeNo: string;
  outRefundNo: string;
  /** The order's total_fee. */
  totalFee: number;
  /** This refund's refund_fee. */
  refundFee: number;
  /** refund_desc / reason, ≤ 80 characters. */
  reason?: string;
  /** v2: the order's AppID (the official account's for an H5 order); absent: the mini-program's. */
  appId?: string;
}

/** Where an ABNORMAL refund is sent again: the user's own bank card, or the merchant's (who then pays the user). */
export type AbnormalRefundType = 'USER_BANK_CARD' | 'MERCHANT_BANK_CARD';

/**
 * A re-application of an ABNORMAL refund (v3 发起异常退款). USER_BANK_CARD needs bankType, bankAccount and realName
 * (plaintext here; the client encrypts bankAccount and realName and never logs them); MERCHANT_BANK_CARD needs none.
 */
export interface AbnormalRefundRequest {
  /** WeChat's refund_id of the ABNORMAL refund. */
  refundId: string;
  outRefundNo: string;
  type: AbnormalRefundType;
  /** WeChat's bank code of the user's card (e.g. ICBC_DEBIT). */
  bankType?: string;
  bankAccount?: string;
  realName?: string;
}

/** What WeChat says of one refund (refund answer, refund query or refund notify). */
export interface RefundReport {
  outRefundNo: string;
  outTradeNo: string;
  status: RefundStatus;
  /** WeChat's refund_id. */
  refundId?: string;
  /** Integer fen refunded, as WeChat reports it. */
  refundFee: number;
  /** ISO 8601 UTC, once SUCCESS. */
  successAt?: string;
  /** The merchant the report names (notifies and queries), checked against ours. */
  mchId?: string;
  /** The channel that reported it. */
  via: 'refund-v2' | 'refund-v3' | 'refundquery-v2' | 'refundquery-v3' | 'notify-v2' | 'notify-v3';
}

/**
 * A verified notify: a payment to credit, a refund outcome to apply, or a verified message to acknowledge
 * without effect.
 */
export type NotifyResult =
  | { kind: 'paid'; report: PaymentReport }
  | { kind: 'refund'; report: RefundReport }
  | { kind: 'ignored'; reason: string };

export interface NotifyReply {
  statusCode: number;
  headers: Record<string, string>;
  body: string;
}

/**
 * A day's trade bill (bill_type ALL) as WeChat answered: the uncompressed text, `empty` (NO_STATEMENT_EXIST / No
 * Bill Exist: no trade that day), or `not_ready` (STATEMENT_CREATING / Bill Creating: ask again later; WeChat
 * makes bills from 09:00 China time the next day).
 */
export type TradeBillDownload = { kind: 'bill'; text: string } | { kind: 'empty' } | { kind: 'not_ready' };

export interface PaymentProvider {
  readonly version: PayVersion;
  /**
   * Requests a prepay_id (idempotent for identical parameters); throws ConflictError / UpstreamError /
   * ServiceUnavailableError.
   */
  prepay(request: PrepayRequest): Promise<string>;
  /**
   * Signs `wx.requestPayment` parameters for a prepay_id made under `appId` (absent: the mini-program's); with
   * an `appId` the answer carries it (H5's getBrandWCPayRequest takes it).
   */
  payParams(prepayId: string, appId?: string): PayParams;
  /**
   * WeChat's order query by out_trade_no, response signature verified; `appId`: the order's, when not the
   * mini-program's (v2 sends it; v3 queries by mchid only).
   */
  queryOrder(outTradeNo: string, appId?: string): Promise<OrderQueryResult>;
  /**
   * Closes an unpaid order at WeChat (v2 closeorder; v3 close, then a query to confirm, since v3 answers 204
   * even for an order it does not know). A paid order answers its report instead. Throws UpstreamError /
   * ServiceUnavailableError when WeChat fails or the close is not confirmed.
   */
  closeOrder(outTradeNo: string, appId?: string): Promise<CloseResult>;
  /**
   * Downloads the trade bill (ALL) of one China-time day `YYYY-MM-DD` (v2 `/pay/downloadbill`, gzip; v3
   * `/v3/bill/tradebill` then its download_url, the SHA-1 checked). Throws UpstreamError on a refusal or a
   * corrupt bill, ServiceUnavailableError when WeChat does not answer in time.
   */
  downloadTradeBill(day: string): Promise<TradeBillDownload>;
  closeOrder(outTradeNo: string): Promise<CloseResult>;
  /**
   * Requests a refund (v2 `/secapi/pay/refund` over mutual TLS; v3 `POST /v3/refund/domestic/refunds`) with
   * notify_url = the payment notify URL; WeChat refunds a repeated out_refund_no once, so a retry after a timeout,
   * SYSTEMERROR, BIZERR_NEED_RETRY or 5xx reuses it with identical parameters. Answers WeChat's view (usually
   * PROCESSING: accepted, not yet done). Throws RefundRefusedError when WeChat refuses it for good (nothing was
   * refunded), ServiceUnavailableError / UpstreamError otherwise (the outcome is unknown: query it).
   */
  refund(request: RefundRequest): Promise<RefundReport>;
  /**
   * WeChat's refund query by out_refund_no (v2 `/pay/refundquery`; v3 `GET /v3/refund/domestic/refunds/{no}`);
   * `NOTEXIST` when WeChat never received the refund. `appId`: v2, the order's AppID when it is the official
   * account's (an H5 order). Throws ServiceUnavailableError / UpstreamError.
   */
  queryRefund(outRefundNo: string, appId?: string): Promise<RefundReport | { status: 'NOTEXIST' }>;
  /**
   * Re-applies an ABNORMAL refund (v3 `POST /v3/refund/domestic/refunds/{refund_id}/apply-abnormal-refund`, doc
   * 4017150905): WeChat's refund model as it answers (usually PROCESSING; SUCCESS or CLOSED come later by notify or
   * query). v2 has no such API: it throws ConflictError ABNORMAL_REFUND_V3_ONLY without calling WeChat. Throws
   * UpstreamError ABNORMAL_REFUND_REFUSED when WeChat refuses it, ServiceUnavailableError / UpstreamError otherwise.
   */
  applyAbnormalRefund(request: AbnormalRefundRequest): Promise<RefundReport>;
  /** Whether a notify body is in this version's format (v2 XML, v3 JSON). */
  accepts(request: NotifyRequest): boolean;
  /**
   * Verifies and decodes a notify (`nowSeconds`: Unix seconds, for v3's ±300 s rule); throws
   * NotifyRejectedError on a body in the other version's format or anything unverified or malformed.
   */
  parseNotify(request: NotifyRequest, nowSeconds: number): NotifyResult;
  /** The success reply WeChat expects. */
  notifyAck(): NotifyReply;
  /** The failure reply WeChat expects (it retries on it). */
  notifyFail(status: number, message: string): NotifyReply;
}
