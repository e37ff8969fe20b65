/**
 * G2 hot user: one user's 200 orders × 10 duplicates, 64 in flight; the membership end must be exact.
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
import type { ExpectedUser } from '#load/ledger';
import { seededRandom, shuffle } from '#load/util';

export async function g2(ctx: Ctx): Promise<Result> {
  const result = newResult('G2');
  const random = seededRandom(ctx.seed * 101 + 3);
  const orderCount = count(ctx, 200);
  const duplicates = 10;
  // Start on the 15th: calendar-month addition is then exact and order-independent.
  const population = await populate(
    ctx,
    'g2',
    2,
    { users: 1, orders: orderCount, startDay: 15, paid: true },
    random,
  );
  const deliveries = shuffle(stormDeliveries(ctx, population.orders, duplicates), random);
  ctx.counter.reset();
  const storm = await runLanes(ctx, [{ deliveries, concurrency: 64 }], result);
  const transactions = ctx.counter.get('TransactWrite');
  const { ledger, fields } = await settleStorm(ctx, result, population, storm, random, {
    zero5xxTarget: false,
  });
  const user = population.users[0] as ExpectedUser;
  const days = population.orders.reduce((sum, order) => sum + order.plan.days, 0);
  const expectedEnd = new Date(new Date(user.start as string).getTime() + days * 86_400_000).toISOString();
  // The users table also holds the openid link item; read the user's own.
  const stored = (await ctx.ledger.scan(population.tables.users)).find((item) => item.id === user.id);
  if (stored?.membershipExpiredAt !== expectedEnd) {
    result.failures.push(
      `INV-2 membership ends ${String(stored?.membershipExpiredAt)}, expected ${user.start} + ${days} days = ${expectedEnd}`,
    );
  }
  latencyFields(result, storm.wallMs, storm.latencies, [
    ['credits', String(ledger.credits)],
    ...fields,
    ['days', String(days)],
    ['tx', String(transactions)],
    ['userRetries', String(transactions - ledger.credits)],
  ]);
  result.notes.push(
    `1 user × ${orderCount} orders × ${duplicates}, 64 in flight; membership ${user.start} + ${days} days = ${expectedEnd} (exact); ` +
      'userRetries = cancelled transactions (user version moved or order already paid), re-read and retried',
  );
  return result;
}
