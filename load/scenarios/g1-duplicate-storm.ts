/**
 * G1 duplicate storm: every order notified 50 times (MD5/HMAC alternating), shuffled, 128 in flight;
 * then again with each order's duplicates split across two forked processes (v2 and, when available, v3).
 */
import { v2Delivery, v3Delivery } from '#load/app';
import {
  type Ctx,
  count,
  type Lane,
  latencyFields,
  newResult,
  populate,
  type Result,
  runLanes,
  type Storm,
  settleStorm,
  stormDeliveries,
  viaField,
} from '#load/harness';
import type { LedgerResult } from '#load/ledger';
import { rawStorm } from '#load/raw-storm';
import { ms, seededRandom, shuffle, summarize } from '#load/util';
import { forkWorker } from '#load/workers';

/** The app's p99 may exceed 1.5 s only where the emulator alone does: then by at most this factor. */
const FLOOR_FACTOR = 1.2;

/**
 * The raw floor of a storm of `orderCount` orders × `duplicates` (load/raw-storm.ts) on fresh tables of its
 * own: seeded like the app's, 128 in flight. Call it before populating the app's tables (it switches them).
 */
async function rawFloor(
  ctx: Ctx,
  scenarioNo: number,
  orderCount: number,
  duplicates: number,
  random: () => number,
) {
  const population = await populate(
    ctx,
    `g1raw${scenarioNo}`,
    scenarioNo,
    { orders: orderCount, paid: true },
    random,
  );
  const raw = await rawStorm(ctx.endpoint, population, duplicates, 128, random);
  return { ...raw, summary: summarize(raw.latencies), orders: orderCount };
}
type RawFloor = Awaited<ReturnType<typeof rawFloor>>;

/**
 * G1's fields (credits, duplicate acknowledgements, then `fields`, then the raw floor) and its targets:
 * wall ≤ 30 s; p99 ≤ 1.5 s, or, when the raw floor's own p99 on this machine misses 1.5 s, p99 ≤ 1.2 × the
 * floor's (issue 12: a goal the emulator makes unreachable is stated as a same-run ratio). The floor is the
 * faster of the runs given.
 */
function reportStorm(
  result: Result,
  storm: Storm,
  ledger: LedgerResult,
  fields: [string, string][],
  floors: RawFloor[],
): void {
  const summary = latencyFields(result, storm.wallMs, storm.latencies, [
    ['credits', String(ledger.credits)],
    ['dupAcks', String(storm.tally.ack - ledger.credits)],
    ...fields,
  ]);
  for (const raw of floors) {
    if (raw.credits !== raw.orders)
      result.failures.push(`raw floor: ${raw.credits} credits for ${raw.orders} orders`);
  }
  const floor = Math.min(...floors.map((raw) => raw.summary.p99));
  result.fields.push(
    [
      'raw',
      floors
        .map((raw) => `p50=${ms(raw.summary.p50)}ms,p99=${ms(raw.summary.p99)}ms,over3s=${raw.overBudget}`)
        .join(' | '),
    ],
    ['p99/raw', (summary.p99 / floor).toFixed(2)],
  );
  result.targets.push(
    { text: 'wall ≤ 30 s', ok: storm.wallMs <= 30_000 },
    floor <= 1500
      ? { text: 'p99 ≤ 1.5 s', ok: summary.p99 <= 1500 }
      : {
          text: `p99 ≤ 1.5 s, or ≤ ${FLOOR_FACTOR} × the raw floor's ${ms(floor)}ms (the emulator alone misses 1.5 s here)`,
          ok: summary.p99 <= 1500 || summary.p99 <= FLOOR_FACTOR * floor,
        },
  );
  result.notes.push(
    'raw = the same storm through only the DynamoDB calls a notify must make (GetItem; TransactWriteItems when PENDING), SDK defaults, same emulator, 128 in flight, on tables of its own',
  );
}

export async function g1(ctx: Ctx): Promise<Result> {
  const result = newResult('G1');
  const random = seededRandom(ctx.seed * 101 + 1);
  const orderCount = count(ctx, 100);
  const duplicates = 50;
  // DynamoDB Local's JVM compiles its hot paths during the first storm it serves (a cold floor's p99 is 2–4 s
  // here, a warm one's 0.5–0.7 s): one untimed storm first, so the app's storm and both floors meet a warm
  // emulator, as they would meet DynamoDB itself.
  const warmup = await rawFloor(ctx, 20, orderCount, duplicates, random);
  // The raw floor just before and just after the app's storm (the faster one counts).
  const before = await rawFloor(ctx, 21, orderCount, duplicates, random);
  const population = await populate(ctx, 'g1', 1, { orders: orderCount, paid: true }, random);
  const deliveries = shuffle(stormDeliveries(ctx, population.orders, duplicates), random);
  ctx.counter.reset();
  const storm = await runLanes(ctx, [{ deliveries, concurrency: 128 }], result);
  const callLatency = summarize(ctx.counter.durations);
  const calls = `get=${ctx.counter.get('Get')},tx=${ctx.counter.get('TransactWrite')},sdkRetried=${ctx.counter.sdkRetried},callP50=${ms(callLatency.p50)}ms,callP99=${ms(callLatency.p99)}ms`;
  const { ledger, fields } = await settleStorm(ctx, result, population, storm, random, {
    zero5xxTarget: true,
  });
  const after = await rawFloor(ctx, 22, orderCount, duplicates, random);
  reportStorm(result, storm, ledger, [...fields, ['ddb', calls]], [before, after]);
  result.fields.push(['warmup', `p99=${ms(warmup.summary.p99)}ms (untimed)`]);
  if (warmup.credits !== warmup.orders) {
    result.failures.push(`warm-up storm: ${warmup.credits} credits for ${warmup.orders} orders`);
  }
  result.notes.push(
    `${orderCount} orders (${population.users.length} users) × ${duplicates} v2 notifies (MD5/HMAC alternating), shuffled, 128 in flight, one process`,
  );
  return result;
}

/** G1 again, every order's duplicates split across two forked processes (separate cold containers). */
export async function g1TwoProcesses(ctx: Ctx): Promise<Result> {
  const result = newResult('G1x2');
  const random = seededRandom(ctx.seed * 101 + 2);
  const orderCount = count(ctx, 100);
  const duplicates = 50;
  const floor = await rawFloor(ctx, 23, orderCount, duplicates, random);
  const population = await populate(ctx, 'g1x2', 11, { orders: orderCount, paid: true }, random);
  // One deployment has one WECHAT_PAY_VERSION, so a v3 notify needs a process configured for v3.
  const versions: ('v2' | 'v3')[] = ctx.v3 ? ['v2', 'v3'] : ['v2', 'v2'];
  const workers = versions.map((version) => forkWorker(version));
  try {
    await Promise.all(workers.map((worker) => worker.ready));
    // Duplicate d of every order goes to worker d % 2, so each order races across the two processes.
    const lanes: Lane[] = workers.map((worker) => ({ deliveries: [], concurrency: 64, worker }));
    for (const order of population.orders) {
      for (let d = 0; d < duplicates; d++) {
        const lane = lanes[d % 2] as Lane;
        lane.deliveries.push(
          lane.worker?.version === 'v3' && ctx.v3
            ? v3Delivery(ctx.v3, order)
            : v2Delivery(ctx.app, order, d % 4 < 2 ? 'MD5' : 'HMAC-SHA256'),
        );
      }
    }
    for (const lane of lanes) shuffle(lane.deliveries, random);
    const storm = await runLanes(ctx, lanes, result);
    const { ledger, fields } = await settleStorm(ctx, result, population, storm, random, {
      zero5xxTarget: true,
    });
    reportStorm(result, storm, ledger, [...fields, viaField(ledger)], [floor]);
    result.notes.push(
      `2 forked processes, 64 in flight each (${storm.reports
        .map(
          (r) =>
            `${r.version} pid ${r.pid}: ${(r.wallMs / 1000).toFixed(1)}s tx=${r.ddb.TransactWriteItemsCommand ?? 0}`,
        )
        .join('; ')}); every order's ${duplicates} notifies split across both processes` +
        (ctx.v3 ? ' and across v2/v3' : ' (both v2: v3 unavailable)'),
    );
  } finally {
    for (const worker of workers) worker.stop();
  }
  return result;
}
