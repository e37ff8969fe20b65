/**
 * WeChat Pay API v2 protocol layer: MD5 / HMAC-SHA256 signing and verification, the hardened XML reader and
 * writer, `wx.requestPayment` parameters and notify replies; the `yyyyMMddHHmmss` China Standard Time format is
 * re-exported from time.ts under the v2 field names (`formatTimeExpire`, `parseTimeEnd`).
 *
 * Pure functions over node:crypto and fast-xml-parser: no network, no config reads, no clock reads except where a
 * default timestamp/nonce is generated (pass them in to stay deterministic). Amounts stay strings of integer fen
 * as WeChat sent them; numbers written by this module must be safe integers.
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { MAX_NONCE_LENGTH, randomAlphanumeric, type V2SignType } from './fields';
import { parseCstCompact } from './time';

export type { V2SignType } from './fields';
export { formatCstCompact as formatTimeExpire } from './time';

export type V2XmlReason =
  | 'too_large'
  | 'dtd'
  | 'malformed'
  | 'not_flat'
  | 'bad_name'
  | 'forbidden_key'
  | 'bad_time';

/** A v2 XML body or time field was refused; `reason` is machine-readable and never echoes the input. */
export class V2XmlError extends Error {
  readonly reason: V2XmlReason;

  constructor(reason: V2XmlReason, message = `WeChat Pay v2 XML rejected: ${reason}`) {
    super(message);
    this.name = 'V2XmlError';
    this.reason = reason;
  }
}

/** Default body cap for parseV2Xml, bytes (notifies are about 1 KB). */
const MAX_XML_BYTES = 65_536;
/** Field names we write and accept: every documented v2 field, including `coupon_fee_$n`, matches. */
const FIELD_NAME_PATTERN = /^[A-Za-z0-9_]+$/;
/** Names that would reach Object.prototype, refused whatever the parser would do with them. */
const FORBIDDEN_KEYS: ReadonlySet<string> = new Set(['__proto__', 'constructor', 'prototype']);
const DTD_PATTERN = /<!(?:DOCTYPE|ENTITY)/i;
const BOM = '\uFEFF';
/** Characters XML 1.0 allows in content (§2.2); anything else (NUL, C0 controls, lone surrogates) cannot be sent. */
const XML_CHAR_PATTERN = /^[\t\n\r\u0020-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]*$/u;
const HEX_SIGNATURE_PATTERN = /^(?:[0-9A-Fa-f]{32}|[0-9A-Fa-f]{64})$/;
const SIGNATURE_HEX_LENGTH: Readonly<Record<V2SignType, number>> = { MD5: 32, 'HMAC-SHA256': 64 };
const TIMESTAMP_PATTERN = /^\d{1,10}$/;
/**
 * One field of the flat shape (sticky): name, then CDATA text (up to the first `]]>`) or plain text, then the
 * matching end tag; or a run of whitespace between fields.
 */
const FLAT_FIELD =
  /<([A-Za-z0-9_]+)>(?:<!\[CDATA\[((?:[^\]\r]|\](?!\]>))*)\]\]>|([^<>&\r]*))<\/\1>|[ \t\n]+/y;

/** Thrown inside fast-xml-parser callbacks; parseV2Xml turns it into V2XmlError('forbidden_key'). */
class ForbiddenKeyError extends Error {}

/**
 * fast-xml-parser for the bodies the one-pass reader does not take (readFlatXml), built on first use so that a
 * bundle that never reads v2 XML can drop the parser.
 */
let parser: XMLParser | undefined;
const xmlParser = (): XMLParser => {
  parser ??= new XMLParser(PARSER_OPTIONS);
  return parser;
};
const PARSER_OPTIONS: ConstructorParameters<typeof XMLParser>[0] = {
  // Entity references stay verbatim (`&amp;` is returned as `&amp;`): no DTD, no expansion, no CVE surface.
  processEntities: false,
  htmlEntities: false,
  // Every value stays the exact string WeChat sent: no `1e2` → 100, `000123` → 123, `0x64` → 100.
  parseTagValue: false,
  parseAttributeValue: false,
  ignoreAttributes: true,
  // Keep leading/trailing spaces: the signature covers the raw value.
  trimValues: false,
  // CDATA merges into the element's text, so `<a><![CDATA[x]]></a>` gives "x".
  cdataPropName: false,
  commentPropName: false,
  ignoreDeclaration: true,
  ignorePiTags: false,
  alwaysCreateTextNode: false,
  isArray: () => false,
  transformTagName: (name: string): string => {
    if (FORBIDDEN_KEYS.has(name)) throw new ForbiddenKeyError(name);
    return name;
  },
  // fast-xml-parser silently renames `toString`, `hasOwnProperty`, … to `__toString`, …; refuse them instead.
  onDangerousProperty: (name: string): string => {
    throw new ForbiddenKeyError(name);
  },
};

/**
 * Upper-case hex MD5 or HMAC-SHA256 (HMAC key = `key`) of `k1=v1&k2=v2…&key=KEY` over the non-empty params except
 * `sign`, names in ASCII order; numbers must be safe integers; throws TypeError on an empty key or a non-integer
 * number (WeChat Pay v2 签名算法, pay.weixin.qq.com/wiki/doc/api/jsapi.php?chapter=4_3).
 */
export function signV2(
  params: Record<string, string | number | undefined>,
  key: string,
  signType: V2SignType,
): string {
  if (typeof key !== 'string' || key === '') throw new TypeError('signV2: the APIv2 key must be non-empty');
  const pairs: string[] = [];
  for (const name of Object.keys(params).sort(compareAscii)) {
    if (name === 'sign') continue;
    const value = valueText(params[name], 'signV2');
    if (value === undefined || value === '') continue;
    pairs.push(`${name}=${value}`);
  }
  pairs.push(`key=${key}`);
  const message = pairs.join('&');
  switch (signType) {
    case 'MD5':
      return createHash('md5').update(message, 'utf8').digest('hex').toUpperCase();
    case 'HMAC-SHA256':
      return createHmac('sha256', key).update(message, 'utf8').digest('hex').toUpperCase();
    default:
      throw new TypeError('signV2: signType must be MD5 or HMAC-SHA256');
  }
}

/**
 * True when `params.sign` (hex, compared case-insensitively since hex case carries no information) is the signV2
 * of all other fields, unknown ones included, under the algorithm named by a non-empty `sign_type` ('MD5' |
 * 'HMAC-SHA256', else false) or, when absent, by the signature length (32 → MD5, 64 → HMAC-SHA256); false (never
 * throws) when that algorithm is not in `allowed`, the sign is missing/empty/not hex of that length, or the key is
 * empty; constant-time compare (WeChat Pay v2 签名算法 / 支付结果通知).
 */
export function verifyV2Sign(
  params: Record<string, string>,
  key: string,
  allowed: readonly V2SignType[],
): boolean {
  try {
    if (typeof key !== 'string' || key === '') return false;
    const received = own(params, 'sign');
    if (typeof received !== 'string' || !HEX_SIGNATURE_PATTERN.test(received)) return false;
    const declared = own(params, 'sign_type');
    let signType: V2SignType;
    if (declared === undefined || declared === '') {
      signType = received.length === SIGNATURE_HEX_LENGTH.MD5 ? 'MD5' : 'HMAC-SHA256';
    } else if (declared === 'MD5' || declared === 'HMAC-SHA256') {
      signType = declared;
    } else {
      return false;
    }
    if (!allowed.includes(signType) || received.length !== SIGNATURE_HEX_LENGTH[signType]) return false;
    const expected = Buffer.from(signV2(params, key, signType), 'utf8');
    const actual = Buffer.from(received.toUpperCase(), 'utf8');
    return expected.length === actual.length && timingSafeEqual(expected, actual);
  } catch {
    return false;
  }
}

/**
 * `<xml><name><![CDATA[value]]></name>…</xml>` in insertion order; numbers (safe integers) unwrapped, undefined
 * skipped, `]]>` split as `]]]]><![CDATA[>`; throws TypeError on a name not matching [A-Za-z0-9_]+, a non-integer
 * number or a character XML 1.0 cannot carry (WeChat Pay v2 request XML, 统一下单).
 */
export function toV2Xml(params: Record<string, string | number | undefined>): string {
  const parts = ['<xml>'];
  for (const [name, raw] of Object.entries(params)) {
    if (!FIELD_NAME_PATTERN.test(name)) throw new TypeError('toV2Xml: field names must match [A-Za-z0-9_]+');
    const value = valueText(raw, 'toV2Xml');
    if (value === undefined) continue;
    if (typeof raw === 'number') {
      parts.push(`<${name}>${value}</${name}>`);
      continue;
    }
    if (!XML_CHAR_PATTERN.test(value)) {
      throw new TypeError(`toV2Xml: field ${name} holds a character XML 1.0 cannot carry`);
    }
    parts.push(`<${name}><![CDATA[${value.replaceAll(']]>', ']]]]><![CDATA[>')}]]></${name}>`);
  }
  parts.push('</xml>');
  return parts.join('');
}

/**
 * Parses a v2 body `<xml><name>value</name>…</xml>` into a null-prototype map of exact strings (CDATA unwrapped,
 * no number coercion, entity references left verbatim, `<a></a>` → ""); checks in order: ≤ maxBytes UTF-8 bytes
 * ('too_large') → no `<!DOCTYPE`/`<!ENTITY` anywhere ('dtd') → no BOM, only XML 1.0 characters, well-formed
 * ('malformed') → one `xml` root holding only leaf elements, no duplicates ('not_flat') → names [A-Za-z0-9_]+
 * ('bad_name'), not `__proto__`/`constructor`/`prototype`/`toString`… ('forbidden_key'); throws V2XmlError (WeChat
 * Pay v2 支付结果通知 / API response XML). `rootName` is `root` for a refund notify's decrypted `req_info`.
 */
export function parseV2Xml(raw: string, maxBytes = MAX_XML_BYTES, rootName = 'xml'): Record<string, string> {
  if (typeof raw !== 'string') throw new V2XmlError('malformed');
  // Every UTF-16 code unit encodes to at least one UTF-8 byte, so a long string is refused without measuring it.
  if (raw.length > maxBytes || Buffer.byteLength(raw, 'utf8') > maxBytes) throw new V2XmlError('too_large');
  if (DTD_PATTERN.test(raw)) throw new V2XmlError('dtd');
  // XMLValidator skips a leading BOM silently; WeChat never sends one.
  if (raw.startsWith(BOM)) throw new V2XmlError('malformed');
  // XMLValidator lets NUL and other characters outside XML 1.0 through; they never come from WeChat.
  if (!XML_CHAR_PATTERN.test(raw)) throw new V2XmlError('malformed');
  return readFlatXml(raw, rootName) ?? parseV2XmlValidated(raw, rootName);
}

/**
 * One pass over the shape WeChat and toV2Xml send: `<xml>` (or `<rootName>`) then only `<name>text</name>` or
 * `<name><![CDATA[text]]></name>` fields (names [A-Za-z0-9_]+, each once, none reaching Object.prototype;
 * text without `<`, `>`, `&` or CR) and whitespace between them, then `</xml>` at the very end. Matching the
 * whole body is its well-formedness check, so it needs neither fast-xml-parser's validator nor its parser.
 * Returns undefined for anything else (which parseV2XmlValidated then refuses or reads with its reason).
 */
function readFlatXml(raw: string, rootName: string): Record<string, string> | undefined {
  const open = `<${rootName}>`;
  const close = `</${rootName}>`;
  if (!raw.startsWith(open) || !raw.endsWith(close)) return undefined;
  const end = raw.length - close.length;
  const result: Record<string, string> = Object.create(null);
  let fields = 0;
  FLAT_FIELD.lastIndex = open.length;
  while (FLAT_FIELD.lastIndex < end) {
    const match = FLAT_FIELD.exec(raw);
    if (match === null || FLAT_FIELD.lastIndex > end) return undefined;
    const name = match[1];
    if (name === undefined) continue; // whitespace between fields
    if (name in result || FORBIDDEN_KEYS.has(name) || name in Object.prototype) return undefined;
    result[name] = match[2] ?? match[3] ?? '';
    fields++;
  }
  return fields > 0 ? result : undefined;
}

/**
 * The general reader: fast-xml-parser's validator for well-formedness, then its parser, then the flat-shape
 * checks; throws V2XmlError 'malformed' | 'not_flat' | 'bad_name' | 'forbidden_key' (see parseV2Xml, which
 * makes the size, DTD and character checks first). Exported for the tests that compare it with the one-pass
 * reader.
 */
export function parseV2XmlValidated(raw: string, rootName = 'xml'): Record<string, string> {
  if (XMLValidator.validate(raw) !== true) throw new V2XmlError('malformed');

  let document: unknown;
  try {
    document = xmlParser().parse(raw);
  } catch (error) {
    if (error instanceof ForbiddenKeyError) throw new V2XmlError('forbidden_key');
    throw new V2XmlError('malformed');
  }

  if (!isPlainRecord(document)) throw new V2XmlError('malformed');
  const rootNames = Object.keys(document);
  if (rootNames.length !== 1 || rootNames[0] !== rootName) throw new V2XmlError('not_flat');
  const root = document[rootName];
  if (!isPlainRecord(root)) throw new V2XmlError('not_flat');

  const result: Record<string, string> = Object.create(null);
  for (const [name, value] of Object.entries(root)) {
    if (name === '#text') {
      // Indentation between the fields; any other text beside them is mixed content.
      if (typeof value === 'string' && value.trim() === '') continue;
      throw new V2XmlError('not_flat');
    }
    if (typeof value !== 'string') throw new V2XmlError('not_flat');
    if (FORBIDDEN_KEYS.has(name)) throw new V2XmlError('forbidden_key');
    if (!FIELD_NAME_PATTERN.test(name)) throw new V2XmlError('bad_name');
    result[name] = value;
  }
  return result;
}

/**
 * `wx.requestPayment` arguments for v2: paySign = signV2 over {appId, timeStamp, nonceStr, package: `prepay_id=…`,
 * signType} (camelCase, capital I); timeStamp unix seconds as a string (default now), nonceStr default nonceStr();
 * throws TypeError on an empty appId/prepayId/key, a prepayId already prefixed, a non-digit timeStamp or a
 * nonceStr outside [0-9A-Za-z]{1,32} (WeChat Pay v2 小程序调起支付API, doc/v2/merchant/4011939566).
 */
export function buildPayParamsV2(input: {
  appId: string;
  prepayId: string;
  signType: V2SignType;
  key: string;
  timeStamp?: string;
  nonceStr?: string;
}): { timeStamp: string; nonceStr: string; package: string; signType: V2SignType; paySign: string } {
  if (input.appId === '') throw new TypeError('buildPayParamsV2: appId must be non-empty');
  if (input.prepayId === '' || input.prepayId.startsWith('prepay_id=') || /[&=\s]/.test(input.prepayId)) {
    throw new TypeError('buildPayParamsV2: prepayId must be the bare prepay_id from unifiedorder');
  }
  const timeStamp = input.timeStamp ?? String(Math.floor(Date.now() / 1000));
  if (!TIMESTAMP_PATTERN.test(timeStamp))
    throw new TypeError('buildPayParamsV2: timeStamp must be unix seconds');
  const nonce = input.nonceStr ?? nonceStr();
  if (!/^[0-9A-Za-z]{1,32}$/.test(nonce))
    throw new TypeError('buildPayParamsV2: nonceStr must be [0-9A-Za-z]{1,32}');
  const pkg = `prepay_id=${input.prepayId}`;
  const paySign = signV2(
    { appId: input.appId, timeStamp, nonceStr: nonce, package: pkg, signType: input.signType },
    input.key,
    input.signType,
  );
  return { timeStamp, nonceStr: nonce, package: pkg, signType: input.signType, paySign };
}

/**
 * Random [0-9A-Za-z] string of `length` characters (1–32, default 32; ≈5.95 bits each) from crypto.randomInt;
 * throws RangeError otherwise (WeChat `nonce_str`, String(32)).
 */
export function nonceStr(length = MAX_NONCE_LENGTH): string {
  if (!Number.isInteger(length) || length < 1 || length > MAX_NONCE_LENGTH) {
    throw new RangeError(`nonceStr: length must be an integer from 1 to ${MAX_NONCE_LENGTH}`);
  }
  return randomAlphanumeric(length);
}

/**
 * `yyyyMMddHHmmss` in China Standard Time → ISO 8601 UTC, e.g. `20140903131540` → `2014-09-03T05:15:40.000Z` (see
 * time.ts parseCstCompact); throws V2XmlError('bad_time') (WeChat Pay v2 支付结果通知 `time_end`).
 */
export function parseTimeEnd(timeEnd: string): string {
  try {
    return parseCstCompact(timeEnd);
  } catch {
    throw new V2XmlError('bad_time');
  }
}

/** The acknowledgement WeChat expects after a notify is committed (WeChat Pay v2 支付结果通知, 返回参数). */
export const V2_SUCCESS_REPLY =
  '<xml><return_code><![CDATA[SUCCESS]]></return_code><return_msg><![CDATA[OK]]></return_msg></xml>';

/**
 * `<xml><return_code><![CDATA[FAIL]]></return_code><return_msg><![CDATA[message]]></return_msg></xml>`, message
 * CDATA-escaped; WeChat resends the notify; throws TypeError on a character XML 1.0 cannot carry (WeChat Pay v2
 * 支付结果通知, 返回参数).
 */
export function v2FailReply(message: string): string {
  return toV2Xml({ return_code: 'FAIL', return_msg: message });
}

/** Plain code-unit order, which is ASCII order for ASCII names (localeCompare is not). */
function compareAscii(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** The text a field contributes; undefined stays undefined; numbers must be safe integers (fen, counts). */
function valueText(value: string | number | undefined, caller: string): string | undefined {
  if (value === undefined || typeof value === 'string') return value;
  if (typeof value === 'number' && Number.isSafeInteger(value)) return String(value);
  throw new TypeError(`${caller}: values must be strings or safe integers`);
}

function own(record: Record<string, string>, name: string): string | undefined {
  return Object.hasOwn(record, name) ? record[name] : undefined;
}

function isPlainRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
