import { describe, expect, it } from 'vitest';
import {
  CST_OFFSET_MS,
  formatCstCompact,
  formatRfc3339Cst,
  parseCstCompact,
  RFC3339_PATTERN,
  rfc3339ToIso,
} from '#lib/wechat-pay/time';

describe('CST_OFFSET_MS', () => {
  it('is UTC+8 in milliseconds', () => {
    // Assess
    expect(CST_OFFSET_MS).toBe(28_800_000);
  });
});

describe('formatCstCompact', () => {
  it('writes China Standard Time when given a UTC instant (official time_end 20140903131540)', () => {
    // Act
    const text = formatCstCompact(new Date('2014-09-03T05:15:40.999Z'));

    // Assess
    expect(text).toBe('20140903131540');
  });

  it('crosses to the next CST day when the UTC time is 16:00 or later', () => {
    // Act
    const text = formatCstCompact(new Date('2024-02-28T16:00:00.000Z'));

    // Assess
    expect(text).toBe('20240229000000');
  });

  it('throws RangeError when the Date is invalid or out of range', () => {
    // Prepare
    const dates = [
      new Date(Number.NaN),
      new Date('1969-12-31T00:00:00.000Z'),
      new Date('+010000-01-01T00:00:00Z'),
    ];

    // Act
    const attempts = dates.map((date) => () => formatCstCompact(date));

    // Assess
    for (const attempt of attempts) expect(attempt).toThrow(RangeError);
  });
});

describe('parseCstCompact', () => {
  it('reads the official time_end as China Standard Time', () => {
    // Act
    const iso = parseCstCompact('20140903131540');

    // Assess
    expect(iso).toBe('2014-09-03T05:15:40.000Z');
  });

  it('crosses to the previous UTC day when the CST time is before 08:00', () => {
    // Act
    const iso = parseCstCompact('20240301070000');

    // Assess
    expect(iso).toBe('2024-02-29T23:00:00.000Z');
  });

  it('round-trips with formatCstCompact when given whole seconds', () => {
    // Prepare
    const instants = ['2014-09-03T05:15:40.000Z', '2024-12-31T16:00:00.000Z', '2030-06-15T23:59:59.000Z'];

    // Act
    const roundTripped = instants.map((iso) => parseCstCompact(formatCstCompact(new Date(iso))));

    // Assess
    expect(roundTripped).toEqual(instants);
  });

  it('throws RangeError when the text is not a real yyyyMMddHHmmss time', () => {
    // Prepare
    const bad = [
      '20230229120000',
      '20140903240000',
      '20140903125960',
      '2014090313154',
      '2014-09-03 13:15:40',
    ];

    // Act
    const attempts = bad.map((value) => () => parseCstCompact(value));

    // Assess
    for (const attempt of attempts) expect(attempt).toThrow(RangeError);
  });
});

describe('formatRfc3339Cst', () => {
  it('writes time_expire in +08:00 without milliseconds when given a UTC instant', () => {
    // Act
    const text = formatRfc3339Cst(new Date('2026-11-21T16:30:00.250Z'));

    // Assess
    expect(text).toBe('2026-11-22T00:30:00+08:00');
    expect(text).toMatch(RFC3339_PATTERN);
  });

  it('throws RangeError when the Date is invalid', () => {
    // Act / Assess
    expect(() => formatRfc3339Cst(new Date(Number.NaN))).toThrow(RangeError);
  });
});

describe('rfc3339ToIso', () => {
  it.each([
    ['the official +08:00 example', '2018-06-08T10:34:56+08:00', '2018-06-08T02:34:56.000Z'],
    ['a UTC time', '2018-06-08T02:34:56Z', '2018-06-08T02:34:56.000Z'],
    ['a fraction', '2018-06-08T10:34:56.250+08:00', '2018-06-08T02:34:56.250Z'],
    ['a negative offset', '2018-06-07T21:04:56-05:30', '2018-06-08T02:34:56.000Z'],
  ])('reads %s as ISO UTC', (_label, value, iso) => {
    // Act / Assess
    expect(rfc3339ToIso(value)).toBe(iso);
  });

  it('round-trips formatRfc3339Cst', () => {
    // Prepare
    const instant = '2026-11-21T16:30:00.000Z';

    // Act / Assess
    expect(rfc3339ToIso(formatRfc3339Cst(new Date(instant)))).toBe(instant);
  });

  it.each([
    '2018-02-30T10:00:00+08:00',
    '2018-06-08 10:34:56',
    '20180608103456',
    '2018-06-08T24:00:00Z',
    '2018-06-08T10:60:00Z',
    '1999-12-31T10:00:00Z',
    '2018-06-08T10:34:56+24:00',
    '2018-06-08T10:34:56',
  ])('throws RangeError on %s', (value) => {
    // Act / Assess
    expect(() => rfc3339ToIso(value)).toThrow(RangeError);
  });

  it('agrees with a Date round-trip reading on every date, time and offset edge', () => {
    // Prepare: the reading rfc3339ToIso replaced: a value is real when Date.UTC does not roll it over.
    const reference = (value: string): string | undefined => {
      const match = RFC3339_PATTERN.exec(value);
      if (match === null) return undefined;
      const [year, month, day, hour, minute, second] = match.slice(1, 7).map(Number) as number[];
      const asIfUtc = Date.UTC(year ?? 0, (month ?? 0) - 1, day, hour, minute, second);
      const check = new Date(asIfUtc);
      const real =
        (year ?? 0) >= 2000 &&
        check.getUTCFullYear() === year &&
        check.getUTCMonth() === (month ?? 0) - 1 &&
        check.getUTCDate() === day &&
        check.getUTCHours() === hour &&
        (minute ?? 0) <= 59 &&
        (second ?? 0) <= 59;
      const zone = match[8] as string;
      const offsetHours = zone === 'Z' ? 0 : Number(zone.slice(1, 3));
      const offsetMinutes = zone === 'Z' ? 0 : Number(zone.slice(4, 6));
      if (!real || offsetHours > 23 || offsetMinutes > 59) return undefined;
      const sign = zone.startsWith('-') ? -1 : 1;
      const millis = match[7] === undefined ? 0 : Math.floor(Number(`0${match[7]}`) * 1000);
      return new Date(asIfUtc - sign * (offsetHours * 60 + offsetMinutes) * 60_000 + millis).toISOString();
    };
    const pad = (n: number) => String(n).padStart(2, '0');
    const values: string[] = [];
    const times = ['00:00:00', '23:59:59', '24:00:00', '12:60:00', '12:00:60', '07:59:59'];
    const tails = ['Z', '+08:00', '-05:30', '+23:59', '+24:00', '+08:60', '.5+08:00', '.123456789Z'];
    for (const year of [1999, 2000, 2023, 2024, 2100, 2400, 9999]) {
      for (let month = 0; month <= 13; month++) {
        for (let day = 0; day <= 32; day++) {
          for (const [i, time] of times.entries()) {
            const tail = tails[(year + month * 7 + day * 3 + i) % tails.length];
            values.push(`${year}-${pad(month)}-${pad(day)}T${time}${tail}`);
          }
        }
      }
    }

    // Act
    const disagreements = values.filter((value) => {
      let ours: string | undefined;
      try {
        ours = rfc3339ToIso(value);
      } catch (error) {
        if (!(error instanceof RangeError)) throw error;
      }
      return ours !== reference(value);
    });

    // Assess: none, and both readings accept a good share of the values.
    expect(disagreements).toEqual([]);
    expect(values.filter((value) => reference(value) !== undefined).length).toBeGreaterThan(3000);
  });
});
