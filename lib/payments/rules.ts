import type { PaymentProvider, PaymentReport, PrepayRequest } from '#lib/clients/payment-provider';
import { PaymentRejectedError } from '#lib/errors';
import type { Plan } from '#lib/plans';
import type { OrderRecord, OwnerSnapshot } from '#lib/repositories/order-repository';
import type { MembershipChange } from '#lib/repositories/user-repository';
import { randomAlphanumeric } from '#lib/wechat-pay/fields';

/**
 * The pure rules of the payments domain: order numbers, descriptions, lifetimes, the membership
 * arithmetic and whether a reported payment may be credited. No I/O; tested without mocks.
 */

/** The order as the mini-program sees it (DESIGN.md `order`). */
export interface PublicOrder {
  outTradeNo: string;
  planId: string;
  description: string;
  totalFee: number;
  status: OrderRecord['status'];
  createdAt: string;
  paidAt: string | null;
  transactionId: string | null;
  /** Refunded so far, integer fen. */
  refundedFee: number;
}

/** How long an order (and its prepay_id) can be paid, seconds: WeChat keeps a prepay_id for 2 hours. */
export const ORDER_LIFETIME_SECONDS = 2 * 3600;
/** An open order is continued by a new `{planId}` request only while it has this long left to be paid, seconds. */
const REUSE_MARGIN_SECONDS = 10 * 60;
const DAY_MS = 86_400_000;

/** The public shape of a stored order. */
export function toPublicOrder(order: OrderRecord): PublicOrder {
  return {
    outTradeNo: order.outTradeNo,
    planId: order.planId,
    description: order.description,
    totalFee: order.totalFee,
    status: order.status,
    createdAt: order.createdAt,
    paidAt: order.paidAt ?? null,
    transactionId: order.transactionId ?? null,
    refundedFee: order.refundedFee ?? 0,
  };
}

/** A fresh out_trade_no: `M` + yyyyMMddHHmmss (UTC) + 12 random letters/digits = 27 chars of [0-9A-Za-z]. */
export function newOutTradeNo(now: Date): string {
  return `M${utcStamp(now)}${randomAlphanumeric(12)}`;
}

/** `yyyyMMddHHmmss` of `now` in UTC (the time part of our out_trade_no and out_refund_no). */
export function utcStamp(now: Date): string {
  return now.toISOString().replace(/[-:T]/g, '').slice(0, 14);
}

/** Cuts a string to at most `maxBytes` UTF-8 bytes on a code-point boundary (never splits a character). */
export function truncateUtf8(text: string, maxBytes: number): string {
  let out = '';
  let bytes = 0;
  for (const char of text) {
    const size = Buffer.byteLength(char);
    if (bytes + size > maxBytes) break;
    out += char;
    bytes += size;
  }
  return out;
}

/** New membership end: max(now, current end) + days, as ISO 8601 UTC. Commutative for concurrent payments. */
export function extendMembership(currentEnd: string | undefined, now: Date, days: number): string {
  const current = currentEnd ? new Date(currentEnd).getTime() : 0;
  return new Date(Math.max(now.getTime(), current) + days * DAY_MS).toISOString();
}

/**
 * How crediting `days` moves an owner's membership to max(now, end) + days, as one conditional write: an
 * in-place `extend` while the owner's end (ISO UTC, as last read or snapshotted) is after `now`, else a `set`
 * to now + days with role 1 on the owner's `version`. `extendRefused`: the last in-place extend was refused
 * (the end passed meanwhile, or the item still holds the pre-`membershipEndMs` ISO form), so the owner as
 * DynamoDB returned it is set on its version instead. Either write is refused, writing nothing, when its
 * premise no longer holds, so the result is exact under any interleaving.
 */
export function membershipCredit(
  owner: OwnerSnapshot,
  now: Date,
  days: number,
  extendRefused = false,
): MembershipChange {
  const end = owner.membershipExpiredAt ? Date.parse(owner.membershipExpiredAt) : 0;
  if (end > now.getTime() && !extendRefused) return { kind: 'extend', days, now };
  return {
    kind: 'set',
    end: extendMembership(owner.membershipExpiredAt, now, days),
    role: 1,
    version: owner.version ?? 0,
  };
}

/**
 * The membership days an order's refunds revoke in total: ⌊plan days × refundedFee ÷ totalFee⌋ (fen, integer
 * arithmetic), so partial refunds revoke proportionally and a full refund revokes exactly the plan's days.
 * Throws RangeError unless 0 ≤ refundedFee ≤ totalFee, totalFee > 0 and days ≥ 0 are integers.
 */
export function revokedDaysFor(planDays: number, refundedFee: number, totalFee: number): number {
  const integers = [planDays, refundedFee, totalFee].every(Number.isSafeInteger);
  if (!integers || totalFee <= 0 || planDays < 0 || refundedFee < 0 || refundedFee > totalFee) {
    throw new RangeError('revokedDaysFor: need integers 0 ≤ refundedFee ≤ totalFee, totalFee > 0, days ≥ 0');
  }
  return Math.floor((planDays * refundedFee) / totalFee);
}

/**
 * The membership after revoking `days`: end − days (ISO UTC), and role 0 when that end is not after `now`
 * (role otherwise unchanged). No end (never a member) stays a past end at `now`.
 */
export function shortenMembership(
  currentEnd: string | undefined,
  role: 0 | 1,
  days: number,
  now: Date,
): { membershipExpiredAt: string; role: 0 | 1 } {
  const end = (currentEnd ? Date.parse(currentEnd) : now.getTime()) - days * DAY_MS;
  return { membershipExpiredAt: new Date(end).toISOString(), role: end > now.getTime() ? role : 0 };
}

/** Order description shown in the user's WeChat bill (≤ 127 bytes). */
export function orderDescription(plan: Plan): string {
  return truncateUtf8(`会员-${plan.name}`, 127);
}

/** A new PENDING order for a plan at the catalog price, payable for ORDER_LIFETIME_SECONDS. */
export function newOrder(input: {
  outTradeNo: string;
  userId: string;
  openid: string;
  plan: Plan;
  payVersion: OrderRecord['payVersion'];
  clientIp: string;
  now: Date;
  /** The official account's AppID for an H5 order; absent for the mini-program's. */
  appId?: string;
  /** The owner as stored when the order is opened (see OrderRecord.ownerAtOrder). */
  owner?: OwnerSnapshot;
}): OrderRecord {
  const { now, plan, owner } = input;
  return {
    outTradeNo: input.outTradeNo,
    userId: input.userId,
    openid: input.openid,
    ...(input.appId ? { appId: input.appId } : {}),
    planId: plan.id,
    description: orderDescription(plan),
    totalFee: plan.totalFee,
    status: 'PENDING',
    payVersion: input.payVersion,
    clientIp: input.clientIp,
    createdAt: now.toISOString(),
    timeExpire: new Date(now.getTime() + ORDER_LIFETIME_SECONDS * 1000).toISOString(),
    reconcileAt: new Date(now.getTime() + RECONCILE_STEPS_MINUTES[0] * 60_000).toISOString(),
    ...(owner
      ? {
          ownerAtOrder: {
            version: owner.version ?? 0,
            ...(owner.membershipExpiredAt ? { membershipExpiredAt: owner.membershipExpiredAt } : {}),
          },
        }
      : {}),
  };
}

/**
 * The prepay request for a stored order: exactly its stored parameters, so a re-request is the same order
 * to WeChat (which then answers the same prepay_id).
 */
export function prepayRequestOf(order: OrderRecord): PrepayRequest {
  return {
    outTradeNo: order.outTradeNo,
    description: order.description,
    totalFee: order.totalFee,
    // A pseudonymised order (deleted owner) is never paid again: its owner's sessions are gone.
    openid: order.openid ?? '',
    clientIp: order.clientIp ?? '',
    timeExpire: new Date(order.timeExpire),
    ...(order.appId ? { appId: order.appId } : {}),
  };
}

/** When the reconciler checks a PENDING order, in minutes after its creation; then once more at expiry. */
export const RECONCILE_STEPS_MINUTES = [1, 5, 15, 30, 60] as const;

/**
 * The next time the reconciler checks a PENDING order after `now`: the first back-off step after now, else
 * its expiry (ISO UTC). An expired order is due at once.
 */
export function nextReconcileAt(order: Pick<OrderRecord, 'createdAt' | 'timeExpire'>, now: Date): string {
  const created = Date.parse(order.createdAt);
  for (const minutes of RECONCILE_STEPS_MINUTES) {
    const at = created + minutes * 60_000;
    if (at > now.getTime() && at < Date.parse(order.timeExpire)) return new Date(at).toISOString();
  }
  return new Date(Math.max(Date.parse(order.timeExpire), now.getTime())).toISOString();
}

/** Whether an order can no longer be paid (WeChat refuses payment past time_expire). */
export function isExpired(order: Pick<OrderRecord, 'timeExpire'>, now: Date): boolean {
  return Date.parse(order.timeExpire) <= now.getTime();
}

/**
 * The claim time (ISO UTC) at or before which an open-order claim can be taken over without reading its order:
 * the order was opened at its claim time, so it has at most REUSE_MARGIN_SECONDS left to be paid and
 * continuesOrder would refuse it whatever its state.
 */
export function claimsEndedBefore(now: Date): string {
  return new Date(now.getTime() - (ORDER_LIFETIME_SECONDS - REUSE_MARGIN_SECONDS) * 1000).toISOString();
}

/**
 * Whether a new `{planId}` request continues this order (a double tap, or a retry after WeChat was
 * unavailable): PENDING, same plan, pay version and AppID (`appId` undefined: the mini-program's), and at
 * least REUSE_MARGIN_SECONDS left to pay.
 */
export function continuesOrder(
  order: OrderRecord,
  planId: string,
  payVersion: string,
  now: Date,
  appId?: string,
): boolean {
  return (
    order.status === 'PENDING' &&
    order.appId === appId &&
    order.planId === planId &&
    order.payVersion === payVersion &&
    new Date(order.timeExpire).getTime() - now.getTime() > REUSE_MARGIN_SECONDS * 1000
  );
}

/** A rejected report's detail for the payment exception (JSON). */
function reportDetail(report: PaymentReport, extra: object = {}): string {
  return JSON.stringify({
    outTradeNo: report.outTradeNo,
    transactionId: report.transactionId,
    paidVia: report.paidVia,
    ...extra,
  });
}

/**
 * Where a stored order stands for a reported payment: 'pending' (credit it) or 'duplicate' (already PAID by
 * this transaction_id). Throws PaymentRejectedError for anything that must never be credited: no such
 * order, another amount, PAID by another transaction, or not PENDING.
 */
export function standingFor(order: OrderRecord | undefined, report: PaymentReport): 'pending' | 'duplicate' {
  if (!order) throw new PaymentRejectedError('unknown_order', 'unknown out_trade_no', reportDetail(report));
  if (order.totalFee !== report.totalFee) {
    throw new PaymentRejectedError(
      'amount_mismatch',
      'amount mismatch',
      reportDetail(report, { expected: order.totalFee, reported: report.totalFee }),
      order.totalFee,
    );
  }
  // A refunded order was paid by this transaction once: a late notify of it is a duplicate, never a new credit.
  if (order.status === 'REFUNDED' && order.transactionId === report.transactionId) return 'duplicate';
  if (order.status === 'PAID') {
    if (order.transactionId === report.transactionId) return 'duplicate';
    throw new PaymentRejectedError(
      'paid_by_other',
      'order already paid by another transaction',
      reportDetail(report),
      order.totalFee,
    );
  }
  if (order.status !== 'PENDING') {
    throw new PaymentRejectedError(
      'not_pending',
      `order is ${order.status}`,
      reportDetail(report),
      order.totalFee,
    );
  }
  return 'pending';
}

/**
 * Checks a report names our merchant (mch_id, and one of our AppIDs: the mini-program's or the official
 * account's when configured) and currency; throws PaymentRejectedError otherwise.
 */
export function assertOurMerchant(
  report: PaymentReport,
  merchant: { appId: string; mpAppId?: string; mchId: string },
): void {
  const ours = report.appId === merchant.appId || (!!merchant.mpAppId && report.appId === merchant.mpAppId);
  if (!ours || report.mchId !== merchant.mchId) {
    const detail = JSON.stringify({ outTradeNo: report.outTradeNo, transactionId: report.transactionId });
    throw new PaymentRejectedError('merchant_mismatch', 'appid/mchid mismatch', detail);
  }
  if (report.currency !== 'CNY') throw new PaymentRejectedError('currency_mismatch', 'currency mismatch');
}

/**
 * Checks a report names the AppID its order was made with (an H5 order's official account, else the
 * mini-program): a payment of order A reported under the other AppID is never credited. Throws
 * PaymentRejectedError merchant_mismatch.
 */
export function assertOrderAppId(order: OrderRecord, report: PaymentReport, miniProgramAppId: string): void {
  if (report.appId !== (order.appId ?? miniProgramAppId)) {
    const detail = JSON.stringify({ outTradeNo: report.outTradeNo, transactionId: report.transactionId });
    throw new PaymentRejectedError('merchant_mismatch', "appid is not the order's", detail, order.totalFee);
  }
}

/** One WeChat Pay client, or the configured ones (the current version's first, then a migration window's). */
export type Providers = PaymentProvider | readonly PaymentProvider[];

/** The client of an order's own pay version among `providers`; undefined when that version is not configured. */
export function providerFor(
  order: Pick<OrderRecord, 'payVersion'>,
  providers: Providers,
): PaymentProvider | undefined {
  const list: readonly PaymentProvider[] = Array.isArray(providers)
    ? providers
    : [providers as PaymentProvider];
  return list.find((provider) => provider.version === order.payVersion);
}
