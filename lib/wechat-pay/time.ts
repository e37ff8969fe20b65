/**
 * WeChat Pay's two time formats, both in China Standard Time (UTC+8, no daylight saving since 1991), both ways:
 * API v2's compact `yyyyMMddHHmmss` (`time_start`, `time_expire`, `time_end`) and API v3's RFC 3339
 * (`time_expire`, `success_time`, `create_time`, e.g. `2018-06-08T10:34:56+08:00`).
 *
 * Pure functions: no clock reads, no config. Errors are RangeError; protocol modules wrap them in their own types.
 */

/** China Standard Time is UTC+8 all year, milliseconds. */
export const CST_OFFSET_MS = 8 * 3600 * 1000;

/**
 * An RFC 3339 date-time with a mandatory offset, groups: year, month, day, hour, minute, second, fraction (`.ddd`,
 * optional), zone (`Z` or `±HH:MM`). WeChat writes `+08:00`; we accept any offset on input.
 */
export const RFC3339_PATTERN =
  /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$/;

const COMPACT_PATTERN = /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})$/;
const MIN_COMPACT_YEAR = 1970;
const MAX_COMPACT_YEAR = 9999;
/** success_time and friends never predate WeChat Pay API v3; an older year is a garbled field. */
const MIN_RFC3339_YEAR = 2000;

/**
 * A Date → `yyyyMMddHHmmss` in China Standard Time, milliseconds dropped, e.g. 2014-09-03T05:15:40Z →
 * `20140903131540`; throws RangeError on an invalid Date or a CST year outside 1970–9999
 * (WeChat Pay v2 统一下单 `time_start` / `time_expire`).
 */
export function formatCstCompact(date: Date): string {
  const ms = date instanceof Date ? date.getTime() : Number.NaN;
  if (!Number.isFinite(ms)) throw new RangeError('formatCstCompact: invalid Date');
  const cst = new Date(ms + CST_OFFSET_MS);
  const year = cst.getUTCFullYear();
  if (year < MIN_COMPACT_YEAR || year > MAX_COMPACT_YEAR) {
    throw new RangeError('formatCstCompact: year out of range');
  }
  return String(year) + cst.toISOString().slice(5, 19).replace(/\D/g, '');
}

/**
 * `yyyyMMddHHmmss` in China Standard Time → ISO 8601 UTC, e.g. `20140903131540` → `2014-09-03T05:15:40.000Z`;
 * exactly 14 ASCII digits naming a real date and time, year 1970–9999; throws RangeError otherwise
 * (WeChat Pay v2 支付结果通知 `time_end`).
 */
export function parseCstCompact(text: string): string {
  const match = typeof text === 'string' ? COMPACT_PATTERN.exec(text) : null;
  if (match === null) throw new RangeError('not a yyyyMMddHHmmss time');
  const [year, month, day, hour, minute, second] = digitGroups(match);
  if (year < MIN_COMPACT_YEAR || hour > 23 || minute > 59 || second > 59)
    throw new RangeError('impossible time');
  const asIfUtc = Date.UTC(year, month - 1, day, hour, minute, second);
  if (!isCalendarDate(asIfUtc, year, month, day)) throw new RangeError('impossible date');
  return new Date(asIfUtc - CST_OFFSET_MS).toISOString();
}

/**
 * A Date → RFC 3339 in China Standard Time, `yyyy-MM-ddTHH:mm:ss+08:00`, milliseconds dropped; throws RangeError
 * on an invalid Date (WeChat Pay v3 小程序下单 `time_expire`).
 */
export function formatRfc3339Cst(date: Date): string {
  const ms = date instanceof Date ? date.getTime() : Number.NaN;
  if (!Number.isFinite(ms)) throw new RangeError('formatRfc3339Cst: invalid Date');
  return `${new Date(ms + CST_OFFSET_MS).toISOString().slice(0, 19)}+08:00`;
}

/**
 * An RFC 3339 timestamp with offset (`2018-06-08T10:34:56+08:00`, `…Z`, optional fraction) → ISO 8601 UTC with
 * milliseconds; throws RangeError on any other shape, an impossible date or time, a year before 2000 or an offset
 * beyond ±23:59 (WeChat Pay v3 支付通知 / 查询订单 `success_time`).
 */
export function rfc3339ToIso(value: string): string {
  const match = typeof value === 'string' ? RFC3339_PATTERN.exec(value) : null;
  if (match === null) throw new RangeError('not an RFC 3339 timestamp');
  // Checked by arithmetic rather than by Date round trips (a notify reads one per delivery; those cost 2 µs).
  const year = Number(match[1]);
  const month = Number(match[2]);
  const day = Number(match[3]);
  const hour = Number(match[4]);
  const minute = Number(match[5]);
  const second = Number(match[6]);
  if (
    year < MIN_RFC3339_YEAR ||
    month < 1 ||
    month > 12 ||
    day < 1 ||
    day > daysInMonth(year, month) ||
    hour > 23 ||
    minute > 59 ||
    second > 59
  ) {
    throw new RangeError('impossible date');
  }
  const fraction = match[7] ?? '';
  const zone = match[8] ?? 'Z';
  let offsetMinutes = 0;
  if (zone !== 'Z') {
    const hours = Number(zone.slice(1, 3));
    const minutes = Number(zone.slice(4, 6));
    if (hours > 23 || minutes > 59) throw new RangeError('bad offset');
    offsetMinutes = (zone.startsWith('-') ? -1 : 1) * (hours * 60 + minutes);
  }
  const millis = fraction === '' ? 0 : Math.floor(Number(`0${fraction}`) * 1000);
  const asIfUtc = Date.UTC(year, month - 1, day, hour, minute, second);
  return new Date(asIfUtc - offsetMinutes * 60_000 + millis).toISOString();
}

/** Days in `month` (1–12) of `year` in the proleptic Gregorian calendar (what Date uses). */
function daysInMonth(year: number, month: number): number {
  if (month === 2) return (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0 ? 29 : 28;
  return month === 4 || month === 6 || month === 9 || month === 11 ? 30 : 31;
}

type SixNumbers = [number, number, number, number, number, number];

/** Groups 1–6 of a date-time match as numbers. */
function digitGroups(match: RegExpExecArray): SixNumbers {
  return match.slice(1, 7).map(Number) as SixNumbers;
}

/** Date.UTC rolls 30 February over into March; a real calendar date reads back unchanged. */
function isCalendarDate(utcMs: number, year: number, month: number, day: number): boolean {
  const check = new Date(utcMs);
  return check.getUTCFullYear() === year && check.getUTCMonth() === month - 1 && check.getUTCDate() === day;
}
