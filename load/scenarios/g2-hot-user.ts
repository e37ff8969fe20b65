/**
 * G2 hot user: one user's 200 orders × 10 duplicates, 64 in flight; the membership end must be exact. Then refunds on the
 * same user (a third of every order, the rest of every other one), each reported SUCCESS 10 times: INV-2 again.
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
import { ms, runPool, seededRandom, shuffle, summarize } from '#load/util';

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
  const stored = ctx.app.toUserRecord(
    (await ctx.ledger.scan(population.tables.users)).find((item) => item.id === user.id),
  );
  if (stored?.membershipExpiredAt !== expectedEnd) {
    result.failures.push(
      `INV-2 membership ends ${String(stored?.membershipExpiredAt)}, expected ${user.start} + ${days} days = ${expectedEnd}`,
    );
  }
  const refunds = await refundStorm(ctx, result, population.orders, user, days, random);
  latencyFields(result, storm.wallMs, storm.latencies, [
    ['credits', String(ledger.credits)],
    ...fields,
    ['days', String(days)],
    ['tx', String(transactions)],
    ['userRetries', String(transactions - ledger.credits)],
    ...refunds,
  ]);
  result.notes.push(
    `1 user × ${orderCount} orders × ${duplicates}, 64 in flight; membership ${user.start} + ${days} days = ${expectedEnd} (exact); ` +
      'userRetries = cancelled transactions (user version moved or order already paid), re-read and retried',
  );
  return result;
}

/**
 * Then refunds on the same hot user (issue 11): every order gets a refund of a third of its total_fee and every
 * other order a second one for the rest (a full refund), each reserved as POST /admin/refunds does and reported
 * SUCCESS 10 times (notify and query duplicates), shuffled, 64 in flight. INV-2 with refunds: the membership ends
 * at start + Σ(plan days − ⌊plan days × refunded ÷ total⌋), each refund applied once, REFUNDED exactly when full.
 */
async function refundStorm(
  ctx: Ctx,
  result: Result,
  orders: readonly { outTradeNo: string; totalFee: number; plan: { days: number } }[],
  user: ExpectedUser,
  creditedDays: number,
  random: () => number,
): Promise<[string, string][]> {
  const { app } = ctx;
  const config = await app.loadConfig();
  const now = new Date();
  const planned = orders.flatMap((order, index) => {
    const third = Math.floor(order.totalFee / 3);
    const amounts = index % 2 === 0 ? [third, order.totalFee - third] : [third];
    return amounts.map((amount) => ({ order, amount, outRefundNo: app.newOutRefundNo(now) }));
  });
  for (const refund of planned) {
    const reserved = await app.reserveRefund(config.ordersTable, {
      outTradeNo: app.refundKey(refund.outRefundNo),
      kind: 'refund',
      outRefundNo: refund.outRefundNo,
      refundOf: refund.order.outTradeNo,
      amount: refund.amount,
      totalFee: refund.order.totalFee,
      status: 'PROCESSING',
      payVersion: 'v2',
      createdAt: now.toISOString(),
    });
    if (reserved.kind !== 'reserved')
      result.failures.push(`refund ${refund.outRefundNo} not reserved: ${reserved.kind}`);
  }
  const reports = shuffle(
    planned.flatMap((refund) =>
      Array.from({ length: 10 }, () => ({
        outRefundNo: refund.outRefundNo,
        outTradeNo: refund.order.outTradeNo,
        status: 'SUCCESS' as const,
        refundId: `50${refund.outRefundNo.slice(1)}`,
        refundFee: refund.amount,
        successAt: now.toISOString(),
        via: 'notify-v2' as const,
      })),
    ),
    random,
  );
  const outcomes = new Map<string, number>();
  const failed: typeof reports = [];
  const started = performance.now();
  const latencies = await runPool(reports, 64, async (report) => {
    try {
      const outcome = await app.applyRefundReport(config, report);
      outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1);
    } catch {
      failed.push(report); // WeChat would notify again
    }
  });
  for (const report of failed) {
    const outcome = await app.applyRefundReport(config, report);
    outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1);
  }
  const wallMs = performance.now() - started;
  if (outcomes.get('applied') !== planned.length) {
    result.failures.push(
      `refunds applied ${outcomes.get('applied') ?? 0} times, expected ${planned.length} (once each)`,
    );
  }
  const exactRevoked = orders.reduce((sum, order, index) => {
    const refunded = index % 2 === 0 ? order.totalFee : Math.floor(order.totalFee / 3);
    return sum + Math.floor((order.plan.days * refunded) / order.totalFee);
  }, 0);
  const expectedEnd = new Date(
    new Date(user.start as string).getTime() + (creditedDays - exactRevoked) * 86_400_000,
  ).toISOString();
  const items = await ctx.ledger.scan(config.ordersTable);
  const stored = ctx.app.toUserRecord(
    (await ctx.ledger.scan(config.usersTable)).find((item) => item.id === user.id),
  );
  if (stored?.membershipExpiredAt !== expectedEnd) {
    result.failures.push(
      `INV-2 with refunds: membership ends ${String(stored?.membershipExpiredAt)}, expected ${expectedEnd} (${creditedDays} credited − ${exactRevoked} revoked days)`,
    );
  }
  orders.forEach((order, index) => {
    const item = items.find((candidate) => candidate.outTradeNo === order.outTradeNo);
    const refunded = index % 2 === 0 ? order.totalFee : Math.floor(order.totalFee / 3);
    const status = index % 2 === 0 ? 'REFUNDED' : 'PAID';
    if (item?.refundedFee !== refunded || item?.status !== status) {
      result.failures.push(
        `order ${order.outTradeNo}: refundedFee ${String(item?.refundedFee)} ${String(item?.status)}, expected ${refunded} ${status}`,
      );
    }
  });
  return [
    ['refunds', String(planned.length)],
    ['refundReports', String(reports.length)],
    ['refundRedelivered', String(failed.length)],
    ['refundWall', `${Math.round(wallMs)}ms`],
    ['refundP99', `${ms(summarize(latencies).p99)}ms`],
    ['revokedDays', String(exactRevoked)],
  ];
}
