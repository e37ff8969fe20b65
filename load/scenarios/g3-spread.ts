/**
 * G3 spread: 1 000 orders × 5 duplicates across 100 users, 32 in flight.
 */
import {
  type Ctx,
  checkLedger,
  count,
  latencyFields,
  newResult,
  populate,
  type Result,
  redeliver,
  runLanes,
  stormDeliveries,
  stormFields,
  usersFor,
} from '#load/harness';
import { ms, seededRandom, shuffle, summarize } from '#load/util';

export async function g3(ctx: Ctx): Promise<Result> {
  const result = newResult('G3');
  const random = seededRandom(ctx.seed * 101 + 4);
  const orderCount = count(ctx, 1000);
  const duplicates = 5;
  const population = await populate(
    ctx,
    'g3',
    3,
    { users: usersFor(orderCount), orders: orderCount },
    random,
  );
  for (const order of population.orders) order.paid = true;
  const deliveries = shuffle(stormDeliveries(ctx, population.orders, duplicates), random);
  const storm = await runLanes(ctx, [{ deliveries, concurrency: 32 }], result);
  const redelivery = await redeliver(ctx, storm.refused, result);
  const ledger = await checkLedger(ctx, result, population, random);
  if (ledger.credits !== orderCount)
    result.failures.push(`${ledger.credits} credits, expected ${orderCount}`);
  const extra = stormFields(result, storm, redelivery, { zero5xxTarget: false });
  const summary = latencyFields(result, storm.wallMs, storm.latencies, [
    ['credits', String(ledger.credits)],
    ...extra,
    ['p95', `${ms(summarize(storm.latencies).p95)}ms`],
  ]);
  result.targets.push({ text: 'p99 ≤ 500 ms', ok: summary.p99 <= 500 });
  result.notes.push(
    `${orderCount} orders × ${duplicates} across ${population.users.length} users, shuffled, 32 in flight`,
  );
  return result;
}
