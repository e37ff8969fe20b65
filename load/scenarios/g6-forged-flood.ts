/**
 * G6 forged flood: 10 000 notifies invalid in rotating ways, 64 in flight; 0 DynamoDB calls, all refused.
 */

import { type Delivery, deliver, type PaidFacts, Tally, v3Delivery } from '#load/app';
import {
  type Ctx,
  checkLedger,
  count,
  latencyFields,
  mergeWorker,
  newResult,
  populate,
  type Result,
} from '#load/harness';
import { collectGarbage, MB, ms, runPool, seededRandom, shuffle, summarize } from '#load/util';
import { forkWorker } from '#load/workers';
import type { V3Keys } from '#local/fixtures/v3';

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

function forgedV3(keys: V3Keys, targets: PaidFacts[], total: number, random: () => number): Delivery[] {
  const now = Math.floor(Date.now() / 1000);
  const badSignature = () => Buffer.from(randomHex(random, 512), 'hex').toString('base64');
  // Stale/future by an hour, not by 301 s: a +301 s notify becomes genuinely fresh a second later.
  const variants: ((target: PaidFacts) => Delivery)[] = [
    (t) => v3Delivery(keys, t, { signature: badSignature() }),
    (t) => v3Delivery(keys, t, { timestamp: now - 3600 }),
    (t) => v3Delivery(keys, t, { timestamp: now + 3600 }),
    (t) => v3Delivery(keys, t, { signature: `WECHATPAY/SIGNTEST/${badSignature()}` }),
    (t) => v3Delivery(keys, t, { serial: 'PUB_KEY_ID_0000000000000000000000000000' }),
    // signed by the wrong key (the merchant's)
    (t) => v3Delivery(keys, t, { signingKey: keys.merchantKey }),
    (t) =>
      v3Delivery(keys, t, {
        tamper: (body) => body.replace('"TRANSACTION.SUCCESS"', '"TRANSACTION.SUCCESS" '),
      }),
    (t) => v3Delivery(keys, t, { dropHeader: 'wechatpay-signature' }),
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
    const forged = shuffle(forgedV3(ctx.v3, population.orders, total, random), random);
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
