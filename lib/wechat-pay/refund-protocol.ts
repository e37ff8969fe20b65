/**
 * WeChat Pay refund protocol, both versions: the v2 refund notify's `req_info` (AES-256-ECB/PKCS7 under the
 * lowercase hex MD5 of the APIv2 key, 退款结果通知), the v2 `success_time` format, the refund statuses of either
 * version mapped to ours, and the notify builders the sandbox sends.
 *
 * Pure: node:crypto only; no clock reads except a defaulted nonce; every key and amount is passed in (amounts are
 * integer fen). The v3 refund notify is verified and decrypted like a payment notify (v3-protocol.ts).
 */
import { createCipheriv, createDecipheriv, createHash } from 'node:crypto';
import { CST_OFFSET_MS, formatCstCompact, parseCstCompact } from './time';
import { nonceStr, parseV2Xml, toV2Xml } from './v2-protocol';

/** Where a refund stands: PROCESSING until WeChat reports one of the three final states. */
export type RefundStatus = 'PROCESSING' | 'SUCCESS' | 'CLOSED' | 'ABNORMAL';

/** A v2 refund notify that cannot be read: `reason` is machine-readable and never echoes the input. */
export class V2RefundNotifyError extends Error {
  constructor(readonly reason: 'bad_base64' | 'bad_key' | 'decrypt_failed' | 'bad_plaintext') {
    super(`WeChat Pay v2 refund notify rejected: ${reason}`);
    this.name = 'V2RefundNotifyError';
  }
}

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
/** `yyyy-MM-dd HH:mm:ss`, v2 refund `success_time` / `refund_success_time_$n` (China Standard Time). */
const V2_DATE_TIME = /^(\d{4})-(\d{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2})$/;
/** A req_info far above a real one (≈1 KB) is refused before decrypting, characters. */
const MAX_REQ_INFO_CHARS = 16_384;

/**
 * The AES-256 key of `req_info`: the 32 ASCII bytes of the lowercase hex MD5 of the APIv2 key; throws
 * V2RefundNotifyError('bad_key') on an empty key (退款结果通知, 解密步骤 2).
 */
export function reqInfoKey(mchKey: string): Buffer {
  if (typeof mchKey !== 'string' || mchKey === '') throw new V2RefundNotifyError('bad_key');
  return Buffer.from(createHash('md5').update(mchKey, 'utf8').digest('hex'), 'ascii');
}

/**
 * Decrypts a v2 refund notify's `req_info` (base64 → AES-256-ECB, PKCS7) into its `<root>` XML text; throws
 * V2RefundNotifyError on bad base64, a wrong key or a tampered ciphertext (padding check) (退款结果通知, 解密步骤 1–3).
 */
export function decryptReqInfo(reqInfo: string, mchKey: string): string {
  const key = reqInfoKey(mchKey);
  if (
    typeof reqInfo !== 'string' ||
    reqInfo === '' ||
    reqInfo.length > MAX_REQ_INFO_CHARS ||
    !BASE64.test(reqInfo)
  ) {
    throw new V2RefundNotifyError('bad_base64');
  }
  const bytes = Buffer.from(reqInfo, 'base64');
  if (bytes.length === 0 || bytes.length % 16 !== 0) throw new V2RefundNotifyError('decrypt_failed');
  try {
    const decipher = createDecipheriv('aes-256-ecb', key, null);
    return Buffer.concat([decipher.update(bytes), decipher.final()]).toString('utf8');
  } catch {
    throw new V2RefundNotifyError('decrypt_failed');
  }
}

/** Encrypts a `<root>` XML text as WeChat does for `req_info` (the inverse of decryptReqInfo). */
export function encryptReqInfo(plaintext: string, mchKey: string): string {
  const cipher = createCipheriv('aes-256-ecb', reqInfoKey(mchKey), null);
  return Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]).toString('base64');
}

/**
 * Decrypts and parses `req_info` into a null-prototype map of exact strings (the hardened v2 XML reader with a
 * `root` element); throws V2RefundNotifyError.
 */
export function readReqInfo(reqInfo: string, mchKey: string): Record<string, string> {
  const plaintext = decryptReqInfo(reqInfo, mchKey);
  try {
    return parseV2Xml(plaintext, undefined, 'root');
  } catch {
    throw new V2RefundNotifyError('bad_plaintext');
  }
}

/**
 * A v2 refund notify body as WeChat POSTs it: `<xml>` with return_code SUCCESS, appid, mch_id, nonce_str and
 * `req_info` (the refund fields as `<root>` XML, encrypted); no `sign` (退款结果通知).
 */
export function v2RefundNotifyXml(input: {
  appId: string;
  mchId: string;
  mchKey: string;
  fields: Record<string, string | number | undefined>;
}): string {
  const plaintext = toV2Xml(input.fields)
    .replace(/^<xml>/, '<root>')
    .replace(/<\/xml>$/, '</root>');
  return toV2Xml({
    return_code: 'SUCCESS',
    appid: input.appId,
    mch_id: input.mchId,
    nonce_str: nonceStr(),
    req_info: encryptReqInfo(plaintext, input.mchKey),
  });
}

/**
 * `yyyy-MM-dd HH:mm:ss` in China Standard Time → ISO 8601 UTC; throws RangeError (v2 退款结果通知 `success_time`,
 * 查询退款 `refund_success_time_$n`).
 */
export function parseV2DateTime(text: string): string {
  const match = typeof text === 'string' ? V2_DATE_TIME.exec(text) : null;
  if (!match) throw new RangeError('not a yyyy-MM-dd HH:mm:ss time');
  return parseCstCompact(match.slice(1, 7).join(''));
}

/** A Date → `yyyy-MM-dd HH:mm:ss` in China Standard Time (the v2 refund time format). */
export function formatV2DateTime(date: Date): string {
  const compact = formatCstCompact(date);
  return `${compact.slice(0, 4)}-${compact.slice(4, 6)}-${compact.slice(6, 8)} ${compact.slice(8, 10)}:${compact.slice(10, 12)}:${compact.slice(12, 14)}`;
}

/** The China-time calendar day (`YYYY-MM-DD`) of an ISO UTC instant: the day WeChat's bill lists it under. */
export function chinaDay(iso: string): string {
  return new Date(Date.parse(iso) + CST_OFFSET_MS).toISOString().slice(0, 10);
}

/**
 * A v2 refund status (notify `refund_status`, refundquery `refund_status_$n`) as ours: SUCCESS, REFUNDCLOSE →
 * CLOSED, CHANGE (the payer's bank card failed) → ABNORMAL, PROCESSING; undefined for anything else.
 */
export function v2RefundStatus(value: string | undefined): RefundStatus | undefined {
  switch (value) {
    case 'SUCCESS':
      return 'SUCCESS';
    case 'REFUNDCLOSE':
      return 'CLOSED';
    case 'CHANGE':
      return 'ABNORMAL';
    case 'PROCESSING':
      return 'PROCESSING';
    default:
      return undefined;
  }
}

/** A v3 refund `status` / `refund_status` as ours (the same four names); undefined for anything else. */
export function v3RefundStatus(value: unknown): RefundStatus | undefined {
  return value === 'SUCCESS' || value === 'CLOSED' || value === 'ABNORMAL' || value === 'PROCESSING'
    ? value
    : undefined;
}

/** Our status as v2 writes it (the inverse of v2RefundStatus). */
export function toV2RefundStatus(status: RefundStatus): string {
  return { SUCCESS: 'SUCCESS', CLOSED: 'REFUNDCLOSE', ABNORMAL: 'CHANGE', PROCESSING: 'PROCESSING' }[status];
}
