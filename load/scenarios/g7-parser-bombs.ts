/**
 * G7 parser bombs: XML (and JSON) payloads built to exhaust the parsers; each rejected fast, no growth.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { type Delivery, deliver, Tally, useFreshTables } from '#load/app';
import { type Ctx, count, latencyFields, mergeWorker, newResult, type Result } from '#load/harness';
import { collectGarbage, MB, ms, runPool, summarize } from '#load/util';
import { forkWorker } from '#load/workers';

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
