/**
 * The load harness shared by the scenarios (research/reliability.md §4.2): the run context and result shape,
 * seeding (users signed in through the real handler, PENDING orders through the repository), storms of
 * genuine notifies in-process or in forked workers, WeChat-style redelivery and the ledger check.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import type { V3Keys } from '#local/fixtures/v3';
import {
  type App,
  type CallCounter,
  type Delivery,
  deliver,
  type Outcome,
  type PaidFacts,
  type Plan,
  pendingOrder,
  resend,
  type SignedIn,
  signInThroughHandler,
  type Tables,
  Tally,
  transactionIdFor,
  useFreshTables,
  v2Delivery,
} from './app';
import type { ExpectedOrder, ExpectedUser, Ledger, LedgerResult } from './ledger';
import { concatLatencies, ms, randomInt, runPool, sleep, summarize } from './util';
import type { WorkerDone } from './worker';
import type { WorkerHandle } from './workers';

export type Scale = 'small' | 'full';

export interface Ctx {
  app: App;
  counter: CallCounter;
  ledger: Ledger;
  endpoint: string;
  sandboxUrl: string;
  scale: Scale;
  seed: number;
  /** Set when WECHAT_PAY_VERSION=v3 works (checked at start-up); v3 notifies then join G1/G5/G6/G7. */
  v3?: V3Keys;
}

export interface Target {
  text: string;
  ok: boolean;
}

export interface Result {
  id: string;
  skipped?: string;
  fields: [string, string][];
  /** Invariant and correctness failures: always fail the run. */
  failures: string[];
  /** Time/latency targets: enforced at --scale full only. */
  targets: Target[];
  notes: string[];
}

export function newResult(id: string): Result {
  return { id, fields: [], failures: [], targets: [], notes: [] };
}

/** full count, or ≈ 1/10 of it at small scale (at least `min`). */
export function count(ctx: Ctx, full: number, min = 1): number {
  return ctx.scale === 'full' ? full : Math.max(min, Math.round(full / 10));
}

export function latencyFields(
  result: Result,
  wallMs: number,
  latencies: ArrayLike<number>,
  extra: [string, string][] = [],
) {
  const summary = summarize(latencies);
  result.fields.push(
    ['wall', `${(wallMs / 1000).toFixed(2)}s`],
    ['p50', `${ms(summary.p50)}ms`],
    ['p99', `${ms(summary.p99)}ms`],
    ['rps', (summary.count / (wallMs / 1000)).toFixed(0)],
    ['requests', String(summary.count)],
    ...extra,
  );
  return summary;
}

// ---------------------------------------------------------------------------------------------------------
// Population: users signed in through the real handler, PENDING orders through the repository.

export interface Population {
  tables: Tables;
  users: (SignedIn & ExpectedUser)[];
  orders: (PaidFacts & ExpectedOrder & { plan: Plan })[];
}

/** A fixed future membership end with day-of-month 1–28, so month arithmetic is exact in any order. */
export function futureStart(random: () => number, day?: number): string {
  const year = new Date().getUTCFullYear() + 5;
  return new Date(
    Date.UTC(
      year,
      randomInt(random, 0, 11),
      day ?? randomInt(random, 1, 28),
      randomInt(random, 0, 23),
      randomInt(random, 0, 59),
      randomInt(random, 0, 59),
      randomInt(random, 0, 999),
    ),
  ).toISOString();
}

export async function signInUsers(
  ctx: Ctx,
  tables: Tables,
  scenarioNo: number,
  userCount: number,
  random: () => number,
  startDay?: number,
): Promise<(SignedIn & ExpectedUser)[]> {
  const users: (SignedIn & ExpectedUser)[] = [];
  await runPool(
    Array.from({ length: userCount }, (_, i) => i),
    16,
    async (i) => {
      const openid = `oLoadG${scenarioNo}s${ctx.seed}u${String(i).padStart(5, '0')}`;
      const { status, signedIn } = await signInThroughHandler(ctx.app, ctx.sandboxUrl, openid);
      if (!signedIn) throw new Error(`seeding: sign-in for ${openid} answered ${status}`);
      users[i] = { ...signedIn, id: signedIn.userId, startVersion: 0 };
    },
  );
  for (const user of users) {
    user.start = futureStart(random, startDay);
    await ctx.ledger.seedMembership(tables.users, user.id, user.start);
  }
  return users;
}

export async function populate(
  ctx: Ctx,
  scenario: string,
  scenarioNo: number,
  options: { users?: number; orders: number; startDay?: number; paid?: boolean },
  random: () => number,
): Promise<Population> {
  const tables = await useFreshTables(ctx.app, ctx.endpoint, scenario);
  const config = await ctx.app.loadConfig();
  const userCount = options.users ?? usersFor(options.orders);
  const users = await signInUsers(ctx, tables, scenarioNo, userCount, random, options.startDay);
  const orders: Population['orders'] = [];
  for (let i = 0; i < options.orders; i++) {
    const user = users[randomInt(random, 0, users.length - 1)] as SignedIn & ExpectedUser;
    const plan = ctx.app.PLANS[randomInt(random, 0, ctx.app.PLANS.length - 1)] as Plan;
    orders.push({
      outTradeNo: `LT${scenarioNo}S${ctx.seed}N${String(i).padStart(6, '0')}`,
      transactionId: transactionIdFor(scenarioNo, ctx.seed, i),
      totalFee: plan.totalFee,
      openid: user.openid,
      userId: user.id,
      planId: plan.id,
      plan,
      paid: options.paid ?? false,
    });
  }
  await runPool(orders, 16, async (order) => {
    const created = await ctx.app.createOrder(config.ordersTable, pendingOrder({ ...order }));
    if (!created) throw new Error(`seeding: order ${order.outTradeNo} exists`);
  });
  return { tables, users, orders };
}

export async function checkLedger(
  ctx: Ctx,
  result: Result,
  population: Pick<Population, 'tables' | 'users'> & { orders: readonly ExpectedOrder[] },
  random: () => number,
) {
  const ledger = await ctx.ledger.check(
    ctx.app,
    population.tables,
    population.orders,
    population.users,
    random,
  );
  result.failures.push(...ledger.failures);
  return ledger;
}

export function mergeWorker(tally: Tally, done: WorkerDone, result: Result) {
  tally.merge(done.tally);
  if (done.error) result.failures.push(`worker ${done.version} (pid ${done.pid}): ${done.error}`);
}

/** A paid order opened through the real POST /wechat/pay, as the harness and the ledger know it. */
export type PaidOrder = PaidFacts & ExpectedOrder & { token: string };

/**
 * Opens `user`'s order for `plan` through the real createPayment handler (prepay on the sandbox), then pays
 * it on the sandbox (`POST /sandbox/pay`); `deliver: false` plays the lost notify (paid at WeChat, nothing
 * delivered until `/sandbox/pay/notify-again`). Throws when either step is refused.
 */
export async function openAndPay(
  ctx: Ctx,
  user: SignedIn & ExpectedUser,
  plan: Plan,
  options: { deliver?: false } = {},
): Promise<PaidOrder> {
  const reply = (await ctx.app.handlers.createPayment(
    ctx.app.httpEvent({ method: 'POST', path: '/wechat/pay', body: { planId: plan.id }, token: user.token }),
    ctx.app.context,
  )) as APIGatewayProxyStructuredResultV2;
  const body = JSON.parse(reply.body ?? '{}') as { data?: { order?: { outTradeNo: string } }; code?: string };
  const outTradeNo = body.data?.order?.outTradeNo;
  if (reply.statusCode !== 200 || !outTradeNo) {
    throw new Error(`seeding: POST /wechat/pay answered ${reply.statusCode} ${body.code ?? ''}`);
  }
  const paid = await fetch(`${ctx.sandboxUrl}/sandbox/pay`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ outTradeNo, ...options }),
  });
  const payment = (await paid.json()) as { transactionId?: string; delivered?: boolean };
  if (!paid.ok || !payment.transactionId) throw new Error(`seeding: /sandbox/pay answered ${paid.status}`);
  if (options.deliver === false && payment.delivered !== false) {
    throw new Error(`seeding: /sandbox/pay delivered the notify of ${outTradeNo} although asked not to`);
  }
  return {
    outTradeNo,
    transactionId: payment.transactionId,
    totalFee: plan.totalFee,
    openid: user.openid,
    userId: user.id,
    planId: plan.id,
    paid: true,
    token: user.token,
  };
}

/**
 * A loopback server standing in for our notify_url: `handle` gets each request's body. Pass `url` as
 * WECHAT_NOTIFY_URL (useFreshTables) so the orders opened then send their notifies there; `close` stops it,
 * restores WECHAT_NOTIFY_URL and drops the cached config.
 */
export async function notifyServer(
  ctx: Ctx,
  handle: (body: string, request: IncomingMessage, response: ServerResponse) => Promise<void> | void,
): Promise<{ url: string; close: () => Promise<void> }> {
  const server = createServer(async (request, response) => {
    const chunks: Buffer[] = [];
    for await (const chunk of request) chunks.push(chunk as Buffer);
    await handle(Buffer.concat(chunks).toString('utf8'), request, response);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const previous = process.env.WECHAT_NOTIFY_URL;
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/wechat/notify`,
    close: async () => {
      await new Promise((resolve) => server.close(resolve));
      server.closeAllConnections();
      if (previous === undefined) delete process.env.WECHAT_NOTIFY_URL;
      else process.env.WECHAT_NOTIFY_URL = previous;
      ctx.app.resetConfigCache();
    },
  };
}

// ---------------------------------------------------------------------------------------------------------
// Storms: lanes of genuine notifies (in this process or in forked workers), then WeChat-style redelivery.

export interface Lane {
  deliveries: Delivery[];
  concurrency: number;
  /** Run in this forked process instead of in-process. */
  worker?: WorkerHandle;
}

export interface Refused {
  delivery: Delivery;
  worker?: WorkerHandle;
}

export interface Storm {
  wallMs: number;
  latencies: Float64Array;
  /** First-delivery outcomes (redeliveries not included). */
  tally: Tally;
  reports: WorkerDone[];
  refused: Refused[];
}

export const CODE_TO_OUTCOME: Outcome[] = ['ack', 'fail', 'error'];

/** Runs all lanes at once; every refused delivery is kept for redelivery. */
export async function runLanes(ctx: Ctx, lanes: Lane[], result: Result): Promise<Storm> {
  const tally = new Tally();
  const refused: Refused[] = [];
  const reports: WorkerDone[] = [];
  const started = performance.now();
  const parts = await Promise.all(
    lanes.map(async (lane) => {
      if (lane.worker) {
        const report = await lane.worker.run(lane.deliveries, lane.concurrency);
        reports.push(report);
        mergeWorker(tally, report, result);
        report.outcomes.forEach((code, i) => {
          if (CODE_TO_OUTCOME[code] !== 'ack') {
            refused.push({ delivery: lane.deliveries[i] as Delivery, worker: lane.worker });
          }
        });
        return report.latencies;
      }
      return runPool(lane.deliveries, lane.concurrency, async (delivery) => {
        const reply = await deliver(ctx.app, delivery);
        tally.add(reply);
        if (reply.outcome !== 'ack') refused.push({ delivery });
      });
    }),
  );
  return { wallMs: performance.now() - started, latencies: concatLatencies(parts), tally, reports, refused };
}

const REDELIVERY_ROUNDS = 5;

/**
 * WeChat re-sends every notify that was not acknowledged (15 s, 15 s, 30 s, 3 min, …; compressed here to
 * 0.1–0.5 s): each refused delivery is re-sent freshly signed, v2 in this process, v3 through a v3 worker,
 * for up to 5 rounds. A genuine notify still refused after that is a lost payment (INV-1).
 */
export async function redeliver(
  ctx: Ctx,
  refused: Refused[],
  result: Result,
): Promise<{ resent: number; rounds: number }> {
  let pending = refused;
  let resent = 0;
  let rounds = 0;
  while (pending.length > 0 && rounds < REDELIVERY_ROUNDS) {
    rounds++;
    await sleep(100 * rounds);
    resent += pending.length;
    const next: Refused[] = [];
    const local = pending.filter((p) => p.delivery.version === 'v2');
    const remote = pending.filter((p) => p.delivery.version === 'v3');
    await runPool(local, 32, async (item) => {
      const reply = await deliver(ctx.app, resend(ctx.app, ctx.v3, item.delivery));
      if (reply.outcome !== 'ack') next.push(item);
    });
    const worker = remote.find((p) => p.worker)?.worker;
    if (remote.length > 0) {
      if (!worker) throw new Error('v3 redelivery needs a v3 worker');
      const fresh = remote.map((item) => resend(ctx.app, ctx.v3, item.delivery));
      const report = await worker.run(fresh, 32);
      report.outcomes.forEach((code, i) => {
        if (CODE_TO_OUTCOME[code] !== 'ack') next.push(remote[i] as Refused);
      });
    }
    pending = next;
  }
  if (pending.length > 0) {
    result.failures.push(
      `INV-1 ${pending.length} genuine notifies still refused after ${REDELIVERY_ROUNDS} redeliveries (${[...new Set(pending.map((p) => p.delivery.outTradeNo))].slice(0, 5).join(', ')}…)`,
    );
  }
  return { resent, rounds };
}

/** The reply fields and criteria every genuine-notify storm shares. */
export function stormFields(
  result: Result,
  storm: Storm,
  redelivery: { resent: number; rounds: number },
  options: { zero5xxTarget: boolean },
): [string, string][] {
  const { tally } = storm;
  if (tally.fail > 0)
    result.failures.push(`${tally.fail} genuine notifies were refused: ${tally.reasonsText()}`);
  if (options.zero5xxTarget) result.targets.push({ text: '0 5xx', ok: tally.error === 0 });
  if (tally.error > 0) {
    result.notes.push(
      `5xx: ${tally.reasonsText()} (the app gave up; WeChat re-sends them: ${redelivery.resent} re-sent in ${redelivery.rounds} round(s))`,
    );
  }
  return [
    ['5xx', String(tally.error)],
    ['resent', String(redelivery.resent)],
  ];
}

export function stormDeliveries(ctx: Ctx, orders: Population['orders'], duplicates: number): Delivery[] {
  const deliveries: Delivery[] = [];
  for (const order of orders) {
    for (let d = 0; d < duplicates; d++) {
      deliveries.push(v2Delivery(ctx.app, order, d % 2 === 0 ? 'MD5' : 'HMAC-SHA256'));
    }
  }
  return deliveries;
}

export function usersFor(orderCount: number): number {
  return Math.max(1, Math.round(orderCount / 10));
}

/**
 * The end of a genuine-notify storm: WeChat-style redelivery of what was refused, the ledger check, every
 * order credited exactly once; returns the ledger and the reply fields every storm reports.
 */
export async function settleStorm(
  ctx: Ctx,
  result: Result,
  population: Parameters<typeof checkLedger>[2],
  storm: Storm,
  random: () => number,
  options: { zero5xxTarget: boolean },
): Promise<{ ledger: LedgerResult; fields: [string, string][] }> {
  const redelivery = await redeliver(ctx, storm.refused, result);
  const ledger = await checkLedger(ctx, result, population, random);
  const expected = population.orders.length;
  if (ledger.credits !== expected) result.failures.push(`${ledger.credits} credits, expected ${expected}`);
  return { ledger, fields: stormFields(result, storm, redelivery, options) };
}

/** `via=notify-v2:3,notify-v3:7`: which channel settled the PAID orders. */
export function viaField(ledger: LedgerResult): [string, string] {
  const text = Object.entries(ledger.paidVia)
    .map(([via, n]) => `${via}:${n}`)
    .join(',');
  return ['via', text];
}
