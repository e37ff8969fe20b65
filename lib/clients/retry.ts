import { randomInt } from 'node:crypto';
import { attemptBudget } from '#lib/deadline';
import { logger } from '#lib/logger';

/** A failure worth one more try: network error, timeout, 5xx, or WeChat's "system busy". */
export class RetryableError extends Error {}

/**
 * Kept back from the invocation's deadline by every WeChat attempt, milliseconds: room for what follows a
 * failed call (createPayment stores the order without a prepay_id) before the answer.
 */
export const WECHAT_RESERVE_MS = 700;
/** A WeChat attempt is not started with less time than this for it, milliseconds. */
export const WECHAT_MIN_ATTEMPT_MS = 500;
/** The longest back-off before the second attempt, milliseconds. */
const MAX_BACKOFF_MS = 300;

/**
 * The timeout of one WeChat attempt: min(`capMs`, time left before the invocation's deadline −
 * WECHAT_RESERVE_MS); `capMs` outside an invocation. Throws RetryableError when that is below
 * WECHAT_MIN_ATTEMPT_MS (the attempt could not end in time).
 */
export function wechatAttemptTimeout(capMs: number): number {
  const timeoutMs = Math.floor(attemptBudget(capMs, WECHAT_RESERVE_MS));
  if (timeoutMs < WECHAT_MIN_ATTEMPT_MS) throw new RetryableError('deadline: no time left for an attempt');
  return timeoutMs;
}

/**
 * One HTTP attempt at a WeChat host within wechatAttemptTimeout(`capMs`), redirects answered as they are (never
 * followed), the body read by `read` inside the same timeout. Throws RetryableError on a network failure, a
 * timeout, no time left for the attempt, or a 5xx (gateways in front of WeChat answer those unsigned).
 */
export async function wechatAttempt<T>(
  url: string | URL,
  init: RequestInit,
  capMs: number,
  read: (response: Response) => Promise<T>,
): Promise<{ status: number; headers: Headers; body: T }> {
  const timeoutMs = wechatAttemptTimeout(capMs);
  let response: Response;
  let body: T;
  try {
    response = await fetch(url, { ...init, redirect: 'manual', signal: AbortSignal.timeout(timeoutMs) });
    body = await read(response);
  } catch (error) {
    throw new RetryableError(`network: ${(error as Error).name}`);
  }
  if (response.status >= 500) throw new RetryableError(`http ${response.status}`);
  return { status: response.status, headers: response.headers, body };
}

/**
 * Runs `call`; on a RetryableError waits 100–300 ms and runs it once more (WeChat's advice for -1 /
 * SYSTEMERROR), unless the invocation's deadline leaves no room for a second attempt after the back-off.
 * A RetryableError that is not retried is replaced by `exhausted(reason)`; other errors pass through.
 */
export async function withOneRetry<T>(
  label: string,
  call: () => Promise<T>,
  exhausted: (reason: string) => Error,
): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await call();
    } catch (error) {
      if (!(error instanceof RetryableError)) throw error;
      logger.warn(`${label} failed`, { attempt, reason: error.message });
      if (attempt >= 2) throw exhausted(error.message);
      const backoff = 100 + randomInt(200);
      if (
        attemptBudget(Number.POSITIVE_INFINITY, WECHAT_RESERVE_MS + MAX_BACKOFF_MS) < WECHAT_MIN_ATTEMPT_MS
      ) {
        throw exhausted(`${error.message}; no time left for a retry`);
      }
      await new Promise((resolve) => setTimeout(resolve, backoff));
    }
  }
}
