import { type Agent, request as httpsRequest } from 'node:https';
import { ConflictError, ServiceUnavailableError, UpstreamError } from '#lib/errors';
import { RetryableError, wechatAttempt, wechatAttemptTimeout, withOneRetry } from './retry';

/**
 * What the v2 and v3 WeChat Pay clients do alike: one deadline per attempt (bounded by the invocation's),
 * network errors and 5xx retried once when time allows, then answered 503 WECHAT_PAY_UNAVAILABLE, an order
 * WeChat calls paid or closed answered 409.
 */

/** One attempt's cap, milliseconds (less when the invocation has less time left: see wechatAttemptTimeout). */
export const PAY_ATTEMPT_TIMEOUT_MS = 5000;

/** The raw answer of one HTTP exchange with WeChat Pay. */
export interface PayHttpAnswer {
  status: number;
  headers: Headers;
  text: string;
}

/**
 * One HTTP exchange within PAY_ATTEMPT_TIMEOUT_MS, or less when the invocation's deadline is nearer;
 * redirects are answered as they are (never followed). Throws RetryableError on a network failure, a
 * timeout, no time left for the attempt, or a 5xx (gateways in front of WeChat answer those unsigned, so
 * they are never acted on).
 */
export async function payExchange(url: string, init: RequestInit): Promise<PayHttpAnswer> {
  const { status, headers, body } = await wechatAttempt(url, init, PAY_ATTEMPT_TIMEOUT_MS, (response) =>
    response.text(),
  );
  return { status, headers, text: body };
}

/**
 * One POST over mutual TLS through `agent` (the merchant API certificate and key; WeChat Pay v2 `/secapi/`), with
 * the same timeout and failure rules as payExchange: RetryableError on a network or TLS failure, a timeout, no time
 * left, or a 5xx.
 */
export async function mtlsExchange(url: string, body: string, agent: Agent): Promise<PayHttpAnswer> {
  const timeoutMs = wechatAttemptTimeout(PAY_ATTEMPT_TIMEOUT_MS);
  const answer = await new Promise<PayHttpAnswer>((resolve, reject) => {
    const request = httpsRequest(
      url,
      {
        method: 'POST',
        agent,
        headers: { 'content-type': 'text/xml; charset=utf-8', 'content-length': Buffer.byteLength(body) },
        timeout: timeoutMs,
      },
      (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('error', (error) => reject(new RetryableError(`network: ${error.name}`)));
        response.on('end', () => {
          const headers = new Headers();
          for (const [name, value] of Object.entries(response.headers)) {
            if (typeof value === 'string') headers.set(name, value);
          }
          resolve({
            status: response.statusCode ?? 0,
            headers,
            text: Buffer.concat(chunks).toString('utf8'),
          });
        });
      },
    );
    const deadline = setTimeout(() => request.destroy(new Error('timeout')), timeoutMs);
    request.on('timeout', () => request.destroy(new Error('timeout')));
    request.on('error', (error) => reject(new RetryableError(`network: ${error.message}`)));
    request.on('close', () => clearTimeout(deadline));
    request.end(body);
  });
  if (answer.status >= 500) throw new RetryableError(`http ${answer.status}`);
  return answer;
}

/** Runs one WeChat Pay call with one retry; a second RetryableError becomes 503 WECHAT_PAY_UNAVAILABLE. */
export function withPayRetry<T>(version: 'v2' | 'v3', path: string, call: () => Promise<T>): Promise<T> {
  return withOneRetry(`wechat pay ${version} ${path}`, call, (reason) =>
    payUnavailable(`${path}: ${reason}`),
  );
}

/** 503 WECHAT_PAY_UNAVAILABLE: WeChat Pay is busy, rate-limited or did not answer. */
export function payUnavailable(detail: string): ServiceUnavailableError {
  return new ServiceUnavailableError('微信支付繁忙，请稍后再试', 'WECHAT_PAY_UNAVAILABLE', detail);
}

/** 502: WeChat Pay answered something we cannot use (`code` WECHAT_PAY_ERROR unless given). */
export function payUpstream(message: string, detail: string, code = 'WECHAT_PAY_ERROR'): UpstreamError {
  return new UpstreamError(message, code, detail);
}

/**
 * 409 for an error code saying the order is already paid (v2 ORDERPAID, v3 ORDERPAID / ORDER_PAID) or closed
 * (v2 ORDERCLOSED, v3 ORDER_CLOSED); undefined for any other code.
 */
export function orderStateConflict(code: string): ConflictError | undefined {
  if (code === 'ORDERPAID' || code === 'ORDER_PAID')
    return new ConflictError('订单已支付', 'ORDER_PAID', code);
  if (code === 'ORDERCLOSED' || code === 'ORDER_CLOSED') {
    return new ConflictError('订单已关闭，请重新下单', 'ORDER_CLOSED', code);
  }
  return undefined;
}

/** One bill download's cap, milliseconds (less when the invocation has less time left). */
export const BILL_DOWNLOAD_TIMEOUT_MS = 20_000;
/** The largest bill body read, bytes (a day of a busy merchant is a few MB). */
export const MAX_BILL_BYTES = 64 * 1024 * 1024;

/**
 * One bill download (v2 downloadbill, v3 download_url) within BILL_DOWNLOAD_TIMEOUT_MS or the invocation's
 * deadline: the raw body bytes (plain text, gzip or an error XML/JSON). Throws RetryableError like
 * payExchange, and on a body over MAX_BILL_BYTES.
 */
export async function payDownload(
  url: string,
  init: RequestInit,
): Promise<{ status: number; headers: Headers; bytes: Buffer }> {
  const {
    status,
    headers,
    body: bytes,
  } = await wechatAttempt(url, init, BILL_DOWNLOAD_TIMEOUT_MS, async (response) =>
    Buffer.from(await response.arrayBuffer()),
  );
  if (bytes.length > MAX_BILL_BYTES) throw payUpstream('微信支付账单过大', `bill of ${bytes.length} bytes`);
  return { status, headers, bytes };
}

/** Whether bytes are gzip (magic 1f 8b). */
export function isGzip(bytes: Uint8Array): boolean {
  return bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;
}
