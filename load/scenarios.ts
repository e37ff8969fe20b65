/**
 * The load goals of research/reliability.md §4.2 (G1–G7), each against its own fresh tables, driving the
 * real handlers in-process (and, for the cross-process variants, in forked workers).
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import type { APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
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
  sandboxCode,
  signInThroughHandler,
  type Tables,
  Tally,
  transactionIdFor,
  useFreshTables,
  type V3Keys,
  v2Delivery,
  v3Delivery,
} from './app';
import type { ExpectedOrder, ExpectedUser, Ledger } from './ledger';
import {
  collectGarbage,
  concatLatencies,
  MB,
  ms,
  randomInt,
  runPool,
  seededRandom,
  shuffle,
  sleep,
  summarize,
} from './util';
import type { WorkerDone } from './worker';
import { forkWorker, type WorkerHandle } from './workers';

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

function newResult(id: string): Result {
  return { id, fields: [], failures: [], targets: [], notes: [] };
}

/** full count, or ≈ 1/10 of it at small scale (at least `min`). */
function count(ctx: Ctx, full: number, min = 1): number {
  return ctx.scale === 'full' ? full : Math.max(min, Math.round(full / 10));
}

function latencyFields(
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

interface Population {
  tables: Tables;
  users: (SignedIn & ExpectedUser)[];
  orders: (PaidFacts & ExpectedOrder & { plan: Plan })[];
}

/** A fixed future membership end with day-of-month 1–28, so month arithmetic is exact in any order. */
function futureStart(random: () => number, day?: number): string {
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

async function signInUsers(
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

async function populate(
  ctx: Ctx,
  scenario: string,
  scenarioNo: number,
  options: { users: number; orders: number; startDay?: number },
  random: () => number,
): Promise<Population> {
  const tables = await useFreshTables(ctx.app, ctx.endpoint, scenario);
  const config = await ctx.app.loadConfig();
  const users = await signInUsers(ctx, tables, scenarioNo, options.users, random, options.startDay);
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
      paid: false,
    });
  }
  await runPool(orders, 16, async (order) => {
    const created = await ctx.app.createOrder(config.ordersTable, pendingOrder({ ...order }));
    if (!created) throw new Error(`seeding: order ${order.outTradeNo} exists`);
  });
  return { tables, users, orders };
}

async function checkLedger(ctx: Ctx, result: Result, population: Population, random: () => number) {
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

function mergeWorker(tally: Tally, done: WorkerDone, result: Result) {
  tally.merge(done.tally);
  if (done.error) result.failures.push(`worker ${done.version} (pid ${done.pid}): ${done.error}`);
}

// ---------------------------------------------------------------------------------------------------------
// Storms: lanes of genuine notifies (in this process or in forked workers), then WeChat-style redelivery.

interface Lane {
  deliveries: Delivery[];
  concurrency: number;
  /** Run in this forked process instead of in-process. */
  worker?: WorkerHandle;
}

interface Refused {
  delivery: Delivery;
  worker?: WorkerHandle;
}

interface Storm {
  wallMs: number;
  latencies: Float64Array;
  /** First-delivery outcomes (redeliveries not included). */
  tally: Tally;
  reports: WorkerDone[];
  refused: Refused[];
}

const CODE_TO_OUTCOME: Outcome[] = ['ack', 'fail', 'error'];

/** Runs all lanes at once; every refused delivery is kept for redelivery. */
async function runLanes(ctx: Ctx, lanes: Lane[], result: Result): Promise<Storm> {
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
async function redeliver(
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
function stormFields(
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

// ---------------------------------------------------------------------------------------------------------
// G1 duplicate storm

function stormDeliveries(ctx: Ctx, orders: Population['orders'], duplicates: number): Delivery[] {
  const deliveries: Delivery[] = [];
  for (const order of orders) {
    for (let d = 0; d < duplicates; d++) {
      deliveries.push(v2Delivery(ctx.app, order, d % 2 === 0 ? 'MD5' : 'HMAC-SHA256'));
    }
  }
  return deliveries;
}

function usersFor(orderCount: number): number {
  return Math.max(1, Math.round(orderCount / 10));
}

export async function g1(ctx: Ctx): Promise<Result> {
  const result = newResult('G1');
  const random = seededRandom(ctx.seed * 101 + 1);
  const orderCount = count(ctx, 100);
  const duplicates = 50;
  const population = await populate(
    ctx,
    'g1',
    1,
    { users: usersFor(orderCount), orders: orderCount },
    random,
  );
  for (const order of population.orders) order.paid = true;
  const deliveries = shuffle(stormDeliveries(ctx, population.orders, duplicates), random);
  ctx.counter.reset();
  const storm = await runLanes(ctx, [{ deliveries, concurrency: 128 }], result);
  const callLatency = summarize(ctx.counter.durations);
  const calls = `get=${ctx.counter.get('Get')},tx=${ctx.counter.get('TransactWrite')},sdkRetried=${ctx.counter.sdkRetried},callP50=${ms(callLatency.p50)}ms,callP99=${ms(callLatency.p99)}ms`;
  const redelivery = await redeliver(ctx, storm.refused, result);
  const ledger = await checkLedger(ctx, result, population, random);
  if (ledger.credits !== orderCount)
    result.failures.push(`${ledger.credits} credits, expected ${orderCount}`);
  const extra = stormFields(result, storm, redelivery, { zero5xxTarget: true });
  const summary = latencyFields(result, storm.wallMs, storm.latencies, [
    ['credits', String(ledger.credits)],
    ['dupAcks', String(storm.tally.ack - ledger.credits)],
    ...extra,
    ['ddb', calls],
  ]);
  result.targets.push(
    { text: 'wall ≤ 30 s', ok: storm.wallMs <= 30_000 },
    { text: 'p99 ≤ 1.5 s', ok: summary.p99 <= 1500 },
  );
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
  const population = await populate(
    ctx,
    'g1x2',
    11,
    { users: usersFor(orderCount), orders: orderCount },
    random,
  );
  for (const order of population.orders) order.paid = true;
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
            ? v3Delivery(ctx.app, ctx.v3, order)
            : v2Delivery(ctx.app, order, d % 4 < 2 ? 'MD5' : 'HMAC-SHA256'),
        );
      }
    }
    for (const lane of lanes) shuffle(lane.deliveries, random);
    const storm = await runLanes(ctx, lanes, result);
    const redelivery = await redeliver(ctx, storm.refused, result);
    const ledger = await checkLedger(ctx, result, population, random);
    if (ledger.credits !== orderCount)
      result.failures.push(`${ledger.credits} credits, expected ${orderCount}`);
    const extra = stormFields(result, storm, redelivery, { zero5xxTarget: true });
    const summary = latencyFields(result, storm.wallMs, storm.latencies, [
      ['credits', String(ledger.credits)],
      ['dupAcks', String(storm.tally.ack - ledger.credits)],
      ...extra,
      [
        'via',
        Object.entries(ledger.paidVia)
          .map(([via, n]) => `${via}:${n}`)
          .join(','),
      ],
    ]);
    result.targets.push(
      { text: 'wall ≤ 30 s', ok: storm.wallMs <= 30_000 },
      { text: 'p99 ≤ 1.5 s', ok: summary.p99 <= 1500 },
    );
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

// ---------------------------------------------------------------------------------------------------------
// G2 hot user

export async function g2(ctx: Ctx): Promise<Result> {
  const result = newResult('G2');
  const random = seededRandom(ctx.seed * 101 + 3);
  const orderCount = count(ctx, 200);
  const duplicates = 10;
  // Start on the 15th: calendar-month addition is then exact and order-independent.
  const population = await populate(ctx, 'g2', 2, { users: 1, orders: orderCount, startDay: 15 }, random);
  for (const order of population.orders) order.paid = true;
  const deliveries = shuffle(stormDeliveries(ctx, population.orders, duplicates), random);
  ctx.counter.reset();
  const storm = await runLanes(ctx, [{ deliveries, concurrency: 64 }], result);
  const transactions = ctx.counter.get('TransactWrite');
  const redelivery = await redeliver(ctx, storm.refused, result);
  const ledger = await checkLedger(ctx, result, population, random);
  const user = population.users[0] as ExpectedUser;
  const days = population.orders.reduce((sum, order) => sum + order.plan.days, 0);
  const expectedEnd = new Date(new Date(user.start as string).getTime() + days * 86_400_000).toISOString();
  const stored = (await ctx.ledger.scan(population.tables.users))[0];
  if (stored?.membershipExpiredAt !== expectedEnd) {
    result.failures.push(
      `INV-2 membership ends ${String(stored?.membershipExpiredAt)}, expected ${user.start} + ${days} days = ${expectedEnd}`,
    );
  }
  if (ledger.credits !== orderCount)
    result.failures.push(`${ledger.credits} credits, expected ${orderCount}`);
  const extra = stormFields(result, storm, redelivery, { zero5xxTarget: false });
  latencyFields(result, storm.wallMs, storm.latencies, [
    ['credits', String(ledger.credits)],
    ...extra,
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

// ---------------------------------------------------------------------------------------------------------
// G3 spread

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

// ---------------------------------------------------------------------------------------------------------
// G4 sign-in race

function tokenSubject(token: string): string | undefined {
  try {
    const payload = JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString('utf8')) as {
      sub?: unknown;
    };
    return typeof payload.sub === 'string' ? payload.sub : undefined;
  } catch {
    return undefined;
  }
}

export async function g4(ctx: Ctx): Promise<Result> {
  const result = newResult('G4');
  const random = seededRandom(ctx.seed * 101 + 5);
  const openidCount = count(ctx, 50);
  const perOpenid = 20;
  const tables = await useFreshTables(ctx.app, ctx.endpoint, 'g4');
  const openids = Array.from(
    { length: openidCount },
    (_, i) => `oLoadG4s${ctx.seed}r${String(i).padStart(4, '0')}`,
  );
  const attempts: { openid: string; code: string }[] = [];
  for (const openid of openids) for (let i = 0; i < perOpenid; i++) attempts.push({ openid, code: '' });
  await runPool(attempts, 32, async (attempt) => {
    attempt.code = await sandboxCode(ctx.sandboxUrl, attempt.openid);
  });
  shuffle(attempts, random);
  const replies: { openid: string; status: number; sub?: string; userId?: string; token?: string }[] = [];
  ctx.counter.reset();
  const started = performance.now();
  // Everything at once: 1 000 first sign-ins racing on 50 new user items.
  const latencies = await runPool(attempts, attempts.length, async ({ openid, code }) => {
    const reply = await signInThroughHandler(ctx.app, ctx.sandboxUrl, openid, code);
    replies.push({
      openid,
      status: reply.status,
      sub: reply.signedIn ? tokenSubject(reply.signedIn.token) : undefined,
      userId: reply.signedIn?.userId,
      token: reply.signedIn?.token,
    });
  });
  const wallMs = performance.now() - started;
  const puts = ctx.counter.get('Put');

  const statuses = new Map<number, number>();
  for (const reply of replies) statuses.set(reply.status, (statuses.get(reply.status) ?? 0) + 1);
  const failed = replies.filter((reply) => reply.status !== 200);
  if (failed.length > 0) {
    result.failures.push(
      `${failed.length} sign-ins failed: ${[...statuses].map(([s, n]) => `${s}×${n}`).join(', ')}`,
    );
  }
  const tokensFor = new Map<string, typeof replies>();
  for (const reply of replies) tokensFor.set(reply.openid, [...(tokensFor.get(reply.openid) ?? []), reply]);
  let mismatched = 0;
  for (const openid of openids) {
    const expected = ctx.app.userIdForOpenid(openid);
    const subs = new Set((tokensFor.get(openid) ?? []).filter((r) => r.status === 200).map((r) => r.sub));
    const ids = new Set((tokensFor.get(openid) ?? []).filter((r) => r.status === 200).map((r) => r.userId));
    if (subs.size !== 1 || !subs.has(expected) || ids.size !== 1 || !ids.has(expected)) {
      mismatched++;
      if (mismatched <= 5)
        result.failures.push(`openid ${openid}: subs ${[...subs].join('|')}, ids ${[...ids].join('|')}`);
    }
  }
  const items = await ctx.ledger.scan(tables.users);
  if (items.length !== openidCount)
    result.failures.push(`${items.length} user items, expected ${openidCount}`);
  const itemOpenids = new Set(items.map((item) => String(item.openid)));
  if (itemOpenids.size !== items.length || openids.some((openid) => !itemOpenids.has(openid))) {
    result.failures.push('user items do not map one-to-one onto the openids');
  }
  // Each token works: /wechat/me resolves it to the same user.
  let meOk = 0;
  for (const openid of openids) {
    const token = tokensFor.get(openid)?.find((r) => r.token)?.token;
    if (!token) continue;
    const me = (await ctx.app.handlers.me(
      ctx.app.httpEvent({ path: '/wechat/me', token }),
      ctx.app.context,
    )) as APIGatewayProxyStructuredResultV2;
    const id = (JSON.parse(me.body ?? '{}') as { data?: { user?: { id?: string } } }).data?.user?.id;
    if (me.statusCode === 200 && id === ctx.app.userIdForOpenid(openid)) meOk++;
  }
  if (meOk !== openidCount) result.failures.push(`/wechat/me resolved ${meOk} of ${openidCount} tokens`);
  latencyFields(result, wallMs, latencies, [
    ['users', String(items.length)],
    ['puts', String(puts)],
    ['mismatchedSubs', String(mismatched)],
  ]);
  result.notes.push(
    `${openidCount} new openids × ${perOpenid} sign-ins all at once (code2Session on the sandbox, conditional PutItem with ALL_OLD)`,
  );
  return result;
}

// ---------------------------------------------------------------------------------------------------------
// G5 cross-channel

async function sandboxHasV2Pay(sandboxUrl: string): Promise<boolean> {
  const response = await fetch(`${sandboxUrl}/pay/orderquery`, {
    method: 'POST',
    headers: { 'content-type': 'text/xml' },
    body: '<xml></xml>',
  });
  const text = await response.text();
  return !(response.status === 404 && text.includes('no sandbox route'));
}

export async function g5(ctx: Ctx): Promise<Result> {
  const result = newResult('G5');
  if (!(await sandboxHasV2Pay(ctx.sandboxUrl))) {
    result.skipped =
      'the sandbox has no v2 /pay/orderquery (nor /pay/unifiedorder, /sandbox/pay) yet, so the order-query channel cannot run; re-run once local/sandbox/pay-v2.ts is registered';
    return result;
  }
  const random = seededRandom(ctx.seed * 101 + 6);
  const orderCount = count(ctx, 100);

  // The sandbox's own delivery of each payment is refused (captured), so the race below is between our
  // v2 notify, the order query behind GET /wechat/orders/{no}, and (when v3 works) a v3 notify.
  const captured = new Map<string, string>();
  const capture = createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const body = Buffer.concat(chunks).toString('utf8');
    const outTradeNo = /<out_trade_no><!\[CDATA\[(.*?)\]\]>/.exec(body)?.[1];
    if (outTradeNo && !captured.has(outTradeNo)) captured.set(outTradeNo, body);
    res
      .writeHead(200, { 'content-type': 'text/xml' })
      .end('<xml><return_code><![CDATA[FAIL]]></return_code></xml>');
  });
  await new Promise<void>((resolve) => capture.listen(0, '127.0.0.1', resolve));
  const notifyUrl = `http://127.0.0.1:${(capture.address() as AddressInfo).port}/wechat/notify`;
  const previousNotifyUrl = process.env.WECHAT_NOTIFY_URL;
  let worker: WorkerHandle | undefined;
  try {
    const tables = await useFreshTables(ctx.app, ctx.endpoint, 'g5', { WECHAT_NOTIFY_URL: notifyUrl });
    // One user per order: createPayment continues a user's open order for the same plan, and every order
    // here must be a distinct payment.
    const users = await signInUsers(ctx, tables, 5, orderCount, random);
    const orders: (PaidFacts & ExpectedOrder & { token: string })[] = [];
    await runPool(
      Array.from({ length: orderCount }, (_, i) => i),
      8,
      async (i) => {
        const user = users[i % users.length] as SignedIn & ExpectedUser;
        const plan = ctx.app.PLANS[randomInt(random, 0, ctx.app.PLANS.length - 1)] as Plan;
        const reply = (await ctx.app.handlers.createPayment(
          ctx.app.httpEvent({
            method: 'POST',
            path: '/wechat/pay',
            body: { planId: plan.id },
            token: user.token,
          }),
          ctx.app.context,
        )) as APIGatewayProxyStructuredResultV2;
        const body = JSON.parse(reply.body ?? '{}') as {
          data?: { order?: { outTradeNo: string } };
          code?: string;
        };
        const outTradeNo = body.data?.order?.outTradeNo;
        if (reply.statusCode !== 200 || !outTradeNo) {
          throw new Error(`seeding: POST /wechat/pay answered ${reply.statusCode} ${body.code ?? ''}`);
        }
        const paid = await fetch(`${ctx.sandboxUrl}/sandbox/pay`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ outTradeNo }),
        });
        const payment = (await paid.json()) as { transactionId?: string };
        if (!paid.ok || !payment.transactionId)
          throw new Error(`seeding: /sandbox/pay answered ${paid.status}`);
        orders[i] = {
          outTradeNo,
          transactionId: payment.transactionId,
          totalFee: plan.totalFee,
          openid: user.openid,
          userId: user.id,
          planId: plan.id,
          paid: true,
          token: user.token,
        };
      },
    );
    const v2Bodies: Delivery[] = orders.map((order) => {
      const body = captured.get(order.outTradeNo);
      return body
        ? {
            version: 'v2',
            outTradeNo: order.outTradeNo,
            headers: { 'content-type': 'text/xml' },
            body,
            paid: order,
          }
        : v2Delivery(ctx.app, order);
    });
    const fromSandbox = v2Bodies.filter((d) => captured.get(d.outTradeNo) === d.body).length;
    worker = ctx.v3 ? forkWorker('v3') : undefined;
    await worker?.ready;
    const v3Keys = ctx.v3;
    const v3Deliveries = v3Keys
      ? shuffle(
          orders.map((order) => v3Delivery(ctx.app, v3Keys, order)),
          random,
        )
      : [];
    const tally = new Tally();
    const refused: Refused[] = [];
    const views = new Map<number, number>();
    let viewedPaid = 0;
    const started = performance.now();
    const v3Run = worker?.run(v3Deliveries, 32);
    const pairs = shuffle(
      orders.map((order, i) => ({ order, v2: v2Bodies[i] as Delivery })),
      random,
    );
    const latencies = await runPool(pairs, 32, async ({ order, v2 }) => {
      const [notified, viewed] = await Promise.all([
        deliver(ctx.app, v2),
        ctx.app.handlers.getOrder(
          ctx.app.httpEvent({
            path: `/wechat/orders/${order.outTradeNo}`,
            pathParameters: { outTradeNo: order.outTradeNo },
            token: order.token,
          }),
          ctx.app.context,
        ) as Promise<APIGatewayProxyStructuredResultV2>,
      ]);
      tally.add(notified);
      if (notified.outcome !== 'ack') refused.push({ delivery: v2 });
      const status = viewed.statusCode ?? 0;
      views.set(status, (views.get(status) ?? 0) + 1);
      const view = JSON.parse(viewed.body ?? '{}') as {
        data?: { order?: { status?: string; transactionId?: string } };
      };
      if (view.data?.order?.status === 'PAID' && view.data.order.transactionId === order.transactionId) {
        viewedPaid++;
      }
    });
    const v3Report = v3Run ? await v3Run : undefined;
    const wallMs = performance.now() - started;
    if (v3Report) {
      mergeWorker(tally, v3Report, result);
      v3Report.outcomes.forEach((code, i) => {
        if (CODE_TO_OUTCOME[code] !== 'ack') refused.push({ delivery: v3Deliveries[i] as Delivery, worker });
      });
    }
    const storm: Storm = { wallMs, latencies, tally, reports: v3Report ? [v3Report] : [], refused };
    const redelivery = await redeliver(ctx, refused, result);
    const ledger = await ctx.ledger.check(ctx.app, tables, orders, users, random);
    result.failures.push(...ledger.failures);
    if (ledger.credits !== orderCount)
      result.failures.push(`${ledger.credits} credits, expected ${orderCount}`);
    // A concurrent view may show PENDING when the notify commits after its read, but it must never fail.
    if ((views.get(200) ?? 0) !== orderCount) {
      result.failures.push(`GET /wechat/orders/{no}: ${[...views].map(([s, n]) => `${s}×${n}`).join(', ')}`);
    }
    const extra = stormFields(result, storm, redelivery, { zero5xxTarget: false });
    latencyFields(result, wallMs, latencies, [
      ['credits', String(ledger.credits)],
      ...extra,
      [
        'via',
        Object.entries(ledger.paidVia)
          .map(([via, n]) => `${via}:${n}`)
          .join(','),
      ],
      ['viewedPaid', String(viewedPaid)],
    ]);
    result.notes.push(
      `${orderCount} orders paid on the sandbox; per order at once: its v2 notify (${fromSandbox} captured from the sandbox's own delivery) + GET /wechat/orders/{no} → orderquery` +
        (v3Report
          ? ' + a v3 notify from a forked v3 process (same transaction_id)'
          : ' (v3 unavailable: no v3 notify)') +
        '; latencies are per pair',
    );
  } finally {
    worker?.stop();
    await new Promise((resolve) => capture.close(resolve));
    capture.closeAllConnections();
    if (previousNotifyUrl === undefined) delete process.env.WECHAT_NOTIFY_URL;
    else process.env.WECHAT_NOTIFY_URL = previousNotifyUrl;
    ctx.app.resetConfigCache();
  }
  return result;
}

// ---------------------------------------------------------------------------------------------------------
// G6 forged flood

const WRONG_V2_KEY = 'WrongKey00000000000000000000000Z';

function randomHex(random: () => number, length: number): string {
  let out = '';
  for (let i = 0; i < length; i++) out += '0123456789ABCDEF'[Math.floor(random() * 16)];
  return out;
}

function forgedV2(ctx: Ctx, targets: PaidFacts[], total: number, random: () => number): Delivery[] {
  const xml = (body: string, outTradeNo: string): Delivery => ({
    version: 'v2',
    outTradeNo,
    headers: { 'content-type': 'text/xml' },
    body,
  });
  const variants: ((target: PaidFacts) => Delivery)[] = [
    // bad sign (right length, wrong value)
    (t) => xml(ctx.app.v2NotifyXml({ ...t, sign: randomHex(random, 32) }), t.outTradeNo),
    // signed with another key (HMAC-SHA256)
    (t) => xml(ctx.app.v2NotifyXml({ ...t, key: WRONG_V2_KEY, signType: 'HMAC-SHA256' }), t.outTradeNo),
    // a correctly signed notify behind a DOCTYPE with an external entity
    (t) =>
      xml(
        `<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>${ctx.app.v2NotifyXml(t)}`,
        t.outTradeNo,
      ),
    // a correctly signed notify cut short
    (t) => {
      const body = ctx.app.v2NotifyXml(t);
      return xml(body.slice(0, Math.floor(body.length * (0.3 + random() * 0.6))), t.outTradeNo);
    },
    // JSON (no v3 headers) sent to the v2 endpoint
    (t) => ({
      version: 'v2',
      outTradeNo: t.outTradeNo,
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ out_trade_no: t.outTradeNo, total_fee: t.totalFee, result_code: 'SUCCESS' }),
    }),
    // unknown order, bad sign
    (t) => {
      const unknown = `LTX${randomHex(random, 20)}`;
      return xml(ctx.app.v2NotifyXml({ ...t, outTradeNo: unknown, sign: randomHex(random, 64) }), unknown);
    },
    // sign missing
    (t) => xml(ctx.app.v2NotifyXml({ ...t, sign: '' }), t.outTradeNo),
  ];
  return Array.from({ length: total }, (_, i) => {
    const target = targets[i % targets.length] as PaidFacts;
    return (variants[i % variants.length] as (t: PaidFacts) => Delivery)(target);
  });
}

function forgedV3(
  ctx: Ctx,
  keys: V3Keys,
  targets: PaidFacts[],
  total: number,
  random: () => number,
): Delivery[] {
  const now = Math.floor(Date.now() / 1000);
  const badSignature = () => Buffer.from(randomHex(random, 512), 'hex').toString('base64');
  // Stale/future by an hour, not by 301 s: a +301 s notify becomes genuinely fresh a second later.
  const variants: ((target: PaidFacts) => Delivery)[] = [
    (t) => v3Delivery(ctx.app, keys, t, { signature: badSignature() }),
    (t) => v3Delivery(ctx.app, keys, t, { timestamp: now - 3600 }),
    (t) => v3Delivery(ctx.app, keys, t, { timestamp: now + 3600 }),
    (t) => v3Delivery(ctx.app, keys, t, { signature: `WECHATPAY/SIGNTEST/${badSignature()}` }),
    (t) => v3Delivery(ctx.app, keys, t, { serial: 'PUB_KEY_ID_0000000000000000000000000000' }),
    (t) => v3Delivery(ctx.app, keys, t, { signingKey: keys.wrongKey }),
    (t) =>
      v3Delivery(ctx.app, keys, t, {
        tamper: (body) => body.replace('"TRANSACTION.SUCCESS"', '"TRANSACTION.SUCCESS" '),
      }),
    (t) => v3Delivery(ctx.app, keys, t, { dropHeader: 'wechatpay-signature' }),
  ];
  // Signing is the expensive part: build a pool of distinct forgeries and rotate through it.
  const pool = Array.from({ length: Math.min(total, 400) }, (_, i) => {
    const target = targets[i % targets.length] as PaidFacts;
    return (variants[i % variants.length] as (t: PaidFacts) => Delivery)(target);
  });
  return Array.from({ length: total }, (_, i) => pool[i % pool.length] as Delivery);
}

export async function g6(ctx: Ctx): Promise<Result> {
  const result = newResult('G6');
  const random = seededRandom(ctx.seed * 101 + 7);
  const total = count(ctx, 10_000);
  const population = await populate(ctx, 'g6', 6, { users: 1, orders: 20 }, random);
  const deliveries = shuffle(forgedV2(ctx, population.orders, total, random), random);
  const tally = new Tally();
  collectGarbage();
  const rssBefore = process.memoryUsage.rss();
  let rssPeak = rssBefore;
  const sampler = setInterval(() => {
    rssPeak = Math.max(rssPeak, process.memoryUsage.rss());
  }, 20);
  ctx.counter.reset();
  const started = performance.now();
  const latencies = await runPool(deliveries, 64, async (delivery) => {
    tally.add(await deliver(ctx.app, delivery));
  });
  const wallMs = performance.now() - started;
  clearInterval(sampler);
  const ddbCalls = ctx.counter.total();
  rssPeak = Math.max(rssPeak, process.memoryUsage.rss());
  collectGarbage();
  const rssAfter = process.memoryUsage.rss();

  if (ddbCalls !== 0)
    result.failures.push(`INV-4 ${ddbCalls} DynamoDB calls: ${JSON.stringify(ctx.counter.snapshot())}`);
  if (tally.ack > 0) result.failures.push(`${tally.ack} forged notifies were acknowledged`);
  if (tally.error > 0) result.failures.push(`${tally.error} forged notifies hit the internal-error path`);
  const growth = (rssPeak - rssBefore) / MB;
  if (growth > 50) result.failures.push(`RSS grew ${growth.toFixed(1)} MB (> 50 MB)`);
  const summary = latencyFields(result, wallMs, latencies, [
    ['ddb', String(ddbCalls)],
    ['rss+', `${growth.toFixed(1)}MB`],
    ['rssAfterGc+', `${((rssAfter - rssBefore) / MB).toFixed(1)}MB`],
  ]);
  result.targets.push({ text: 'p99 ≤ 20 ms', ok: summary.p99 <= 20 });
  result.notes.push(`v2 refusals: ${tally.reasonsText()}`);

  if (ctx.v3) {
    const worker = forkWorker('v3');
    await worker.ready;
    const forged = shuffle(forgedV3(ctx, ctx.v3, population.orders, total, random), random);
    const report = await worker.run(forged, 64);
    worker.stop();
    const v3Tally = new Tally();
    mergeWorker(v3Tally, report, result);
    const v3Calls = Object.values(report.ddb).reduce((a, b) => a + b, 0);
    const v3Growth = (report.rss.peak - report.rss.before) / MB;
    const v3Summary = summarize(report.latencies);
    if (v3Calls !== 0)
      result.failures.push(`INV-4 v3: ${v3Calls} DynamoDB calls: ${JSON.stringify(report.ddb)}`);
    if (v3Tally.ack > 0) result.failures.push(`v3: ${v3Tally.ack} forged notifies were acknowledged`);
    if (v3Tally.error > 0) result.failures.push(`v3: ${v3Tally.error} forged notifies answered 5xx`);
    if (v3Growth > 50) result.failures.push(`v3: RSS grew ${v3Growth.toFixed(1)} MB (> 50 MB)`);
    result.targets.push({ text: 'v3 p99 ≤ 20 ms', ok: v3Summary.p99 <= 20 });
    result.notes.push(
      `v3 (forked v3 process): requests=${v3Summary.count} wall=${(report.wallMs / 1000).toFixed(2)}s p50=${ms(v3Summary.p50)}ms p99=${ms(v3Summary.p99)}ms ddb=${v3Calls} rss+=${v3Growth.toFixed(1)}MB; refusals: ${v3Tally.reasonsText()}`,
    );
  }
  const ledger = await checkLedger(ctx, result, population, random);
  if (ledger.credits !== 0 || ledger.paidOrders !== 0)
    result.failures.push('a forged notify changed the ledger');
  return result;
}

// ---------------------------------------------------------------------------------------------------------
// G7 parser bombs

function bombs(): { name: string; delivery: Delivery }[] {
  const xml = (name: string, body: string, isBase64Encoded = false) => ({
    name,
    delivery: {
      version: 'v2' as const,
      outTradeNo: '',
      headers: { 'content-type': 'text/xml' },
      body: isBase64Encoded ? Buffer.from(body, 'utf8').toString('base64') : body,
      isBase64Encoded,
    },
  });
  const lol = ['<!ENTITY lol "lol">'];
  for (let i = 1; i <= 9; i++) lol.push(`<!ENTITY lol${i} "${`&lol${i - 1 || ''};`.repeat(10)}">`);
  const billionLaughs = `<?xml version="1.0"?><!DOCTYPE lolz [${lol.join('')}]><xml><return_code>&lol9;</return_code></xml>`;
  const bigEntity = `<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "${'A'.repeat(5000)}">]><xml><attach>${'&a;'.repeat(2000)}</attach></xml>`;
  return [
    xml('billion-laughs', billionLaughs),
    xml('5k×2k-entity', bigEntity),
    xml('200k-&#65;', `<xml><attach>${'&#65;'.repeat(200_000)}</attach></xml>`),
    xml('12k-&#65;-under-cap', `<xml><attach>${'&#65;'.repeat(12_000)}</attach><sign>00</sign></xml>`),
    xml('5000-deep', `<xml>${'<a>'.repeat(5000)}x${'</a>'.repeat(5000)}</xml>`),
    xml('1MB-body', `<xml><attach>${'A'.repeat(1024 * 1024)}</attach></xml>`),
    xml('billion-laughs-base64', billionLaughs, true),
    xml('1MB-base64', `<xml><attach>${'A'.repeat(1024 * 1024)}</attach></xml>`, true),
  ];
}

function jsonBombs(): { name: string; delivery: Delivery }[] {
  const json = (name: string, body: string) => ({
    name,
    delivery: {
      version: 'v3' as const,
      outTradeNo: '',
      headers: { 'content-type': 'application/json' },
      body,
    },
  });
  return [
    json('json-1MB', `{"resource":"${'A'.repeat(1024 * 1024)}"}`),
    json('json-30000-deep', `{"a":${'['.repeat(30_000)}${']'.repeat(30_000)}}`),
    json('json-5000-keys', `{${Array.from({ length: 5000 }, (_, i) => `"k${i}":1`).join(',')}}`),
  ];
}

export async function g7(ctx: Ctx): Promise<Result> {
  const result = newResult('G7');
  const total = count(ctx, 1000);
  const kinds = bombs();
  // No tables are needed (nothing may be read), but a fresh pair keeps the INV-4 check honest.
  await useFreshTables(ctx.app, ctx.endpoint, 'g7');
  const deliveries = Array.from(
    { length: total },
    (_, i) => kinds[i % kinds.length] as (typeof kinds)[number],
  );
  const tally = new Tally();
  const worstByKind = new Map<string, number>();
  await deliver(ctx.app, (kinds[0] as (typeof kinds)[number]).delivery); // warm the config
  collectGarbage();
  const heapBefore = process.memoryUsage().heapUsed;
  const rssBefore = process.memoryUsage.rss();
  const loop = monitorEventLoopDelay({ resolution: 1 });
  loop.enable();
  ctx.counter.reset();
  const started = performance.now();
  const latencies = await runPool(deliveries, 1, async ({ name, delivery }) => {
    const t0 = performance.now();
    tally.add(await deliver(ctx.app, delivery));
    worstByKind.set(name, Math.max(worstByKind.get(name) ?? 0, performance.now() - t0));
  });
  const wallMs = performance.now() - started;
  loop.disable();
  const ddbCalls = ctx.counter.total();
  collectGarbage();
  const heapGrowth = (process.memoryUsage().heapUsed - heapBefore) / MB;
  const rssGrowth = (process.memoryUsage.rss() - rssBefore) / MB;
  const loopMax = loop.max / 1e6;
  const summary = summarize(latencies);

  if (ddbCalls !== 0) result.failures.push(`INV-4 ${ddbCalls} DynamoDB calls`);
  if (tally.ack > 0) result.failures.push(`${tally.ack} bombs were acknowledged`);
  if (tally.error > 0) result.failures.push(`${tally.error} bombs hit the internal-error path`);
  latencyFields(result, wallMs, latencies, [
    ['max', `${ms(summary.max)}ms`],
    ['loopMax', `${ms(loopMax)}ms`],
    ['heap+', `${heapGrowth.toFixed(1)}MB`],
    ['rss+', `${rssGrowth.toFixed(1)}MB`],
    ['ddb', String(ddbCalls)],
  ]);
  result.targets.push(
    { text: 'each rejected ≤ 50 ms', ok: summary.max <= 50 },
    { text: 'max event-loop delay ≤ 100 ms', ok: loopMax <= 100 },
  );
  result.notes.push(
    `worst per kind: ${[...worstByKind].map(([name, worst]) => `${name} ${ms(worst)}ms`).join(', ')}`,
    `v2 refusals: ${tally.reasonsText()}`,
  );

  if (ctx.v3) {
    const worker = forkWorker('v3');
    await worker.ready;
    const v3Kinds = jsonBombs();
    const v3Deliveries = Array.from(
      { length: Math.max(v3Kinds.length, Math.round(total / 4)) },
      (_, i) => (v3Kinds[i % v3Kinds.length] as (typeof v3Kinds)[number]).delivery,
    );
    const report = await worker.run(v3Deliveries, 1);
    worker.stop();
    const v3Tally = new Tally();
    mergeWorker(v3Tally, report, result);
    const v3Calls = Object.values(report.ddb).reduce((a, b) => a + b, 0);
    const v3Summary = summarize(report.latencies);
    if (v3Calls !== 0) result.failures.push(`INV-4 v3: ${v3Calls} DynamoDB calls`);
    if (v3Tally.ack > 0) result.failures.push(`v3: ${v3Tally.ack} JSON bombs were acknowledged`);
    if (v3Tally.error > 0) result.failures.push(`v3: ${v3Tally.error} JSON bombs answered 5xx`);
    result.targets.push(
      { text: 'v3 each rejected ≤ 50 ms', ok: v3Summary.max <= 50 },
      { text: 'v3 max event-loop delay ≤ 100 ms', ok: report.eventLoopMaxMs <= 100 },
    );
    result.notes.push(
      `v3 JSON bombs (forked v3 process): requests=${v3Summary.count} max=${ms(v3Summary.max)}ms loopMax=${ms(report.eventLoopMaxMs)}ms heap+=${((report.heap.after - report.heap.before) / MB).toFixed(1)}MB ddb=${v3Calls}; refusals: ${v3Tally.reasonsText()}`,
    );
  }
  return result;
}

export const SCENARIOS: { id: string; run: (ctx: Ctx) => Promise<Result> }[] = [
  { id: 'G1', run: g1 },
  { id: 'G1', run: g1TwoProcesses },
  { id: 'G2', run: g2 },
  { id: 'G3', run: g3 },
  { id: 'G4', run: g4 },
  { id: 'G5', run: g5 },
  { id: 'G6', run: g6 },
  { id: 'G7', run: g7 },
];
