/**
 * Typed errors. Domain and client code throw these; `lib/http.ts` is the only place that turns them into
 * responses (API routes and WeChat Pay notifies).
 * `message` is for people (Chinese, shown to the mini-program); `code` is for machines; `detail` only
 * goes to the logs and must never hold a secret.
 */
export class AppError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly detail?: string,
  ) {
    super(message);
    this.name = new.target.name;
  }
}

export class BadRequestError extends AppError {
  constructor(message: string, code = 'BAD_REQUEST', detail?: string) {
    super(400, code, message, detail);
  }
}

/** One refused input field: its dot path (`body` for the body itself) and a stable code (REQUIRED, TOO_LONG, …). */
export interface FieldError {
  field: string;
  code: string;
}

/**
 * A request body or parameter that fails its schema (400 VALIDATION_ERROR); `errors` lists every refused field
 * (the first one's path is the logged detail).
 */
export class ValidationError extends BadRequestError {
  constructor(
    message: string,
    readonly errors: FieldError[],
  ) {
    super(message, 'VALIDATION_ERROR', errors[0]?.field);
  }
}

export class UnauthorizedError extends AppError {
  constructor(message = '请先登录', code = 'UNAUTHORIZED', detail?: string) {
    super(401, code, message, detail);
  }
}

export class ForbiddenError extends AppError {
  constructor(message: string, code = 'FORBIDDEN', detail?: string) {
    super(403, code, message, detail);
  }
}

export class NotFoundError extends AppError {
  constructor(message: string, code = 'NOT_FOUND', detail?: string) {
    super(404, code, message, detail);
  }
}

/** A feature whose settings are absent on this stage (e.g. H5 without WECHAT_MP_APPID): 404 FEATURE_DISABLED. */
export class FeatureDisabledError extends AppError {
  constructor(message = '该功能未开启', detail?: string) {
    super(404, 'FEATURE_DISABLED', message, detail);
  }
}

export class ConflictError extends AppError {
  constructor(message: string, code = 'CONFLICT', detail?: string) {
    super(409, code, message, detail);
  }
}

export class PayloadTooLargeError extends AppError {
  constructor(message = '请求体过大', code = 'PAYLOAD_TOO_LARGE') {
    super(413, code, message);
  }
}

export class TooManyRequestsError extends AppError {
  constructor(
    message: string,
    readonly retryAfterSeconds = 60,
    code = 'TOO_MANY_REQUESTS',
    detail?: string,
  ) {
    super(429, code, message, detail);
  }
}

/** WeChat answered, but with something we cannot use (502). */
export class UpstreamError extends AppError {
  constructor(message = '微信服务异常，请稍后再试', code = 'WECHAT_ERROR', detail?: string) {
    super(502, code, message, detail);
  }
}

/** WeChat did not answer in time or said it is busy (503). */
export class ServiceUnavailableError extends AppError {
  constructor(message = '微信服务繁忙，请稍后再试', code = 'WECHAT_UNAVAILABLE', detail?: string) {
    super(503, code, message, detail);
  }
}

/** A missing or malformed configuration value. `detail` names the parameter, never its value. */
export class ConfigError extends AppError {
  constructor(detail: string) {
    super(500, 'CONFIG_ERROR', '服务配置错误', detail);
  }
}

/**
 * A WeChat Pay notify that failed verification or is malformed (the wire protocol's refusal). Never
 * credited. `status` is the HTTP status a v3 notify reply uses (v2 always answers 200 with FAIL XML).
 */
export class NotifyRejectedError extends AppError {
  constructor(reason: string, status = 401, detail?: string) {
    super(status, 'NOTIFY_REJECTED', reason, detail);
  }
}

/** Why a verified payment report cannot be credited. */
export type PaymentRejection =
  | 'merchant_mismatch'
  | 'currency_mismatch'
  | 'unknown_order'
  | 'amount_mismatch'
  | 'paid_by_other'
  | 'not_pending'
  | 'owner_missing'
  /** A verified refund outcome that cannot be applied: unknown out_refund_no, or order/amount differing. */
  | 'refund_mismatch'
  /** WeChat reports a refund ABNORMAL (the payer's account refused it): an operator must act. */
  | 'refund_abnormal';

/**
 * Why the daily bill (lib/payments/bill.ts) records a payment exception: a difference between WeChat's trade bill
 * and our ledger. Never a notify's answer, hence apart from PaymentRejection (whose every reason maps to a reply).
 */
export type BillDifferenceReason =
  /** The bill shows a payment we did not credit (no order, order closed, paid under another transaction_id). */
  | 'bill_not_credited'
  /** We credited a payment that day's bill does not show. */
  | 'bill_missing_payment'
  /** The bill's amount for a payment or refund differs from ours. */
  | 'bill_amount_mismatch'
  /** The bill shows a refund we have no record of. */
  | 'bill_refund_not_recorded'
  /** We hold a successful refund that day's bill does not show. */
  | 'bill_refund_missing';

/** Why a payment exception was recorded (the exception record's `reason`). */
export type ExceptionReason = PaymentRejection | BillDifferenceReason;

/**
 * The payments domain refuses to credit a payment WeChat reported (notify or order query): nothing is
 * credited. `message` is the short reason (logs, FAIL replies); `detail` goes only to the logs.
 */
export class PaymentRejectedError extends Error {
  constructor(
    readonly reason: PaymentRejection,
    message: string,
    readonly detail?: string,
    /** Our order's total_fee in fen, when there is an order. */
    readonly orderFee?: number,
  ) {
    super(message);
    this.name = 'PaymentRejectedError';
  }
}

/**
 * WeChat refused a refund for good (v2 result_code FAIL with an err_code other than SYSTEMERROR /
 * BIZERR_NEED_RETRY; v3 4xx): nothing was refunded, so the reserved amount is released. `code` is WeChat's.
 */
export class RefundRefusedError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'RefundRefusedError';
  }
}
