import { createPrivateKey, type KeyObject, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  buildAuthorization,
  createVerifier,
  decryptResource,
  type WechatPayVerifier,
} from '#lib/wechat-pay/v3-protocol';
import { PayStore, type SandboxOrder } from '#local/sandbox/pay-store';
import { type PayV3Settings, payV3SettingsFromEnv, registerPayV3 } from '#local/sandbox/pay-v3';
import { Sandbox } from '#local/sandbox/server';

const read = (path: string): string => readFileSync(new URL(`../../../${path}`, import.meta.url), 'utf8');
const ENV_NAMES = [
  'WECHAT_APPID',
  'WECHAT_MCH_ID',
  'WECHAT_MCH_SERIAL_NO',
  'WECHAT_MCH_PRIVATE_KEY',
  'WECHAT_PAY_PUBLIC_KEY',
  'WECHAT_PAY_PUBLIC_KEY_ID',
] as const;
/** The sandbox values from .env.example (applied by test/setup.ts). */
const env = Object.fromEntries(ENV_NAMES.map((name) => [name, process.env[name] ?? ''])) as Record<
  (typeof ENV_NAMES)[number],
  string
>;
const SETTINGS = payV3SettingsFromEnv();
const merchantKey = createPrivateKey(env.WECHAT_MCH_PRIVATE_KEY);
const otherKey = createPrivateKey(read('test/fixtures/wechat-pay/go-test-private-key.pem'));
const DEV_CERT = read('local/keys/wechatpay-platform-cert.pem');
const JSAPI = '/v3/pay/transactions/jsapi';

const verifier: WechatPayVerifier = createVerifier({
  publicKey: { id: SETTINGS.publicKeyId, pem: env.WECHAT_PAY_PUBLIC_KEY },
  platformCertificates: [DEV_CERT],
});

interface Answer {
  status: number;
  headers: Headers;
  text: string;
  json: Record<string, unknown>;
}

interface Signing {
  mchId?: string;
  serialNo?: string;
  privateKey?: KeyObject;
  timestamp?: number;
  /** Sign this body instead of the one sent. */
  signedBody?: string;
  authorization?: string | null;
}

async function startSandbox(overrides: Partial<PayV3Settings> = {}) {
  const sandbox = new Sandbox();
  const store = new PayStore();
  registerPayV3(sandbox, store, { ...SETTINGS, ...overrides });
  await sandbox.listen(0);
  return { sandbox, store };
}

/** Calls the sandbox as the merchant would, with an Authorization header unless told otherwise. */
async function call(
  baseUrl: string,
  method: 'GET' | 'POST',
  url: string,
  body?: unknown,
  signing: Signing = {},
): Promise<Answer> {
  const text = body === undefined ? '' : typeof body === 'string' ? body : JSON.stringify(body);
  const authorization =
    signing.authorization === undefined
      ? buildAuthorization({
          mchId: signing.mchId ?? env.WECHAT_MCH_ID,
          serialNo: signing.serialNo ?? env.WECHAT_MCH_SERIAL_NO,
          privateKey: signing.privateKey ?? merchantKey,
          method,
          url,
          body: signing.signedBody ?? text,
          timestamp: signing.timestamp,
        })
      : signing.authorization;
  const headers: Record<string, string> = { accept: 'application/json', 'content-type': 'application/json' };
  if (authorization !== null) headers.authorization = authorization;
  const response = await fetch(`${baseUrl}${url}`, {
    method,
    headers,
    body: method === 'GET' ? undefined : text,
  });
  const answer = await response.text();
  return {
    status: response.status,
    headers: response.headers,
    text: answer,
    json: answer === '' ? {} : (JSON.parse(answer) as Record<string, unknown>),
  };
}

/** Throws unless the answer carries a valid WeChat Pay signature; returns the serial it was signed under. */
function assertSigned(answer: Answer): string {
  const serial = answer.headers.get('wechatpay-serial') ?? '';
  verifier.verify({
    serial,
    signature: answer.headers.get('wechatpay-signature') ?? '',
    timestamp: answer.headers.get('wechatpay-timestamp') ?? '',
    nonce: answer.headers.get('wechatpay-nonce') ?? '',
    body: answer.text,
    now: Math.floor(Date.now() / 1000),
  });
  expect(answer.headers.get('wechatpay-signature-type')).toBe('WECHATPAY2-SHA256-RSA2048');
  return serial;
}

let sequence = 0;
function jsapiBody(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  sequence++;
  return {
    appid: env.WECHAT_APPID,
    mchid: env.WECHAT_MCH_ID,
    description: '会员-月度会员',
    out_trade_no: `SBX${Date.now()}${sequence}`,
    time_expire: '2030-01-01T10:00:00+08:00',
    notify_url: 'http://127.0.0.1:3000/wechat/notify',
    amount: { total: 1800, currency: 'CNY' },
    payer: { openid: 'oSandboxOpenid000000' },
    scene_info: { payer_client_ip: '203.0.113.7' },
    ...overrides,
  };
}

describe('sandbox WeChat Pay v3', () => {
  let sandbox: Sandbox;
  let store: PayStore;
  let base: string;

  beforeAll(async () => {
    ({ sandbox, store } = await startSandbox());
    base = sandbox.baseUrl;
  });
  afterAll(() => sandbox.close());

  it('refuses a missing or bad merchant Authorization with a signed 401 SIGN_ERROR', async () => {
    // Arrange
    const body = jsapiBody();
    const cases: [string, Signing][] = [
      ['missing', { authorization: null }],
      ['malformed', { authorization: 'WECHATPAY2-SHA256-RSA2048 mchid=1' }],
      ['other scheme', { authorization: 'Bearer abc' }],
      ['other mchid', { mchId: '1900000999' }],
      ['other serial', { serialNo: 'ABCDEF0123456789' }],
      ['stale timestamp', { timestamp: Math.floor(Date.now() / 1000) - 301 }],
      ['future timestamp', { timestamp: Math.floor(Date.now() / 1000) + 360 }],
      ['other key', { privateKey: otherKey }],
      ['other body', { signedBody: JSON.stringify({ ...body, amount: { total: 1, currency: 'CNY' } }) }],
    ];
    for (const [name, signing] of cases) {
      // Act
      const answer = await call(base, 'POST', JSAPI, body, signing);
      // Assess
      expect(answer.status, name).toBe(401);
      expect(answer.json.code, name).toBe('SIGN_ERROR');
      assertSigned(answer);
    }
    expect(store.orders.has(body.out_trade_no as string)).toBe(false);
  });

  it('checks the Authorization on query and close too', async () => {
    // Act
    const query = await call(
      base,
      'GET',
      `/v3/pay/transactions/out-trade-no/SBX000001?mchid=${env.WECHAT_MCH_ID}`,
      undefined,
      {
        authorization: null,
      },
    );
    const close = await call(
      base,
      'POST',
      '/v3/pay/transactions/out-trade-no/SBX000001/close',
      { mchid: env.WECHAT_MCH_ID },
      {
        privateKey: otherKey,
      },
    );
    // Assess
    expect(query.status).toBe(401);
    expect(close.status).toBe(401);
  });

  it('answers a valid prepay with a signed prepay_id and records the order', async () => {
    // Arrange
    const body = jsapiBody();
    // Act
    const answer = await call(base, 'POST', JSAPI, body);
    // Assess
    expect(answer.status).toBe(200);
    expect(assertSigned(answer)).toBe(SETTINGS.publicKeyId);
    expect(answer.headers.get('request-id')).toBeTruthy();
    expect(answer.json.prepay_id).toMatch(/^wx\w{20,62}$/);
    expect(store.orders.get(body.out_trade_no as string)).toMatchObject({
      version: 'v3',
      totalFee: 1800,
      tradeState: 'NOTPAY',
      prepayId: answer.json.prepay_id,
      notifyUrl: body.notify_url,
    });
  });

  it.each<[string, unknown]>([
    ['not JSON', '{"appid":'],
    ['an array', '[]'],
    ['no appid', jsapiBody({ appid: undefined })],
    ['no mchid', jsapiBody({ mchid: undefined })],
    ['no description', jsapiBody({ description: undefined })],
    ['a description over 127 bytes', jsapiBody({ description: '会'.repeat(43) })],
    ['a short out_trade_no', jsapiBody({ out_trade_no: 'ab12' })],
    ['an out_trade_no with a space', jsapiBody({ out_trade_no: 'abc 1234' })],
    ['an out_trade_no over 32 chars', jsapiBody({ out_trade_no: 'a'.repeat(33) })],
    ['no notify_url', jsapiBody({ notify_url: undefined })],
    ['a notify_url with a query', jsapiBody({ notify_url: 'https://example.com/notify?x=1' })],
    ['a relative notify_url', jsapiBody({ notify_url: '/notify' })],
    ['no amount', jsapiBody({ amount: undefined })],
    ['a fractional amount', jsapiBody({ amount: { total: 18.5, currency: 'CNY' } })],
    ['a zero amount', jsapiBody({ amount: { total: 0, currency: 'CNY' } })],
    ['a string amount', jsapiBody({ amount: { total: '1800', currency: 'CNY' } })],
    ['a foreign currency', jsapiBody({ amount: { total: 1800, currency: 'USD' } })],
    ['no payer', jsapiBody({ payer: undefined })],
    ['an empty openid', jsapiBody({ payer: { openid: '' } })],
    ['a non-RFC 3339 time_expire', jsapiBody({ time_expire: '20300101100000' })],
    ['a bad payer_client_ip', jsapiBody({ scene_info: { payer_client_ip: '999.1.1.1' } })],
  ])('refuses a prepay with %s with a signed 400 PARAM_ERROR', async (_name, body) => {
    // Act
    const answer = await call(base, 'POST', JSAPI, body);
    // Assess
    expect(answer.status).toBe(400);
    expect(answer.json.code).toBe('PARAM_ERROR');
    expect(answer.json.message).toEqual(expect.any(String));
    assertSigned(answer);
  });

  it('refuses a foreign appid or mchid', async () => {
    // Act
    const appid = await call(base, 'POST', JSAPI, jsapiBody({ appid: 'wx0000000000000000' }));
    const mchid = await call(base, 'POST', JSAPI, jsapiBody({ mchid: '1900000999' }));
    // Assess
    expect([appid.status, appid.json.code]).toEqual([400, 'APPID_MCHID_NOT_MATCH']);
    expect([mchid.status, mchid.json.code]).toEqual([400, 'MCH_NOT_EXISTS']);
  });

  it('keeps one prepay per out_trade_no: identical → same id, different → INVALID_REQUEST, paid → ORDERPAID, closed → ORDER_CLOSED', async () => {
    // Arrange
    const body = jsapiBody();
    const closing = jsapiBody();
    const first = await call(base, 'POST', JSAPI, body);
    await call(base, 'POST', JSAPI, closing);
    // Act
    const again = await call(base, 'POST', JSAPI, body);
    const changed = await call(base, 'POST', JSAPI, { ...body, amount: { total: 1, currency: 'CNY' } });
    const close = await call(
      base,
      'POST',
      `/v3/pay/transactions/out-trade-no/${closing.out_trade_no}/close`,
      {
        mchid: env.WECHAT_MCH_ID,
      },
    );
    const afterClose = await call(base, 'POST', JSAPI, closing);
    const order = store.orders.get(body.out_trade_no as string) as SandboxOrder;
    order.tradeState = 'SUCCESS';
    const afterPay = await call(base, 'POST', JSAPI, body);
    const closePaid = await call(
      base,
      'POST',
      `/v3/pay/transactions/out-trade-no/${body.out_trade_no}/close`,
      {
        mchid: env.WECHAT_MCH_ID,
      },
    );
    // Assess
    expect(again.json.prepay_id).toBe(first.json.prepay_id);
    expect([changed.status, changed.json.code]).toEqual([400, 'INVALID_REQUEST']);
    expect(close.status).toBe(204);
    expect(close.text).toBe('');
    assertSigned(close);
    expect([afterClose.status, afterClose.json.code]).toEqual([400, 'ORDER_CLOSED']);
    expect([afterPay.status, afterPay.json.code]).toEqual([400, 'ORDERPAID']);
    expect([closePaid.status, closePaid.json.code]).toEqual([400, 'ORDERPAID']);
  });

  it('answers the query by out_trade_no with the transaction model, 404 ORDER_NOT_EXIST or 400 without mchid', async () => {
    // Arrange
    const body = jsapiBody({ amount: { total: 990, currency: 'CNY' } });
    await call(base, 'POST', JSAPI, body);
    const path = `/v3/pay/transactions/out-trade-no/${body.out_trade_no}`;
    // Act
    const unpaid = await call(base, 'GET', `${path}?mchid=${env.WECHAT_MCH_ID}`);
    const order = store.orders.get(body.out_trade_no as string) as SandboxOrder;
    Object.assign(order, {
      tradeState: 'SUCCESS',
      transactionId: '4200000000000000000000000042',
      paidAt: 1_795_000_000,
    });
    const paid = await call(base, 'GET', `${path}?mchid=${env.WECHAT_MCH_ID}`);
    const missing = await call(
      base,
      'GET',
      `/v3/pay/transactions/out-trade-no/SBX404404404?mchid=${env.WECHAT_MCH_ID}`,
    );
    const noMchid = await call(base, 'GET', path);
    // Assess
    expect(unpaid.status).toBe(200);
    assertSigned(unpaid);
    expect(unpaid.json).toMatchObject({
      out_trade_no: body.out_trade_no,
      trade_state: 'NOTPAY',
      amount: { total: 990 },
    });
    expect(unpaid.json.transaction_id).toBeUndefined();
    expect(paid.json).toMatchObject({
      appid: env.WECHAT_APPID,
      mchid: env.WECHAT_MCH_ID,
      transaction_id: '4200000000000000000000000042',
      trade_type: 'JSAPI',
      trade_state: 'SUCCESS',
      success_time: '2026-11-18T19:06:40+08:00',
      payer: { openid: 'oSandboxOpenid000000' },
      amount: { total: 990, payer_total: 990, currency: 'CNY' },
    });
    expect([missing.status, missing.json.code]).toEqual([404, 'ORDER_NOT_EXIST']);
    assertSigned(missing);
    expect([noMchid.status, noMchid.json.code]).toEqual([400, 'PARAM_ERROR']);
  });

  it('delivers a signed, encrypted TRANSACTION.SUCCESS notify to the order notify_url', async () => {
    // Arrange
    const received: { headers: IncomingHttpHeaders; body: string; url: string }[] = [];
    let status = 204;
    const receiver: Server = createServer(async (req, res) => {
      const chunks: Buffer[] = [];
      for await (const chunk of req) chunks.push(chunk as Buffer);
      received.push({
        headers: req.headers,
        body: Buffer.concat(chunks).toString('utf8'),
        url: req.url ?? '',
      });
      res
        .writeHead(status, { 'content-type': 'application/json' })
        .end(status === 204 ? '' : '{"code":"FAIL"}');
    });
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
    const notifyUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/wechat/notify`;
    const body = jsapiBody({ notify_url: notifyUrl });
    await call(base, 'POST', JSAPI, body);
    const order = store.orders.get(body.out_trade_no as string) as SandboxOrder;
    const unpaid = await store.notifiers.v3?.(order);
    Object.assign(order, {
      tradeState: 'SUCCESS',
      transactionId: '4200000000000000000000000077',
      paidAt: 1_795_000_000,
    });
    // Act
    const accepted = await store.notifiers.v3?.(order);
    status = 500;
    const refused = await store.notifiers.v3?.(order);
    receiver.closeAllConnections();
    await new Promise<void>((resolve) => receiver.close(() => resolve()));
    // Assess
    expect(unpaid?.accepted).toBe(false);
    expect(accepted).toEqual({ status: 204, reply: '', accepted: true });
    expect(refused).toMatchObject({ status: 500, accepted: false });
    const first = received[0] as (typeof received)[number];
    expect(first.url).toBe('/wechat/notify');
    expect(first.headers['content-type']).toBe('application/json');
    verifier.verify({
      serial: first.headers['wechatpay-serial'] as string,
      signature: first.headers['wechatpay-signature'] as string,
      timestamp: first.headers['wechatpay-timestamp'] as string,
      nonce: first.headers['wechatpay-nonce'] as string,
      body: first.body,
      now: Math.floor(Date.now() / 1000),
    });
    const envelope = JSON.parse(first.body);
    expect(envelope).toMatchObject({
      id: expect.stringMatching(/^EV-/),
      create_time: expect.stringMatching(/\+08:00$/),
      resource_type: 'encrypt-resource',
      event_type: 'TRANSACTION.SUCCESS',
      summary: '支付成功',
      resource: {
        original_type: 'transaction',
        algorithm: 'AEAD_AES_256_GCM',
        associated_data: 'transaction',
      },
    });
    expect(Buffer.byteLength(envelope.resource.nonce)).toBe(12);
    expect(JSON.parse(decryptResource(envelope.resource, SETTINGS.apiV3Key))).toMatchObject({
      out_trade_no: body.out_trade_no,
      transaction_id: '4200000000000000000000000077',
      trade_state: 'SUCCESS',
      amount: { total: 1800, currency: 'CNY' },
    });
    expect(received[0]?.headers['wechatpay-nonce']).not.toBe(received[1]?.headers['wechatpay-nonce']);
  });
});

describe('sandbox WeChat Pay v3 in certificate mode', () => {
  it('signs under the platform certificate serial', async () => {
    // Arrange
    const { sandbox } = await startSandbox({ mode: 'certificate' });
    // Act
    const answer = await call(sandbox.baseUrl, 'POST', JSAPI, jsapiBody());
    await sandbox.close();
    // Assess
    expect(answer.status).toBe(200);
    expect(assertSigned(answer)).toBe(new X509Certificate(DEV_CERT).serialNumber.toUpperCase());
  });

  it('derives its settings from the environment and the dev keys', () => {
    // Assess
    expect(SETTINGS).toMatchObject({
      appId: env.WECHAT_APPID,
      mchId: env.WECHAT_MCH_ID,
      merchantSerialNo: env.WECHAT_MCH_SERIAL_NO,
      publicKeyId: env.WECHAT_PAY_PUBLIC_KEY_ID,
      platformCertSerial: '5157F09EFDC096DE15EBE81A47057A7232F1B8E1',
      mode: 'public-key',
    });
    expect(SETTINGS.apiV3Key).toHaveLength(32);
    expect(SETTINGS.merchantPublicKey.type).toBe('public');
  });
});
