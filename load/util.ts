/**
 * Small building blocks of the load harness: a seeded RNG, a promise pool that records latencies,
 * percentiles, memory probes. No app imports here (safe to import before the environment is set).
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/** mulberry32: a tiny deterministic PRNG, good enough to shuffle and pick (not for secrets). */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Fisher–Yates in place with the given RNG; returns the same array. */
export function shuffle<T>(items: T[], random: () => number): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [items[i], items[j]] = [items[j] as T, items[i] as T];
  }
  return items;
}

/** An integer in [min, max] inclusive. */
export function randomInt(random: () => number, min: number, max: number): number {
  return min + Math.floor(random() * (max - min + 1));
}

/**
 * Runs `task` over `items` with at most `concurrency` in flight; returns each call's latency in ms
 * (index-aligned with `items`). A task that throws is recorded and rethrown after the pool drains.
 */
export async function runPool<T>(
  items: readonly T[],
  concurrency: number,
  task: (item: T, index: number) => Promise<void>,
): Promise<Float64Array> {
  const latencies = new Float64Array(items.length);
  let next = 0;
  const errors: unknown[] = [];
  const lane = async () => {
    for (;;) {
      const index = next++;
      if (index >= items.length) return;
      // Each request starts in its own macrotask, as separate invocations do: a handler that never waits on
      // I/O would otherwise run the whole pool inside one microtask drain, starving timers (event-loop
      // delay, memory sampling) and charging every request with its neighbours' CPU time.
      await new Promise<void>((resolve) => setImmediate(resolve));
      const started = performance.now();
      try {
        await task(items[index] as T, index);
      } catch (error) {
        errors.push(error);
      }
      latencies[index] = performance.now() - started;
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, lane));
  if (errors.length > 0) {
    throw new AggregateError(errors, `${errors.length} pool task(s) threw: ${String(errors[0])}`);
  }
  return latencies;
}

export interface LatencySummary {
  count: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
}

/** Nearest-rank percentiles of latencies in ms. */
export function summarize(latencies: ArrayLike<number>): LatencySummary {
  const sorted = Float64Array.from(latencies).sort();
  const rank = (p: number) => sorted[Math.max(0, Math.ceil((p / 100) * sorted.length) - 1)] ?? 0;
  return {
    count: sorted.length,
    p50: rank(50),
    p95: rank(95),
    p99: rank(99),
    max: sorted[sorted.length - 1] ?? 0,
  };
}

/** Joins several latency arrays (e.g. from worker processes). */
export function concatLatencies(parts: ArrayLike<number>[]): Float64Array {
  const total = parts.reduce((sum, part) => sum + part.length, 0);
  const out = new Float64Array(total);
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

let gcFunction: (() => void) | undefined;

/** Forces a full GC when possible (exposes `gc` at run time), so memory deltas measure retained memory. */
export function collectGarbage(): void {
  if (!gcFunction) {
    setFlagsFromString('--expose-gc');
    gcFunction = runInNewContext('gc') as () => void;
  }
  gcFunction();
  gcFunction();
}

export const MB = 1024 * 1024;

/** Formats ms with sensible precision. */
export function ms(value: number): string {
  return value >= 100 ? value.toFixed(0) : value >= 10 ? value.toFixed(1) : value.toFixed(2);
}

export function sleep(milliseconds: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, milliseconds));
}
