/**
 * WeChat Pay field rules shared by API v2 and v3, the clients and the sandbox, declared once: the merchant order
 * number, the API versions and v2 sign types, nonces, IP addresses and the ids WeChat issues (prepay_id,
 * transaction_id), which the local sandbox generates.
 *
 * Pure: randomness comes from node:crypto; no clock reads except a defaulted `now`.
 */
import { randomBytes, randomInt } from 'node:crypto';
import { formatCstCompact } from './time';

/** The two WeChat Pay APIs: v2 (XML, MD5 / HMAC-SHA256 with the APIv2 key) and v3 (JSON, RSA, AES-GCM). */
export type PayVersion = 'v2' | 'v3';

/** The v2 signature algorithms (`sign_type`; absent means MD5). */
export type V2SignType = 'MD5' | 'HMAC-SHA256';

/** Every v2 `sign_type` value WeChat accepts. */
export const V2_SIGN_TYPES: readonly V2SignType[] = ['MD5', 'HMAC-SHA256'];

/** `out_trade_no`: 6–32 characters of digits, letters and `_-|*`, unique per merchant (统一下单 / 小程序下单). */
export const OUT_TRADE_NO = /^[0-9A-Za-z_\-|*]{6,32}$/;

/**
 * `out_refund_no`: 1–64 characters of digits, letters and `_-|*@`, unique per merchant; a repeated number is
 * refunded once (申请退款 / 退款申请).
 */
export const OUT_REFUND_NO = /^[0-9A-Za-z_\-|*@]{1,64}$/;

/** WeChat `nonce_str` / `nonceStr`: String(32). */
export const MAX_NONCE_LENGTH = 32;

/** The largest amount WeChat's `int` fields (`total_fee`, `amount.total`) carry, fen: 2^31 − 1. */
export const MAX_TOTAL_FEE = 2 ** 31 - 1;

/** The characters of WeChat nonces (`nonce_str`, `nonceStr`, notify resource nonces): [0-9A-Za-z]. */
export const NONCE_ALPHABET = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

/** A positive integer written in decimal without leading zeros, at most 10 digits. */
const TOTAL_FEE_TEXT = /^[1-9]\d{0,9}$/;
const IPV4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;
const IPV6_CHARACTERS = /^[0-9A-Fa-f:.]{2,45}$/;

/**
 * `length` characters drawn uniformly from NONCE_ALPHABET with crypto.randomInt (≈5.95 bits each); throws
 * RangeError unless a positive integer.
 */
export function randomAlphanumeric(length: number): string {
  if (!Number.isInteger(length) || length < 1) {
    throw new RangeError('randomAlphanumeric: length must be a positive integer');
  }
  let out = '';
  for (let i = 0; i < length; i += 1) out += NONCE_ALPHABET[randomInt(NONCE_ALPHABET.length)];
  return out;
}

/** True when a v2 `total_fee` as sent (a string) is a positive integer amount in fen no larger than MAX_TOTAL_FEE. */
export function isTotalFeeText(value: string): boolean {
  return typeof value === 'string' && TOTAL_FEE_TEXT.test(value) && Number(value) <= MAX_TOTAL_FEE;
}

/**
 * True for a dotted IPv4 address (each part ≤ 255) or something shaped like IPv6 (hex, colons, at most 45
 * characters); WeChat's `spbill_create_ip` / `payer_client_ip`.
 */
export function isIp(value: string): boolean {
  if (typeof value !== 'string') return false;
  const v4 = IPV4.exec(value);
  if (v4) return v4.slice(1).every((part) => Number(part) <= 255);
  return IPV6_CHARACTERS.test(value) && value.includes(':');
}

/**
 * A prepay_id as WeChat issues them: `wx` + the CST time `yyyyMMddHHmmss` + 20 random hex characters (36
 * characters, e.g. `wx201410272009395522657a690389285100`).
 */
export function newPrepayId(now = new Date()): string {
  return `wx${formatCstCompact(now)}${randomBytes(10).toString('hex')}`;
}

/** A WeChat Pay transaction_id: 28 digits, `4200` + 6 random digits + the CST date yyyyMMdd + 10 random digits. */
export function newTransactionId(now = new Date()): string {
  return `4200${randomDigits(6)}${formatCstCompact(now).slice(0, 8)}${randomDigits(10)}`;
}

/** A sandbox refund_id as WeChat issues them: `5030` + yyyyMMddHHmmss (CST) + 14 random digits. */
export function newRefundId(now = new Date()): string {
  return `5030${formatCstCompact(now)}${randomDigits(14)}`;
}

function randomDigits(count: number): string {
  return Array.from({ length: count }, () => randomInt(10)).join('');
}
