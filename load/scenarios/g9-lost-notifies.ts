/**
 * G9 lost notifies (issue 10): paid orders whose every notify is dropped (the sandbox pays with
 * `deliver: false`); reconcile passes from two overlapping callers query WeChat (the sandbox's orderquery)
 * and credit each order exactly once through the notify's own settle; then the dropped notifies arrive
 * late, twice each, from the sandbox (`/sandbox/pay/notify-again`), are acknowledged and add 0 credits.
 */
import type { APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { paymentProvider } from '#lib/clients/wechat-pay';
import { type ReconcileSummary, reconcile } from '#lib/payments/reconcile';
import { classify, type Plan, type SignedIn, Tally, useFreshTables } from '#load/app';
import {
  type Ctx,
  checkLedger,
  count,
  newResult,
  notifyServer,
  openAndPay,
  type PaidOrder,
  type Result,
  signInUsers,
  viaField,
} from '#load/harness';
import type { ExpectedUser } from '#load/ledger';
import { ms, runPool, seededRandom, summarize } from '#load/util';

/** Reconcile callers running at once (the schedule and an operator's `npm run admin -- reconcile --all`). */
const CALLERS = 2;
/** Passes one caller may run; each continues where its budget stopped the last. */
const MAX_PASSES = 25;
/** Budget of one pass: the reconciler stops taking orders 12 s (one order's worst case) before it. */
const PASS_BUDGET_MS = 14_000;

const seconds = (ms: number) => `${(ms / 1000).toFixed(2)}s`;

/** WeChat queries (v2 orderquery) the sandbox answered since `since` (epoch ms). */
async function orderQueries(sandboxUrl: string, since: number): Promise<number> {
  const response = await fetch(`${sandboxUrl}/sandbox/calls`);
  const { calls } = (await response.json()) as { calls: { path: string; at: number }[] };
  return calls.filter((call) => call.path === '/pay/orderquery' && call.at >= since).length;
}

/** One reconcile caller: passes with `all` until one finishes its due orders with no failure. */
async function reconcileCaller(ctx: Ctx): Promise<ReconcileSummary[]> {
  const config = await ctx.app.loadConfig();
  const provider = paymentProvider(config);
  const passes: ReconcileSummary[] = [];
  let last: ReconcileSummary | undefined;
  while (passes.length < MAX_PASSES && (!last || last.more || last.failed > 0)) {
    last = await reconcile(config, provider, { deadline: Date.now() + PASS_BUDGET_MS, all: true });
    passes.push(last);
  }
  return passes;
}

export async function g9(ctx: Ctx): Promise<Result> {
  const result = newResult('G9');
  const random = seededRandom(ctx.seed * 101 + 9);
  const orderCount = count(ctx, 200, 40);

  // WeChat's late notifies come from the sandbox to this bridge, which hands them to payNotify in-process.
  const late = new Tally();
  const notify = await notifyServer(ctx, async (body, req, res) => {
    const reply = (await ctx.app.handlers.notify(
      ctx.app.httpEvent({
        method: 'POST',
        path: '/wechat/notify',
        headers: { 'content-type': String(req.headers['content-type'] ?? 'text/xml') },
        body,
      }),
      ctx.app.context,
    )) as APIGatewayProxyStructuredResultV2;
    late.add(classify('v2', reply));
    res.writeHead(reply.statusCode ?? 500, { 'content-type': 'text/xml' }).end(reply.body ?? '');
  });
  try {
    const tables = await useFreshTables(ctx.app, ctx.endpoint, 'g9', { WECHAT_NOTIFY_URL: notify.url });
    // Two orders per user (two different plans: one open order per user and plan), so a user's membership
    // is extended twice and INV-2 folds real sums.
    const users = await signInUsers(ctx, tables, 9, Math.ceil(orderCount / 2), random);
    const seeding = performance.now();
    const orders: PaidOrder[] = [];
    await runPool(
      users.map((user, u) => ({ user, u })),
      8,
      async ({ user, u }) => {
        for (let k = 0; k < 2 && 2 * u + k < orderCount; k++) {
          const plan = ctx.app.PLANS[(u + k) % ctx.app.PLANS.length] as Plan;
          orders[2 * u + k] = await openAndPay(ctx, user as SignedIn & ExpectedUser, plan, {
            deliver: false,
          });
        }
      },
    );
    const seedMs = performance.now() - seeding;
    const population = { tables, users, orders };
    const before = await checkLedger(ctx, newResult('G9 before'), population, random);
    if (before.credits !== 0)
      result.failures.push(`${before.credits} credits before reconciling, expected 0`);

    // Reconcile: two callers at once, each passing over every PENDING order (all: true).
    const queriesSince = Date.now();
    ctx.counter.reset();
    const reconciling = performance.now();
    const callers = await Promise.all(Array.from({ length: CALLERS }, () => reconcileCaller(ctx)));
    const reconcileMs = performance.now() - reconciling;
    const queries = await orderQueries(ctx.sandboxUrl, queriesSince);
    const transactions = ctx.counter.get('TransactWrite');
    const passes = callers.flat();
    const sum = (key: 'checked' | 'credited' | 'failed' | 'exceptions') =>
      passes.reduce((total, pass) => total + pass[key], 0);
    const afterReconcile = await checkLedger(ctx, result, population, random);
    if (afterReconcile.credits !== orderCount) {
      result.failures.push(`the reconciler made ${afterReconcile.credits} credits, expected ${orderCount}`);
    }
    if (sum('credited') !== orderCount) {
      result.failures.push(`reconcile passes report ${sum('credited')} credited, expected ${orderCount}`);
    }
    if (sum('exceptions') > 0) result.failures.push(`${sum('exceptions')} payment exceptions`);
    const notByQuery = Object.entries(afterReconcile.paidVia).filter(
      ([via]) => !via.startsWith('orderquery'),
    );
    if (notByQuery.length > 0) {
      result.failures.push(`paid through ${notByQuery.map(([via, n]) => `${via}×${n}`).join(', ')}`);
    }
    const confirm = await reconcileCaller(ctx);
    if (confirm[0]?.checked !== 0) {
      result.failures.push(`a pass after reconciling still found ${confirm[0]?.checked} PENDING orders`);
    }

    // The lost notifies arrive late: each delivered twice by the sandbox, all at once.
    const arriving = performance.now();
    const redelivered = await runPool(
      orders.flatMap((order) => [order, order]),
      32,
      async (order) => {
        const response = await fetch(`${ctx.sandboxUrl}/sandbox/pay/notify-again`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ outTradeNo: order.outTradeNo }),
        });
        const answer = (await response.json()) as { delivered?: boolean };
        if (!response.ok || answer.delivered !== true) {
          result.failures.push(`late notify of ${order.outTradeNo} not acknowledged (${response.status})`);
        }
      },
    );
    const lateMs = performance.now() - arriving;
    if (late.ack !== orders.length * 2) {
      result.failures.push(
        `late notifies: ${late.ack} acknowledged of ${orders.length * 2} (${late.reasonsText()})`,
      );
    }
    const afterLate = await checkLedger(ctx, result, population, random);
    const lateCredits = afterLate.credits - afterReconcile.credits;
    if (lateCredits !== 0) result.failures.push(`the late notifies added ${lateCredits} credits, expected 0`);

    result.fields.push(
      ['orders', String(orderCount)],
      ['reconcile', seconds(reconcileMs)],
      ['passes', callers.map((c) => c.length).join('+')],
      ['credited', callers.map((c) => c.reduce((n, pass) => n + pass.credited, 0)).join('+')],
      ['checked', String(sum('checked'))],
      ['failed', String(sum('failed'))],
      ['queries', String(queries)],
      ['tx', String(transactions)],
      ['late', `${late.ack}/${orders.length * 2}`],
      ['lateWall', seconds(lateMs)],
      ['lateCredits', String(lateCredits)],
      ['credits', String(afterLate.credits)],
      viaField(afterLate),
    );
    result.notes.push(
      `${orderCount} orders (${users.length} users × 2 plans) opened through POST /wechat/pay and paid on the sandbox with every notify dropped (seeding ${seconds(seedMs)}); ` +
        `${CALLERS} reconcile callers at once, passes of ${PASS_BUDGET_MS / 1000} s budget with all: true; ` +
        `then each dropped notify delivered twice by the sandbox (p50 ${ms(summarize(redelivered).p50)}ms, p99 ${ms(summarize(redelivered).p99)}ms per delivery)`,
    );
  } finally {
    await notify.close();
  }
  return result;
}
