import { randomInt } from 'node:crypto';
import { logger } from '#lib/logger';

/** A failure worth one more try: network error, timeout, 5xx, or WeChat's "system busy". */
export class RetryableError extends Error {}

/**
 * Runs `call`; on a RetryableError waits 100–300 ms and runs it once more (WeChat's advice for -1 /
 * SYSTEMERROR). A second RetryableError is replaced by `exhausted(reason)`; other errors pass through.
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
      await new Promise((resolve) => setTimeout(resolve, 100 + randomInt(200)));
    }
  }
}
