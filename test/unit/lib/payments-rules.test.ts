import { describe, expect, it } from 'vitest';
import { BadRequestError } from '#lib/errors';
import { extendMembership, newOutTradeNo, orderDescription, truncateUtf8 } from '#lib/payments/rules';
import { decodeCursor } from '#lib/payments/views';
import { findPlan, PLANS } from '#lib/plans';

describe('plans', () => {
  it('prices every plan in whole fen', () => {
    // Assess
    for (const plan of PLANS) {
      expect(Number.isSafeInteger(plan.totalFee)).toBe(true);
      expect(plan.totalFee).toBeGreaterThan(0);
      expect(Number.isInteger(plan.months)).toBe(true);
    }
    expect(findPlan('monthly')?.totalFee).toBe(1800);
    expect(findPlan('nope')).toBeUndefined();
  });

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

describe('decodeCursor', () => {
  const key = {
    outTradeNo: 'M20261121080000abcdefABCDEF',
    userId: 'uAAAAAAAAAAA',
    createdAt: '2026-11-21T08:00:00.000Z',
  };
  const encode = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');

  it('returns the key of a cursor that belongs to the caller', () => {
    // Assess
    expect(decodeCursor(encode(key), 'uAAAAAAAAAAA')).toEqual(key);
    expect(decodeCursor(undefined, 'uAAAAAAAAAAA')).toBeUndefined();
  });

  it('refuses a cursor of another user, garbage or extra keys', () => {
    // Assess
    expect(() => decodeCursor(encode(key), 'uBBBBBBBBBBB')).toThrow(BadRequestError);
    expect(() => decodeCursor('not-base64-json', 'uAAAAAAAAAAA')).toThrow(BadRequestError);
    expect(() => decodeCursor(encode({ ...key, extra: 1 }), 'uAAAAAAAAAAA')).toThrow(BadRequestError);
  });
});
