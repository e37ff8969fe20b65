import { describe, expect, it } from 'vitest';
import type { PaymentReport } from '#lib/clients/payment-provider';
import { PaymentRejectedError } from '#lib/errors';
import {
  assertOrderAppId,
  assertOurMerchant,
  claimsEndedBefore,
  continuesOrder,
  extendMembership,
  membershipCredit,
  newOrder,
  newOutTradeNo,
  ORDER_LIFETIME_SECONDS,
  orderDescription,
  revokedDaysFor,
  shortenMembership,
  standingFor,
  toPublicOrder,
  truncateUtf8,
} from '#lib/payments/rules';
import { PLANS } from '#lib/plans';
import { anOrder } from '#test/helpers/builders';

describe('orderDescription', () => {
  it('builds descriptions within 127 bytes', () => {
    // Assess
    for (const plan of PLANS) expect(Buffer.byteLength(orderDescription(plan))).toBeLessThanOrEqual(127);
  });
});

describe('newOutTradeNo', () => {
  it('makes 27-char ids from the allowed alphabet that differ each time', () => {
    // Act
    const ids = new Set(Array.from({ length: 1000 }, () => newOutTradeNo(new Date('2026-11-21T08:00:00Z'))));
    // Assess
    expect(ids.size).toBe(1000);
    for (const id of ids) expect(id).toMatch(/^M20261121080000[0-9A-Za-z]{12}$/);
  });
});

describe('truncateUtf8', () => {
  it('never splits a character when cutting at a byte limit', () => {
    // Prepare
    const text = '会员😀'.repeat(30);
    // Act
    const cut = truncateUtf8(text, 127);
    // Assess
    expect(Buffer.byteLength(cut)).toBeLessThanOrEqual(127);
    expect(cut.isWellFormed()).toBe(true);
    expect(text.startsWith(cut)).toBe(true);
    expect(truncateUtf8('abc', 127)).toBe('abc');
  });
});

describe('claimsEndedBefore', () => {
  it('ends a claim whose order has at most the 10-minute reuse margin left of its 2 hours', () => {
    // Prepare
    const now = new Date('2026-11-30T12:00:00.000Z');
    const ended = claimsEndedBefore(now);
    const openedThen = anOrder({
      createdAt: ended,
      timeExpire: new Date(Date.parse(ended) + 7_200_000).toISOString(),
    });
    const openedLater = anOrder({
      createdAt: new Date(Date.parse(ended) + 1000).toISOString(),
      timeExpire: new Date(Date.parse(ended) + 7_201_000).toISOString(),
    });
    // Assess: an order opened at that claim time can no longer be continued; one opened a second later can
    expect(ended).toBe('2026-11-30T10:10:00.000Z');
    expect(continuesOrder(openedThen, openedThen.planId, openedThen.payVersion, now)).toBe(false);
    expect(continuesOrder(openedLater, openedLater.planId, openedLater.payVersion, now)).toBe(true);
  });
});

describe('membershipCredit', () => {
  const now = new Date('2026-11-21T00:00:00Z');

  it('extends an unended membership in place, whatever version the owner was seen at', () => {
    // Assess
    expect(
      membershipCredit({ version: 7, membershipExpiredAt: '2026-11-21T00:00:01.000Z' }, now, 31),
    ).toEqual({
      kind: 'extend',
      days: 31,
      now,
    });
  });

  it('sets a lapsed, just-ended or absent membership to now + days, role 1, on the owner version', () => {
    // Assess
    const set = { kind: 'set', end: '2026-12-22T00:00:00.000Z', role: 1 };
    expect(membershipCredit({ version: 2 }, now, 31)).toEqual({ ...set, version: 2 });
    expect(membershipCredit({ version: 5, membershipExpiredAt: now.toISOString() }, now, 31)).toEqual({
      ...set,
      version: 5,
    });
    expect(
      membershipCredit({ version: 0, membershipExpiredAt: '2026-01-01T00:00:00.000Z' }, now, 31),
    ).toEqual({
      ...set,
      version: 0,
    });
  });

  it('sets max(now, end) + days on the version once an in-place extend was refused', () => {
    // Assess
    expect(
      membershipCredit({ version: 4, membershipExpiredAt: '2027-01-10T00:00:00.000Z' }, now, 92, true),
    ).toEqual({ kind: 'set', end: '2027-04-12T00:00:00.000Z', role: 1, version: 4 });
  });
});

describe('extendMembership', () => {
  const now = new Date('2026-11-21T00:00:00Z');

  it('starts from now when there is no membership or it has lapsed', () => {
    // Assess
    expect(extendMembership(undefined, now, 31)).toBe('2026-12-22T00:00:00.000Z');
    expect(extendMembership('2026-01-01T00:00:00.000Z', now, 31)).toBe('2026-12-22T00:00:00.000Z');
  });

  it('adds to the current end when the membership is still running', () => {
    // Assess
    expect(extendMembership('2027-01-10T00:00:00.000Z', now, 92)).toBe('2027-04-12T00:00:00.000Z');
  });

  it('gives the same end whichever of two concurrent payments lands first', () => {
    // Prepare
    const start = '2031-01-31T10:00:00.000Z';
    const at = new Date('2031-01-01T00:00:00Z');
    // Act
    const monthlyFirst = extendMembership(extendMembership(start, at, 31), at, 92);
    const quarterlyFirst = extendMembership(extendMembership(start, at, 92), at, 31);
    // Assess
    expect(monthlyFirst).toBe(quarterlyFirst);
  });

  it('never gives less than the calendar months a plan is sold as', () => {
    // Assess
    for (const plan of PLANS) {
      for (const day of ['2026-01-31', '2026-02-28', '2027-12-31', '2028-02-29']) {
        const from = new Date(`${day}T00:00:00Z`);
        const calendar = new Date(from);
        calendar.setUTCMonth(calendar.getUTCMonth() + plan.months);
        expect(new Date(extendMembership(undefined, from, plan.days)).getTime()).toBeGreaterThanOrEqual(
          calendar.getTime(),
        );
      }
    }
  });
});

describe('newOrder', () => {
  it('builds the claimed PENDING order at the catalog price, payable for ORDER_LIFETIME_SECONDS, reconciled after a minute', () => {
    // Prepare
    const now = new Date('2026-11-21T08:00:00.000Z');
    const plan = PLANS[1] as (typeof PLANS)[number];
    // Act
    const order = newOrder({
      outTradeNo: 'M20261121080000claimedCLAIM',
      userId: 'uOwner',
      openid: 'oOwner',
      plan,
      payVersion: 'v3',
      clientIp: '::1',
      now,
    });
    // Assess
    expect(order).toEqual({
      outTradeNo: 'M20261121080000claimedCLAIM',
      userId: 'uOwner',
      openid: 'oOwner',
      planId: plan.id,
      description: orderDescription(plan),
      totalFee: plan.totalFee,
      status: 'PENDING',
      payVersion: 'v3',
      clientIp: '::1',
      createdAt: now.toISOString(),
      timeExpire: new Date(now.getTime() + ORDER_LIFETIME_SECONDS * 1000).toISOString(),
      reconcileAt: '2026-11-21T08:01:00.000Z',
    });
  });
});

describe('toPublicOrder', () => {
  it('shows only the public fields, with null for an unpaid order’s payment', () => {
    // Act
    const shown = toPublicOrder(anOrder({ prepayId: 'wx_secret_prepay' }));
    // Assess
    expect(shown).toEqual({
      outTradeNo: anOrder().outTradeNo,
      planId: 'monthly',
      description: '会员-月度会员',
      totalFee: 1800,
      status: 'PENDING',
      createdAt: anOrder().createdAt,
      paidAt: null,
      transactionId: null,
      refundedFee: 0,
    });
  });
});

describe('continuesOrder', () => {
  const order = anOrder({ timeExpire: '2026-11-21T10:00:00.000Z' });
  const at = (iso: string) => new Date(iso);

  it('continues a PENDING order of the same plan and version with more than 10 minutes left', () => {
    // Assess
    expect(continuesOrder(order, 'monthly', 'v2', at('2026-11-21T09:49:59.000Z'))).toBe(true);
  });

  it('continues an order only from the channel (AppID) it was made for', () => {
    // Prepare
    const h5Order = { ...order, appId: 'wxMpAppId' };
    const now = at('2026-11-21T09:00:00.000Z');
    // Assess
    expect(continuesOrder(h5Order, 'monthly', 'v2', now, 'wxMpAppId')).toBe(true);
    expect(continuesOrder(h5Order, 'monthly', 'v2', now)).toBe(false);
    expect(continuesOrder(order, 'monthly', 'v2', now, 'wxMpAppId')).toBe(false);
  });

  it('does not continue another plan, another version, a closed order or one within 10 minutes of expiry', () => {
    // Assess
    expect(continuesOrder(order, 'yearly', 'v2', at('2026-11-21T08:00:00.000Z'))).toBe(false);
    expect(continuesOrder(order, 'monthly', 'v3', at('2026-11-21T08:00:00.000Z'))).toBe(false);
    expect(
      continuesOrder({ ...order, status: 'CLOSED' }, 'monthly', 'v2', at('2026-11-21T08:00:00.000Z')),
    ).toBe(false);
    expect(continuesOrder(order, 'monthly', 'v2', at('2026-11-21T09:50:00.000Z'))).toBe(false);
  });
});

describe('standingFor and assertOurMerchant', () => {
  const report: PaymentReport = {
    outTradeNo: anOrder().outTradeNo,
    transactionId: '4200000215201811190261405420',
    totalFee: 1800,
    currency: 'CNY',
    paidAt: '2026-11-21T08:04:59.000Z',
    appId: 'wxAppId',
    mchId: '1900000109',
    paidVia: 'notify-v3',
  };
  const rejection = (act: () => unknown) => {
    try {
      act();
    } catch (error) {
      expect(error).toBeInstanceOf(PaymentRejectedError);
      return (error as PaymentRejectedError).reason;
    }
    throw new Error('expected a PaymentRejectedError');
  };

  it('answers pending for a PENDING order of the same amount, duplicate when PAID by the same transaction', () => {
    // Assess
    expect(standingFor(anOrder(), report)).toBe('pending');
    expect(standingFor(anOrder({ status: 'PAID', transactionId: report.transactionId }), report)).toBe(
      'duplicate',
    );
  });

  it('refuses what must never be credited, naming the reason', () => {
    // Assess
    expect(rejection(() => standingFor(undefined, report))).toBe('unknown_order');
    expect(rejection(() => standingFor(anOrder({ totalFee: 1801 }), report))).toBe('amount_mismatch');
    expect(
      rejection(() => standingFor(anOrder({ status: 'PAID', transactionId: '4200other' }), report)),
    ).toBe('paid_by_other');
    expect(rejection(() => standingFor(anOrder({ status: 'CLOSED' }), report))).toBe('not_pending');
    expect(
      rejection(() => standingFor(anOrder({ status: 'REFUNDED', transactionId: '4200other' }), report)),
    ).toBe('not_pending');
  });

  it('answers duplicate for a late notify of the transaction that paid an order since REFUNDED (never re-credits)', () => {
    // Assess
    expect(standingFor(anOrder({ status: 'REFUNDED', transactionId: report.transactionId }), report)).toBe(
      'duplicate',
    );
  });

  it('accepts our appid, mchid and CNY and refuses anything else', () => {
    // Prepare
    const ours = { appId: 'wxAppId', mchId: '1900000109' };
    // Assess
    expect(() => assertOurMerchant(report, ours)).not.toThrow();
    expect(rejection(() => assertOurMerchant({ ...report, appId: 'wxOther' }, ours))).toBe(
      'merchant_mismatch',
    );
    expect(rejection(() => assertOurMerchant({ ...report, mchId: '1900000000' }, ours))).toBe(
      'merchant_mismatch',
    );
    expect(rejection(() => assertOurMerchant({ ...report, currency: 'USD' }, ours))).toBe(
      'currency_mismatch',
    );
  });

  it('accepts exactly the two configured AppIDs (mini-program and official account)', () => {
    // Prepare
    const ours = { appId: 'wxAppId', mpAppId: 'wxMpAppId', mchId: '1900000109' };
    // Assess
    expect(() => assertOurMerchant(report, ours)).not.toThrow();
    expect(() => assertOurMerchant({ ...report, appId: 'wxMpAppId' }, ours)).not.toThrow();
    expect(rejection(() => assertOurMerchant({ ...report, appId: 'wxOther' }, ours))).toBe(
      'merchant_mismatch',
    );
    // Without an official account, an empty appid is not "ours".
    expect(rejection(() => assertOurMerchant({ ...report, appId: '' }, { ...ours, mpAppId: '' }))).toBe(
      'merchant_mismatch',
    );
  });

  it('holds each order to its own AppID: an H5 order reported under the mini-program is refused, and the reverse', () => {
    // Prepare
    const h5Order = anOrder({ appId: 'wxMpAppId' });
    const miniOrder = anOrder();
    // Assess
    expect(() => assertOrderAppId(h5Order, { ...report, appId: 'wxMpAppId' }, 'wxAppId')).not.toThrow();
    expect(() => assertOrderAppId(miniOrder, report, 'wxAppId')).not.toThrow();
    expect(rejection(() => assertOrderAppId(h5Order, report, 'wxAppId'))).toBe('merchant_mismatch');
    expect(rejection(() => assertOrderAppId(miniOrder, { ...report, appId: 'wxMpAppId' }, 'wxAppId'))).toBe(
      'merchant_mismatch',
    );
  });
});

describe('revokedDaysFor', () => {
  it('revokes ⌊plan days × refunded ÷ total⌋ in all: proportionally, and exactly the plan on a full refund', () => {
    // Assess
    expect(revokedDaysFor(31, 0, 1800)).toBe(0);
    expect(revokedDaysFor(31, 600, 1800)).toBe(10);
    expect(revokedDaysFor(31, 1200, 1800)).toBe(20);
    expect(revokedDaysFor(31, 1800, 1800)).toBe(31);
    expect(revokedDaysFor(366, 1, 16800)).toBe(0);
    expect(revokedDaysFor(366, 16799, 16800)).toBe(365);
    expect(revokedDaysFor(92, 4800, 4800)).toBe(92);
  });

  it('sums over successive partial refunds to the same total as one refund of their sum', () => {
    // Prepare: 600 + 600 + 600 of an 1800 order, each revoking the difference to the running total
    let revoked = 0;
    let refunded = 0;
    const steps: number[] = [];
    for (const amount of [600, 600, 600]) {
      refunded += amount;
      const total = revokedDaysFor(31, refunded, 1800);
      steps.push(total - revoked);
      revoked = total;
    }
    // Assess
    expect(steps).toEqual([10, 10, 11]);
    expect(revoked).toBe(31);
  });

  it('refuses non-integers and refunds outside 0…total', () => {
    // Assess
    const cases: [number, number, number][] = [
      [31, 1801, 1800],
      [31, -1, 1800],
      [31, 600.5, 1800],
      [31, 0, 0],
      [-1, 0, 1800],
    ];
    for (const [days, refunded, total] of cases) {
      expect(() => revokedDaysFor(days, refunded, total)).toThrow(RangeError);
    }
  });
});

describe('shortenMembership', () => {
  const now = new Date('2026-11-21T08:00:00.000Z');

  it('moves the end back by whole days and keeps the role while the end is still ahead', () => {
    // Assess
    expect(shortenMembership('2027-01-21T08:00:00.000Z', 1, 31, now)).toEqual({
      membershipExpiredAt: '2026-12-21T08:00:00.000Z',
      role: 1,
    });
  });

  it('returns the role to 0 when the new end is not after now', () => {
    // Assess
    expect(shortenMembership('2026-12-22T08:00:00.000Z', 1, 31, now)).toEqual({
      membershipExpiredAt: '2026-11-21T08:00:00.000Z',
      role: 0,
    });
    expect(shortenMembership(undefined, 0, 0, now).role).toBe(0);
  });

  it('undoes extendMembership exactly for the same days', () => {
    // Prepare
    const end = '2027-02-01T00:00:00.000Z';
    const extended = extendMembership(end, now, 31);
    // Assess
    expect(shortenMembership(extended, 1, 31, now)).toEqual({ membershipExpiredAt: end, role: 1 });
  });
});
