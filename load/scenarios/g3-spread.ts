/**
 * G3 spread: 1 000 orders × 5 duplicates across 100 users, 32 in flight.
 */
import {
  type Ctx,
  count,
  latencyFields,
  newResult,
  populate,
  type Result,
  runLanes,
  settleStorm,
  stormDeliveries,
} from '#load/harness';
import { ms, seededRandom, shuffle, summarize } from '#load/util';

export async function g3(ctx: Ctx): Promise<Result> {
  const result = newResult('G3');
  const random = seededRandom(ctx.seed * 101 + 4);
  const orderCount = count(ctx, 1000);
  const duplicates = 5;
  const population = await populate(ctx, 'g3', 3, { orders: orderCount, paid: true }, random);
  const deliveries = shuffle(stormDeliveries(ctx, population.orders, duplicates), random);
  const storm = await runLanes(ctx, [{ deliveries, concurrency: 32 }], result);
  const { ledger, fields } = await settleStorm(ctx, result, population, storm, random, {
    zero5xxTarget: false,
  });
  const summary = latencyFields(result, storm.wallMs, storm.latencies, [
    ['credits', String(ledger.credits)],
    ...fields,
    ['p95', `${ms(summarize(storm.latencies).p95)}ms`],
  ]);
  result.targets.push({ text: 'p99 ≤ 500 ms', ok: summary.p99 <= 500 });
  result.notes.push(
    `${orderCount} orders × ${duplicates} across ${population.users.length} users, shuffled, 32 in flight`,
  );
  return result;
}
