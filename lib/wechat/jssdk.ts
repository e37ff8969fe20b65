import { createHash } from 'node:crypto';

/**
 * The JS-SDK `wx.config` signature and the page-URL rule, pure (no I/O, no config): official-account H5 pages
 * (JS-SDK 附录1, https://developers.weixin.qq.com/doc/offiaccount/OA_Web_Apps/JS-SDK.html).
 */

export interface JssdkSignInput {
  /** The official account's current jsapi_ticket. */
  jsapiTicket: string;
  /** The `nonceStr` wx.config will pass. */
  nonceStr: string;
  /** The `timestamp` wx.config will pass, Unix seconds. */
  timestamp: number;
  /** The page URL as the browser has it; anything from the first `#` on is dropped. */
  url: string;
}

/** The URL WeChat signs: the page URL without `#` and what follows it. */
export function signedPageUrl(url: string): string {
  const hash = url.indexOf('#');
  return hash === -1 ? url : url.slice(0, hash);
}

/**
 * `string1` (`jsapi_ticket=…&noncestr=…&timestamp=…&url=…`: names sorted, raw values, no escaping) and its
 * SHA-1 as lowercase hex, the `signature` of wx.config.
 */
export function jssdkSignature(input: JssdkSignInput): { string1: string; signature: string } {
  const string1 =
    `jsapi_ticket=${input.jsapiTicket}&noncestr=${input.nonceStr}` +
    `&timestamp=${input.timestamp}&url=${signedPageUrl(input.url)}`;
  return { string1, signature: createHash('sha1').update(string1, 'utf8').digest('hex') };
}

/** The longest page URL we sign. */
export const MAX_PAGE_URL_LENGTH = 2048;

/** Whitespace, controls and backslashes: a browser's location.href never holds them, parsers disagree on them. */
// biome-ignore lint/suspicious/noControlCharactersInRegex: refusing control characters is the point.
const UNSAFE_URL_CHARACTERS = /[\u0000-\u0020\u007f-\u009f\\\u2028\u2029]/;

/**
 * Whether `url` is an absolute http(s) page URL whose origin is exactly one of `origins` (scheme, host and port
 * as H5_ORIGINS lists them), with no user info (`https://h5.example.com@evil.com`), no whitespace, controls or
 * backslashes, and at most MAX_PAGE_URL_LENGTH characters. Protocol-relative (`//evil`), other schemes
 * (`javascript:`, percent-encoded ones) and other origins are refused.
 */
export function isPageUrlAllowed(url: string, origins: readonly string[]): boolean {
  if (url.length === 0 || url.length > MAX_PAGE_URL_LENGTH || UNSAFE_URL_CHARACTERS.test(url)) return false;
  if (!/^https?:\/\//i.test(url) || !URL.canParse(url)) return false;
  const parsed = new URL(url);
  if (parsed.username || parsed.password) return false;
  if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:') return false;
  return origins.includes(parsed.origin);
}
