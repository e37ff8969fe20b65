import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { RetryableError, WECHAT_RESERVE_MS, wechatAttemptTimeout, withOneRetry } from '#lib/clients/retry';
import { ANSWER_MARGIN_MS, withDeadline } from '#lib/deadline';
import { logger } from '#lib/logger';

const exhausted = (reason: string) => new Error(`exhausted: ${reason}`);

/** Runs withOneRetry under fake timers (the 100–300 ms pause elapses at once); resolves with its outcome. */
async function run<T>(call: () => Promise<T>): Promise<T | unknown> {
  const outcome = withOneRetry('unit call', call, exhausted).catch((error: unknown) => error);
  await vi.runAllTimersAsync();
  return outcome;
}

describe('withOneRetry', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => {
    vi.useRealTimers();
    vi.restoreAllMocks();
  });

  it('returns the first answer without a retry', async () => {
    // Prepare
    const call = vi.fn(async () => 'answer');
    // Act / Assess
    expect(await run(call)).toBe('answer');
    expect(call).toHaveBeenCalledTimes(1);
  });

  it('retries once after a RetryableError, pausing 100–300 ms, and returns the second answer', async () => {
    // Prepare
    const call = vi.fn<() => Promise<string>>().mockRejectedValueOnce(new RetryableError('SYSTEMERROR'));
    call.mockResolvedValueOnce('second');
    const warned = vi.spyOn(logger, 'warn');
    const started = Date.now();
    // Act
    const outcome = await run(call);
    // Assess
    expect(outcome).toBe('second');
    expect(call).toHaveBeenCalledTimes(2);
    expect(Date.now() - started).toBeGreaterThanOrEqual(100);
    expect(Date.now() - started).toBeLessThan(300);
    expect(warned).toHaveBeenCalledWith('unit call failed', { attempt: 1, reason: 'SYSTEMERROR' });
  });

  it('replaces a second RetryableError with the exhausted error and tries no third time', async () => {
    // Prepare
    const call = vi.fn(async () => {
      throw new RetryableError(`http 50${call.mock.calls.length}`);
    });
    // Act
    const outcome = await run(call);
    // Assess
    expect(outcome).toEqual(new Error('exhausted: http 502'));
    expect(call).toHaveBeenCalledTimes(2);
  });

  it('passes any other error through at once', async () => {
    // Prepare
    const refused = new Error('ORDERPAID');
    const call = vi.fn(async () => {
      throw refused;
    });
    // Act
    const outcome = await run(call);
    // Assess
    expect(outcome).toBe(refused);
    expect(call).toHaveBeenCalledTimes(1);
  });

  it('passes a non-retryable error of the retry through too', async () => {
    // Prepare
    const refused = new Error('bad signature');
    const call = vi
      .fn<() => Promise<string>>()
      .mockRejectedValueOnce(new RetryableError('network: TypeError'));
    call.mockRejectedValueOnce(refused);
    // Act
    const outcome = await run(call);
    // Assess
    expect(outcome).toBe(refused);
    expect(call).toHaveBeenCalledTimes(2);
  });
});

describe('withOneRetry under an invocation deadline', () => {
  afterEach(() => vi.restoreAllMocks());

  it('does not retry when a second attempt cannot end before the deadline', async () => {
    // Prepare: 1.5 s left, less the answer margin and the reserve, leaves no room for a second attempt
    const call = vi.fn(async () => {
      throw new RetryableError('network: TimeoutError');
    });
    // Act
    const outcome = await withDeadline({ getRemainingTimeInMillis: () => 1500 }, () =>
      withOneRetry('unit call', call, exhausted).catch((error: unknown) => error),
    );
    // Assess
    expect((outcome as Error).message).toMatch(/^exhausted: network: TimeoutError; no time left/);
    expect(call).toHaveBeenCalledTimes(1);
  });

  it('retries when the deadline leaves room for a second attempt', async () => {
    // Prepare
    const call = vi.fn<() => Promise<string>>().mockRejectedValueOnce(new RetryableError('SYSTEMERROR'));
    call.mockResolvedValueOnce('second');
    // Act
    const outcome = await withDeadline({ getRemainingTimeInMillis: () => 10_000 }, () =>
      withOneRetry('unit call', call, exhausted),
    );
    // Assess
    expect(outcome).toBe('second');
    expect(call).toHaveBeenCalledTimes(2);
  });
});

describe('wechatAttemptTimeout', () => {
  it('is the cap outside an invocation', () => {
    expect(wechatAttemptTimeout(5000)).toBe(5000);
  });

  it('is the time left less the reserve when that is shorter than the cap', async () => {
    const timeout = await withDeadline({ getRemainingTimeInMillis: () => 3000 }, async () =>
      wechatAttemptTimeout(5000),
    );
    expect(timeout).toBeLessThanOrEqual(3000 - ANSWER_MARGIN_MS - WECHAT_RESERVE_MS);
    expect(timeout).toBeGreaterThan(3000 - ANSWER_MARGIN_MS - WECHAT_RESERVE_MS - 100);
  });

  it('refuses an attempt that could not end in time with a RetryableError', async () => {
    const attempt = withDeadline({ getRemainingTimeInMillis: () => 1200 }, async () =>
      wechatAttemptTimeout(5000),
    );
    await expect(attempt).rejects.toBeInstanceOf(RetryableError);
  });
});
