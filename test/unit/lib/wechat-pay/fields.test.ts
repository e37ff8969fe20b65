import { describe, expect, it } from 'vitest';
import {
  isIp,
  isTotalFeeText,
  MAX_TOTAL_FEE,
  NONCE_ALPHABET,
  newPrepayId,
  newTransactionId,
  OUT_TRADE_NO,
  randomAlphanumeric,
  V2_SIGN_TYPES,
} from '#lib/wechat-pay/fields';

describe('OUT_TRADE_NO', () => {
  it.each(['1217752501201407033233368018', 'abc123', 'A_b-c|d*e', 'x'.repeat(32)])('accepts %s', (value) => {
    // Act / Assess
    expect(OUT_TRADE_NO.test(value)).toBe(true);
  });

  it.each(['ab12', 'x'.repeat(33), 'abc 1234', 'abc.1234', 'abc/1234', '订单号123456', ''])(
    'refuses %j',
    (value) => {
      // Act / Assess
      expect(OUT_TRADE_NO.test(value)).toBe(false);
    },
  );
});

describe('isTotalFeeText', () => {
  it.each(['1', '1800', String(MAX_TOTAL_FEE)])('accepts %s fen', (value) => {
    // Act / Assess
    expect(isTotalFeeText(value)).toBe(true);
  });

  it.each(['0', '-1', '18.5', '0100', '1e3', ' 1', String(MAX_TOTAL_FEE + 1), '99999999999', ''])(
    'refuses %j',
    (value) => {
      // Act / Assess
      expect(isTotalFeeText(value)).toBe(false);
    },
  );

  it('caps amounts at 2^31 − 1 fen', () => {
    // Assess
    expect(MAX_TOTAL_FEE).toBe(2_147_483_647);
  });
});

describe('V2_SIGN_TYPES', () => {
  it('lists the two v2 algorithms', () => {
    // Assess
    expect(V2_SIGN_TYPES).toEqual(['MD5', 'HMAC-SHA256']);
  });
});

describe('randomAlphanumeric', () => {
  it('returns the requested number of [0-9A-Za-z] characters, different each time', () => {
    // Act
    const values = Array.from({ length: 50 }, () => randomAlphanumeric(12));

    // Assess
    expect(NONCE_ALPHABET).toHaveLength(62);
    for (const value of values) expect(value).toMatch(/^[0-9A-Za-z]{12}$/);
    expect(new Set(values).size).toBe(50);
  });

  it.each([0, -1, 1.5, Number.NaN])('throws RangeError when the length is %s', (length) => {
    // Act / Assess
    expect(() => randomAlphanumeric(length)).toThrow(RangeError);
  });
});

describe('isIp', () => {
  it.each([
    '203.0.113.7',
    '0.0.0.0',
    '255.255.255.255',
    '::1',
    '2001:db8::8a2e:370:7334',
    '::ffff:192.0.2.1',
  ])('accepts %s', (value) => {
    // Act / Assess
    expect(isIp(value)).toBe(true);
  });

  it.each(['999.1.1.1', '1.2.3', '1.2.3.4.5', 'localhost', '', 'abcd', '2001:db8::g'])(
    'refuses %j',
    (value) => {
      // Act / Assess
      expect(isIp(value)).toBe(false);
    },
  );
});

describe('newPrepayId', () => {
  it('is wx, the CST time and 20 hex characters, the length of the official example', () => {
    // Act
    const id = newPrepayId(new Date('2014-10-27T12:09:39Z'));

    // Assess
    expect(id).toMatch(/^wx20141027200939[0-9a-f]{20}$/);
    expect(id).toHaveLength('wx201410272009395522657a690389285100'.length);
    expect(newPrepayId()).not.toBe(newPrepayId());
  });
});

describe('newTransactionId', () => {
  it('is 28 digits starting 4200 with the China date', () => {
    // Act
    const id = newTransactionId(new Date('2026-11-20T20:00:00Z'));

    // Assess
    expect(id).toMatch(/^4200\d{24}$/);
    expect(id.slice(10, 18)).toBe('20261121');
  });
});
