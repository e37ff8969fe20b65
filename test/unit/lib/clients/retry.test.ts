import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { RetryableError, withOneRetry } from '#lib/clients/retry';
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
