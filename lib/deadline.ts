import { AsyncLocalStorage } from 'node:async_hooks';

/**
 * One deadline per Lambda invocation: `context.getRemainingTimeInMillis()` minus ANSWER_MARGIN_MS, set by the
 * two HTTP wrappers (and the scheduled reconciler) around the route, read by the clients (DynamoDB, SSM,
 * WeChat) so that every call ends before it without threading a budget through the domain's signatures.
 * Outside an invocation, or with a context that has no getRemainingTimeInMillis (tests), there is none.
 */

/** Kept back from the Lambda's remaining time for mapping the error and answering, milliseconds. */
export const ANSWER_MARGIN_MS = 500;

interface Scope {
  /** Epoch milliseconds by which every dependency call must have ended. */
  at: number;
  signal?: AbortSignal;
}

const scopes = new AsyncLocalStorage<Scope>();

/** What a Lambda context offers for the deadline (the test fixture has none of it). */
export interface RemainingTime {
  getRemainingTimeInMillis?: () => number;
}

/**
 * Runs `work` under the deadline `context.getRemainingTimeInMillis() − ANSWER_MARGIN_MS` from now; without
 * that function on the context, runs it without a deadline.
 */
export function withDeadline<T>(context: RemainingTime | undefined, work: () => Promise<T>): Promise<T> {
  const remaining = context?.getRemainingTimeInMillis?.();
  if (typeof remaining !== 'number' || !Number.isFinite(remaining)) return work();
  return scopes.run({ at: Date.now() + remaining - ANSWER_MARGIN_MS }, work);
}

/** Milliseconds left before the invocation's deadline (≤ 0 once past it); Infinity outside a deadline. */
export function timeLeft(): number {
  const scope = scopes.getStore();
  return scope ? scope.at - Date.now() : Number.POSITIVE_INFINITY;
}

/** How long one attempt may take: min(`capMs`, time left − `reserveMs`), possibly ≤ 0; `capMs` without a deadline. */
export function attemptBudget(capMs: number, reserveMs = 0): number {
  return Math.min(capMs, timeLeft() - reserveMs);
}

/** A signal that aborts at the invocation's deadline (one per invocation); undefined without a deadline. */
export function deadlineSignal(): AbortSignal | undefined {
  const scope = scopes.getStore();
  if (!scope) return undefined;
  scope.signal ??= AbortSignal.timeout(Math.max(0, scope.at - Date.now()));
  return scope.signal;
}

/** A dependency call that was not started (or not retried) because it could not end before the deadline. */
export class DeadlineExceededError extends Error {
  override readonly name = 'DeadlineExceededError';
  constructor(what: string) {
    super(`${what}: no time left before the invocation's deadline`);
  }
}
