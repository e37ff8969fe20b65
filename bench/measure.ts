/**
 * Side-by-side measurement for `npm run bench`: our code path and a raw baseline doing the same job (raw
 * node:crypto, raw SDK call) run interleaved in short slices. Each slice is timed in this process's CPU time,
 * so time the scheduler gives to a busy neighbour counts for neither side. The gated figure is the median, over
 * pairs of rounds, of (our CPU µs per op ÷ the baseline's); wall-clock throughput is printed for information
 * only, since this machine is shared.
 */

export interface Comparison {
  name: string;
  /** What the baseline does. */
  baseline: string;
  /** Wall-clock throughput, for information. */
  oursOpsPerSecond: number;
  baseOpsPerSecond: number;
  /** Median cost ratio over pairs of rounds, ours ÷ baseline (1 = as cheap as the raw baseline). */
  ratio: number;
  /** The largest ratio accepted. */
  maxRatio: number;
  /** Printed for information, never gated (maxRatio ignored). */
  info?: boolean;
  /** 99th percentile of our op's wall-clock latency, ms (async comparisons only). */
  p99Ms?: number;
}

export interface MeasureOptions {
  /** CPU time per side, ms (warm-up not included). */
  budgetMs: number;
  /** CPU length of one slice, ms: each round runs one slice of each side. */
  sliceMs?: number;
}

type Op = () => unknown;

interface Side {
  op: Op;
  ops: number;
  /** Wall-clock ms spent in this side's slices. */
  wallMs: number;
  /** CPU ms of this process spent in them. */
  cpuMs: number;
  /** Ops per slice. */
  batch: number;
  /** Wall-clock latency of each async op, ms. */
  latencies?: number[];
}

/**
 * Runs one slice of `side.batch` ops and adds its wall and CPU time to `side`; returns the CPU ms. Async ops
 * run one at a time, as in one Lambda container.
 */
async function slice(side: Side, async: boolean): Promise<number> {
  const cpu = process.cpuUsage();
  const started = performance.now();
  if (async) {
    for (let i = 0; i < side.batch; i++) {
      const t0 = performance.now();
      await side.op();
      side.latencies?.push(performance.now() - t0);
    }
  } else {
    for (let i = 0; i < side.batch; i++) side.op();
  }
  side.wallMs += performance.now() - started;
  const used = process.cpuUsage(cpu);
  const cpuMs = (used.user + used.system) / 1000;
  side.cpuMs += cpuMs;
  side.ops += side.batch;
  return cpuMs;
}

/** Warms `op` up for `warmMs` of CPU and returns a side whose batch fills about `sliceMs` of CPU. */
async function warmSide(op: Op, async: boolean, warmMs: number, sliceMs: number): Promise<Side> {
  const side: Side = { op, ops: 0, wallMs: 0, cpuMs: 0, batch: 1 };
  while (side.cpuMs < warmMs) {
    await slice(side, async);
    if (side.cpuMs < warmMs / 4) side.batch *= 2;
  }
  const batch = Math.max(1, Math.round((side.ops / Math.max(side.cpuMs, 0.001)) * sliceMs));
  return { op, ops: 0, wallMs: 0, cpuMs: 0, batch, latencies: async ? [] : undefined };
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1
    ? (sorted[mid] as number)
    : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

/**
 * Measures `ours` against `base` interleaved until each side has used `budgetMs` of CPU; rounds come in pairs
 * (ours first, then the baseline first) so neither side always runs right after the switch.
 */
export async function compare(
  input: {
    name: string;
    baseline: string;
    ours: Op;
    base: Op;
    maxRatio: number;
    async?: boolean;
    info?: boolean;
  },
  options: MeasureOptions,
): Promise<Comparison> {
  const async = input.async ?? false;
  const sliceMs = options.sliceMs ?? 10;
  const warmMs = Math.min(200, options.budgetMs / 4);
  const ours = await warmSide(input.ours, async, warmMs, sliceMs);
  const base = await warmSide(input.base, async, warmMs, sliceMs);
  const ratios: number[] = [];
  while (ours.cpuMs < options.budgetMs || base.cpuMs < options.budgetMs) {
    let oursCost = (await slice(ours, async)) / ours.batch;
    let baseCost = (await slice(base, async)) / base.batch;
    baseCost += (await slice(base, async)) / base.batch;
    oursCost += (await slice(ours, async)) / ours.batch;
    ratios.push(oursCost / baseCost);
  }
  const latencies = ours.latencies?.sort((a, b) => a - b);
  return {
    name: input.name,
    baseline: input.baseline,
    oursOpsPerSecond: (ours.ops / ours.wallMs) * 1000,
    baseOpsPerSecond: (base.ops / base.wallMs) * 1000,
    ratio: median(ratios),
    maxRatio: input.maxRatio,
    info: input.info,
    p99Ms: latencies ? latencies[Math.ceil(latencies.length * 0.99) - 1] : undefined,
  };
}

/** Prints the table; returns the comparisons whose ratio exceeds its gate. */
export function report(rows: Comparison[], options: MeasureOptions): Comparison[] {
  const nameWidth = Math.max(...rows.map((row) => row.name.length));
  const baseWidth = Math.max(...rows.map((row) => row.baseline.length));
  console.log(
    `bench node=${process.version}: ${options.budgetMs} ms of CPU per side in ${options.sliceMs ?? 10} ms slices, ` +
      'interleaved; gated on the CPU-time ratio to the baseline only (wall-clock ops/s for information)',
  );
  console.log(
    `${'ours'.padEnd(nameWidth)}  ${'ops/s'.padStart(8)}  ${'p99'.padStart(8)}  ${'baseline (same run)'.padEnd(baseWidth)}  ${'ops/s'.padStart(8)}  ${'ratio'.padStart(6)}  gate`,
  );
  const missed: Comparison[] = [];
  for (const row of rows) {
    const ok = row.info === true || row.ratio <= row.maxRatio;
    if (!ok) missed.push(row);
    const p99 = row.p99Ms === undefined ? '' : `${row.p99Ms.toFixed(2)}ms`;
    const gate = row.info === true ? 'info (not gated)' : `≤ ${row.maxRatio}× ${ok ? 'ok' : 'MISSED'}`;
    console.log(
      `${row.name.padEnd(nameWidth)}  ${row.oursOpsPerSecond.toFixed(0).padStart(8)}  ${p99.padStart(8)}  ${row.baseline.padEnd(baseWidth)}  ${row.baseOpsPerSecond.toFixed(0).padStart(8)}  ${`${row.ratio.toFixed(2)}×`.padStart(6)}  ${gate}`,
    );
  }
  return missed;
}
