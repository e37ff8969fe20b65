/**
 * `npm run bench`: micro-benchmarks of the notify hot paths (research/reliability.md §4.1, E4), with targets:
 *   - every v2/v3 crypto and parse operation of the notify path ≥ 5 000 ops/s;
 *   - the whole notify handler on a duplicate (order already PAID; DynamoDB mocked) p99 ≤ 20 ms.
 * buildAuthorization is one RSA-2048 private-key signature per outbound WeChat Pay call (prepay, order query),
 * never on the notify path; a private-key RSA op runs at a few thousand per second per core, so it gets its
 * own target (≥ 1 000 ops/s) and a raw crypto.sign baseline is printed next to it. Exits 1 when a target is missed.
 * Options: --time <ms per benchmark> (default 1000).
 */
import { createPrivateKey, sign } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { DynamoDBDocumentClient, GetCommand } from '@aws-sdk/lib-dynamodb';
import type { APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { mockClient } from 'aws-sdk-client-mock';
import { applyLocalEnv } from '#local/env';

const ROOT = resolve(import.meta.dirname, '..');
const { values } = parseArgs({ options: { time: { type: 'string', default: '1000' } } });
const BUDGET_MS = Number(values.time);

// The environment first: lib/clients/dynamodb and lib/logger read it at import time.
applyLocalEnv({
  STAGE: 'bench',
  SECRETS_SOURCE: 'env',
  POWERTOOLS_LOG_LEVEL: 'SILENT',
  WECHAT_PAY_VERSION: 'v2',
  // Never contacted: every DynamoDB call below is answered by aws-sdk-client-mock.
  DYNAMODB_ENDPOINT: 'http://127.0.0.1:9',
});

const [v2, v3, notifyFn, notifyLib, config, wechatPay, notifyHelpers, events, sandboxV3, v3Client] =
  await Promise.all([
    import('#lib/wechat-pay/v2-protocol'),
    import('#lib/wechat-pay/v3-protocol'),
    import('#functions/pay-notify'),
    import('#lib/notify'),
    import('#lib/config'),
    import('#lib/clients/wechat-pay'),
    import('#local/fixtures/notify'),
    import('#local/fixtures/events'),
    import('#local/sandbox/pay-v3'),
    import('#lib/clients/wechat-pay-v3'),
  ]);

interface Row {
  name: string;
  opsPerSecond: number;
  microsPerOp: number;
  p99Ms?: number;
  target: string;
  ok: boolean;
}

const rows: Row[] = [];

/** Runs a synchronous op in batches for BUDGET_MS after a short warm-up; ops/s and µs/op. */
function benchSync(name: string, op: () => unknown, minOps?: number): void {
  const warmUntil = performance.now() + Math.min(200, BUDGET_MS / 4);
  while (performance.now() < warmUntil) op();
  let ops = 0;
  let batch = 16;
  const started = performance.now();
  let elapsed = 0;
  while (elapsed < BUDGET_MS) {
    for (let i = 0; i < batch; i++) op();
    ops += batch;
    elapsed = performance.now() - started;
    if (elapsed < BUDGET_MS / 20) batch *= 2;
  }
  const opsPerSecond = (ops / elapsed) * 1000;
  rows.push({
    name,
    opsPerSecond,
    microsPerOp: (elapsed * 1000) / ops,
    target: minOps === undefined ? '(baseline)' : `≥ ${minOps} ops/s`,
    ok: minOps === undefined || opsPerSecond >= minOps,
  });
}

/** Runs an async op sequentially (one invocation at a time, as a Lambda container does); ops/s and p99. */
async function benchAsync(name: string, op: () => Promise<unknown>, maxP99Ms: number): Promise<void> {
  const warmUntil = performance.now() + Math.min(300, BUDGET_MS / 3);
  while (performance.now() < warmUntil) await op();
  const latencies: number[] = [];
  const started = performance.now();
  while (performance.now() - started < BUDGET_MS) {
    const t0 = performance.now();
    await op();
    latencies.push(performance.now() - t0);
  }
  const elapsed = performance.now() - started;
  latencies.sort((a, b) => a - b);
  const p99 = latencies[Math.ceil(latencies.length * 0.99) - 1] ?? 0;
  rows.push({
    name,
    opsPerSecond: (latencies.length / elapsed) * 1000,
    microsPerOp: (elapsed * 1000) / latencies.length,
    p99Ms: p99,
    target: `p99 ≤ ${maxP99Ms} ms`,
    ok: p99 <= maxP99Ms,
  });
}

const CRYPTO_TARGET = 5000;
const RSA_SIGN_TARGET = 1000;

// --- v2 ----------------------------------------------------------------------------------------------
const paid = {
  outTradeNo: 'M20261121080000abcdefABCDEF',
  totalFee: 1800,
  transactionId: '4200000000202611210000000001',
};
const mchKey = process.env.WECHAT_MCH_KEY as string;
const md5Fields = notifyHelpers.v2NotifyFields({ ...paid, signType: 'MD5' });
const hmacFields = notifyHelpers.v2NotifyFields({ ...paid, signType: 'HMAC-SHA256' });
const md5Xml = v2.toV2Xml(md5Fields);
const md5Params = v2.parseV2Xml(md5Xml);
const hmacParams = v2.parseV2Xml(v2.toV2Xml(hmacFields));
if (!v2.verifyV2Sign(md5Params, mchKey, ['MD5']) || !v2.verifyV2Sign(hmacParams, mchKey, ['HMAC-SHA256'])) {
  throw new Error('bench setup: the sample v2 notifies do not verify');
}

benchSync('v2 signV2 MD5 (notify fields)', () => v2.signV2(md5Fields, mchKey, 'MD5'), CRYPTO_TARGET);
benchSync('v2 signV2 HMAC-SHA256', () => v2.signV2(hmacFields, mchKey, 'HMAC-SHA256'), CRYPTO_TARGET);
benchSync(`v2 parseV2Xml (real notify, ${md5Xml.length} B)`, () => v2.parseV2Xml(md5Xml), CRYPTO_TARGET);
benchSync(
  'v2 verifyV2Sign MD5',
  () => v2.verifyV2Sign(md5Params, mchKey, ['MD5', 'HMAC-SHA256']),
  CRYPTO_TARGET,
);
benchSync(
  'v2 verifyV2Sign HMAC-SHA256',
  () => v2.verifyV2Sign(hmacParams, mchKey, ['MD5', 'HMAC-SHA256']),
  CRYPTO_TARGET,
);
benchSync(
  'v2 parse + verify (the notify path)',
  () => v2.verifyV2Sign(v2.parseV2Xml(md5Xml), mchKey, ['MD5', 'HMAC-SHA256']),
  CRYPTO_TARGET,
);

// --- v3 ----------------------------------------------------------------------------------------------
const payPrivateKey = createPrivateKey(
  readFileSync(resolve(ROOT, 'local/keys/wechatpay-private.pem'), 'utf8'),
);
const merchantKey = createPrivateKey(readFileSync(resolve(ROOT, 'local/keys/merchant-private.pem'), 'utf8'));
const publicKeyId = process.env.WECHAT_PAY_PUBLIC_KEY_ID as string;
const apiV3Key = Buffer.from(process.env.WECHAT_APIV3_KEY as string, 'utf8');
const verifier = v3.createVerifier({
  publicKey: { id: publicKeyId, pem: process.env.WECHAT_PAY_PUBLIC_KEY as string },
});
/** A v3 TRANSACTION.SUCCESS notify as the sandbox builds it (local keys), with lower-case header names. */
function v3Notify(): { headers: Record<string, string>; body: string; resource: Record<string, string> } {
  const notice = sandboxV3.buildV3Notify({
    transaction: {
      appid: process.env.WECHAT_APPID,
      mchid: process.env.WECHAT_MCH_ID,
      out_trade_no: paid.outTradeNo,
      transaction_id: paid.transactionId,
      trade_type: 'JSAPI',
      trade_state: 'SUCCESS',
      trade_state_desc: '支付成功',
      bank_type: 'OTHERS',
      attach: '',
      success_time: v3Client.formatRfc3339Cst(new Date()),
      payer: { openid: 'oSandboxOpenid000000' },
      amount: { total: paid.totalFee, payer_total: paid.totalFee, currency: 'CNY', payer_currency: 'CNY' },
    },
    apiV3Key,
    privateKey: payPrivateKey,
    serial: publicKeyId,
  });
  const headers = Object.fromEntries(
    Object.entries(notice.headers).map(([name, value]) => [name.toLowerCase(), value]),
  );
  return { headers, body: notice.body, resource: JSON.parse(notice.body).resource };
}

const sample = v3Notify();
const verifyInput = {
  serial: sample.headers['wechatpay-serial'] as string,
  signature: sample.headers['wechatpay-signature'] as string,
  timestamp: sample.headers['wechatpay-timestamp'] as string,
  nonce: sample.headers['wechatpay-nonce'] as string,
  body: sample.body,
};
verifier.verify({ ...verifyInput, now: Math.floor(Date.now() / 1000) });
benchSync(
  'v3 verify notify signature (RSA-2048 public key)',
  () => verifier.verify({ ...verifyInput, now: Math.floor(Date.now() / 1000) }),
  CRYPTO_TARGET,
);
benchSync(
  `v3 decryptResource (AES-256-GCM, ${Buffer.from(sample.resource.ciphertext as string, 'base64').length} B)`,
  () => v3.decryptResource(sample.resource, apiV3Key),
  CRYPTO_TARGET,
);
const mchSerialNo = process.env.WECHAT_MCH_SERIAL_NO as string;
const mchId = process.env.WECHAT_MCH_ID as string;
benchSync(
  'v3 buildAuthorization (RSA-2048 private-key sign; outbound only)',
  () =>
    v3.buildAuthorization({
      mchId,
      serialNo: mchSerialNo,
      privateKey: merchantKey,
      method: 'GET',
      url: `/v3/pay/transactions/out-trade-no/${paid.outTradeNo}?mchid=${mchId}`,
      body: '',
    }),
  RSA_SIGN_TARGET,
);
benchSync('raw crypto.sign RSA-2048 SHA-256 (ceiling for the row above)', () =>
  sign('sha256', Buffer.from('GET\n/v3/x\n1\nn\n\n'), merchantKey),
);

// --- the whole notify handler on a duplicate ----------------------------------------------------------
const ddb = mockClient(DynamoDBDocumentClient);
const paidOrder = {
  outTradeNo: paid.outTradeNo,
  userId: 'uAAAAAAAAAAAAAAAAAAAAAA',
  openid: 'oSandboxOpenid000000',
  planId: 'monthly',
  description: '会员-月度会员',
  totalFee: paid.totalFee,
  status: 'PAID',
  payVersion: 'v2',
  clientIp: '203.0.113.7',
  createdAt: '2026-11-21T08:00:00.000Z',
  timeExpire: '2026-11-21T10:00:00.000Z',
  transactionId: paid.transactionId,
  paidAt: '2026-11-21T08:01:00.000Z',
};
ddb.on(GetCommand).resolves({ Item: paidOrder });

const v2Bodies = Array.from({ length: 256 }, (_, i) =>
  notifyHelpers.v2NotifyXml({ ...paid, signType: i % 2 === 0 ? 'MD5' : 'HMAC-SHA256' }),
);
let calls = 0;
const expectAck = (
  result: APIGatewayProxyStructuredResultV2,
  ack: (r: APIGatewayProxyStructuredResultV2) => boolean,
) => {
  if (!ack(result))
    throw new Error(`duplicate notify was not acknowledged: ${result.statusCode} ${result.body}`);
  // aws-sdk-client-mock keeps every call; drop the history now and then so it does not grow.
  if (++calls % 1000 === 0) ddb.resetHistory();
};
await benchAsync(
  'v2 notify handler, duplicate (functions/pay-notify, middy, mocked GetItem)',
  async () => {
    const result = (await notifyFn.handler(
      events.httpEvent({
        method: 'POST',
        path: '/wechat/notify',
        headers: { 'content-type': 'text/xml' },
        body: v2Bodies[calls % v2Bodies.length],
      }),
      events.context,
    )) as APIGatewayProxyStructuredResultV2;
    expectAck(result, (r) => (r.body ?? '').includes('<return_code><![CDATA[SUCCESS]]></return_code>'));
  },
  20,
);

// A process has one WECHAT_PAY_VERSION, so the v3 path runs lib/notify's handleNotify (what the v3-configured
// handler calls after middy and loadConfig) with a v3 provider built from the same environment.
const v3Settings = config.readSettings({ ...process.env, WECHAT_PAY_VERSION: 'v3' });
const v3Config = {
  ...v3Settings,
  ...config.parseSecrets(
    Object.fromEntries(config.SECRET_NAMES.map((name) => [name, process.env[name]])),
    v3Settings,
  ),
};
const v3Provider = wechatPay.paymentProvider(v3Config);
const v3Samples = Array.from({ length: 64 }, () => v3Notify());
await benchAsync(
  'v3 notify path, duplicate (lib/notify handleNotify, mocked GetItem)',
  async () => {
    const notify = v3Samples[calls % v3Samples.length] as (typeof v3Samples)[number];
    const result = await notifyLib.handleNotify(
      v3Config,
      v3Provider,
      events.httpEvent({
        method: 'POST',
        path: '/wechat/notify',
        headers: notify.headers,
        body: notify.body,
      }),
    );
    expectAck(result, (r) => r.statusCode === 204 || r.statusCode === 200);
  },
  20,
);
ddb.restore();

// --- report -------------------------------------------------------------------------------------------
const nameWidth = Math.max(...rows.map((row) => row.name.length));
console.log(`bench node=${process.version} ${BUDGET_MS} ms per benchmark`);
console.log(
  `${'benchmark'.padEnd(nameWidth)}  ${'ops/s'.padStart(10)}  ${'µs/op'.padStart(9)}  ${'p99'.padStart(9)}  target`,
);
for (const row of rows) {
  console.log(
    `${row.name.padEnd(nameWidth)}  ${row.opsPerSecond.toFixed(0).padStart(10)}  ${row.microsPerOp.toFixed(2).padStart(9)}  ${(row.p99Ms === undefined ? '' : `${row.p99Ms.toFixed(2)}ms`).padStart(9)}  ${row.target} ${row.ok ? 'ok' : 'MISSED'}`,
  );
}
const missed = rows.filter((row) => !row.ok);
console.log(
  missed.length === 0 ? 'bench passed' : `bench FAILED: ${missed.map((row) => row.name).join('; ')}`,
);
process.exit(missed.length === 0 ? 0 : 1);
