import { UpstreamError } from '#lib/errors';
import { RetryableError, wechatAttempt } from './retry';

/** How long one attempt at an api.weixin.qq.com JSON endpoint may take at most, milliseconds. */
const TIMEOUT_MS = 3000;

/**
 * One attempt at a WeChat JSON endpoint (api.weixin.qq.com: jscode2session, stable_token, getticket,
 * getuserphonenumber, sns/oauth2): the body as an object, read as text first (WeChat labels JSON text/plain),
 * without following redirects, within min(3 s, the invocation's time left). `errcode` is the caller's to read,
 * except -1 (system busy). Throws RetryableError (network, timeout, 5xx, errcode -1) and UpstreamError (another
 * status, a body that is not a JSON object); `label` names the endpoint in error details, never a value.
 */
export async function wechatJson(
  label: string,
  url: URL,
  init: RequestInit = {},
): Promise<Record<string, unknown>> {
  const { status, body: text } = await wechatAttempt(url, init, TIMEOUT_MS, (response) => response.text());
  if (status !== 200) throw new UpstreamError(undefined, 'WECHAT_ERROR', `${label}: http ${status}`);
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new UpstreamError(undefined, 'WECHAT_ERROR', `${label} answered non-JSON`);
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new UpstreamError(undefined, 'WECHAT_ERROR', `${label} answered non-JSON`);
  }
  if ((body as { errcode?: unknown }).errcode === -1) throw new RetryableError('errcode -1');
  return body as Record<string, unknown>;
}
