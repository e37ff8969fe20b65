import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  ANSWER_MARGIN_MS,
  attemptBudget,
  DeadlineExceededError,
  deadlineSignal,
  timeLeft,
  withDeadline,
} from '#lib/deadline';

const remaining = (ms: number) => ({ getRemainingTimeInMillis: () => ms });

describe('withDeadline', () => {
  afterEach(() => vi.useRealTimers());

  it('has no deadline outside an invocation: time left is infinite, the budget is the cap, no signal', () => {
    expect(timeLeft()).toBe(Number.POSITIVE_INFINITY);
    expect(attemptBudget(5000, 700)).toBe(5000);
    expect(deadlineSignal()).toBeUndefined();
  });

  it('has no deadline with a context without getRemainingTimeInMillis (the test fixture)', async () => {
    expect(await withDeadline({}, async () => timeLeft())).toBe(Number.POSITIVE_INFINITY);
    expect(await withDeadline(undefined, async () => deadlineSignal())).toBeUndefined();
  });

  it('sets the deadline at the remaining time minus the answer margin, counting down', async () => {
    vi.useFakeTimers({ now: 1_000_000 });
    await withDeadline(remaining(3000), async () => {
      expect(timeLeft()).toBe(3000 - ANSWER_MARGIN_MS);
      vi.advanceTimersByTime(1000);
      expect(timeLeft()).toBe(2000 - ANSWER_MARGIN_MS);
      expect(attemptBudget(5000)).toBe(2000 - ANSWER_MARGIN_MS);
      expect(attemptBudget(5000, 700)).toBe(1300 - ANSWER_MARGIN_MS);
      expect(attemptBudget(1000)).toBe(1000);
    });
  });

  it('goes below zero once past the deadline', async () => {
    vi.useFakeTimers({ now: 1_000_000 });
    await withDeadline(remaining(ANSWER_MARGIN_MS + 100), async () => {
      vi.advanceTimersByTime(300);
      expect(timeLeft()).toBe(-200);
    });
  });

  it('follows the work across awaits and keeps concurrent invocations apart', async () => {
    const seen = await Promise.all([
      withDeadline(remaining(10_000), async () => {
        await new Promise((resolve) => setTimeout(resolve, 5));
        return timeLeft();
      }),
      withDeadline(remaining(2_000), async () => {
        await new Promise((resolve) => setTimeout(resolve, 5));
        return timeLeft();
      }),
    ]);
    expect(seen[0]).toBeGreaterThan(9_000 - ANSWER_MARGIN_MS);
    expect(seen[1]).toBeLessThanOrEqual(2_000 - ANSWER_MARGIN_MS);
    expect(timeLeft()).toBe(Number.POSITIVE_INFINITY);
  });

  it('gives one signal per invocation, aborted at the deadline', async () => {
    await withDeadline(remaining(ANSWER_MARGIN_MS + 30), async () => {
      const signal = deadlineSignal();
      expect(signal).toBeDefined();
      expect(deadlineSignal()).toBe(signal);
      expect(signal?.aborted).toBe(false);
      await new Promise((resolve) => setTimeout(resolve, 200));
      expect(signal?.aborted).toBe(true);
    });
  });

  it('names what ran out of time', () => {
    const error = new DeadlineExceededError('DynamoDB');
    expect(error.name).toBe('DeadlineExceededError');
    expect(error.message).toContain('DynamoDB');
  });
});
