/**
 * G5 cross-channel: each paid order reported at once by its v2 notify, the order query behind
 * GET /wechat/orders/{no} and (when v3 works) a v3 notify; one credit per order.
 */
import type { APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import {
  type Delivery,
  deliver,
  type Plan,
  type SignedIn,
  Tally,
  useFreshTables,
  v2Delivery,
  v3Delivery,
} from '#load/app';
import {
  CODE_TO_OUTCOME,
  type Ctx,
  count,
  latencyFields,
  mergeWorker,
  newResult,
  notifyServer,
  openAndPay,
  type PaidOrder,
  type Refused,
  type Result,
  type Storm,
  settleStorm,
  signInUsers,
  viaField,
} from '#load/harness';
import type { ExpectedUser } from '#load/ledger';
import { randomInt, runPool, seededRandom, shuffle } from '#load/util';
import { forkWorker, type WorkerHandle } from '#load/workers';

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
  const notify = await notifyServer(ctx, (body, _request, res) => {
    const outTradeNo = /<out_trade_no><!\[CDATA\[(.*?)\]\]>/.exec(body)?.[1];
    if (outTradeNo && !captured.has(outTradeNo)) captured.set(outTradeNo, body);
    res
      .writeHead(200, { 'content-type': 'text/xml' })
      .end('<xml><return_code><![CDATA[FAIL]]></return_code></xml>');
  });
  let worker: WorkerHandle | undefined;
  try {
    const tables = await useFreshTables(ctx.app, ctx.endpoint, 'g5', { WECHAT_NOTIFY_URL: notify.url });
    // One user per order: createPayment continues a user's open order for the same plan, and every order
    // here must be a distinct payment.
    const users = await signInUsers(ctx, tables, 5, orderCount, random);
    const orders: PaidOrder[] = [];
    await runPool(
      Array.from({ length: orderCount }, (_, i) => i),
      8,
      async (i) => {
        const user = users[i % users.length] as SignedIn & ExpectedUser;
        const plan = ctx.app.PLANS[randomInt(random, 0, ctx.app.PLANS.length - 1)] as Plan;
        orders[i] = await openAndPay(ctx, user, plan);
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
          orders.map((order) => v3Delivery(v3Keys, order)),
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
    const { ledger, fields } = await settleStorm(ctx, result, { tables, orders, users }, storm, random, {
      zero5xxTarget: false,
    });
    // A concurrent view may show PENDING when the notify commits after its read, but it must never fail.
    if ((views.get(200) ?? 0) !== orderCount) {
      result.failures.push(`GET /wechat/orders/{no}: ${[...views].map(([s, n]) => `${s}×${n}`).join(', ')}`);
    }
    latencyFields(result, wallMs, latencies, [
      ['credits', String(ledger.credits)],
      ...fields,
      viaField(ledger),
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
    await notify.close();
  }
  return result;
}
