import { createPrivateKey, createPublicKey, createSecretKey, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { NotifyRequest } from '#lib/clients/payment-provider';
import { type V3ClientConfig, WechatPayV3 } from '#lib/clients/wechat-pay-v3';
import { ConflictError, NotifyRejectedError, ServiceUnavailableError, UpstreamError } from '#lib/errors';
import { buildV3Notify } from '#lib/wechat-pay/notify-builders';
import { formatRfc3339Cst } from '#lib/wechat-pay/time';
import {
  createVerifier,
  parseAuthorization,
  verifyRsaSha256,
  wechatpayHeaders,
} from '#lib/wechat-pay/v3-protocol';
import { PayStore, type SandboxOrder } from '#local/sandbox/pay-store';
import {
  type PayV3Settings,
  payV3SettingsFromEnv,
  registerPayV3,
  v3Transaction,
} from '#local/sandbox/pay-v3';
import { Sandbox } from '#local/sandbox/server';
import { rejection, thrown } from '#test/helpers/outcomes';
import { type Captured, type ScriptedServer, startScripted } from '#test/helpers/scripted-server';

/** What the tests vary: the client config, plus the PEMs the verifier is built from. */
type ConfigOverrides = Partial<Omit<V3ClientConfig, 'payVerifier'>> & { platformCertPems?: string[] };

// Dev keys (local/keys) and test-only fixtures (test/fixtures/wechat-pay/README.md).
const read = (path: string): string => readFileSync(new URL(`../../../../${path}`, import.meta.url), 'utf8');
const DEV_CERT = read('local/keys/wechatpay-platform-cert.pem');
const DEV_CERT_SERIAL = '5157F09EFDC096DE15EBE81A47057A7232F1B8E1';
/** Second platform certificate (rotation); its private half is go-test-private-key.pem. */
const GO_CERT = read('test/fixtures/wechat-pay/go-platform-cert-F5765756002FDD77.pem');
const GO_CERT_SERIAL = 'F5765756002FDD77';
const goKey = createPrivateKey(read('test/fixtures/wechat-pay/go-test-private-key.pem'));

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
const PUB_KEY_ID = SETTINGS.publicKeyId;
const payKey = SETTINGS.payPrivateKey;
const merchantKey = createPrivateKey(env.WECHAT_MCH_PRIVATE_KEY);
const merchantPublicKey = createPublicKey(merchantKey);
const API_V3_KEY = SETTINGS.apiV3Key;

const now = () => Math.floor(Date.now() / 1000);

/** A v3 client config; the verifier is built from the public key and/or platform certificates given. */
function config(overrides: ConfigOverrides = {}): V3ClientConfig {
  const { platformCertPems = [], ...rest } = overrides;
  const payPublicKeyId = rest.payPublicKeyId ?? PUB_KEY_ID;
  const payPublicKeyPem = rest.payPublicKeyPem ?? env.WECHAT_PAY_PUBLIC_KEY;
  return {
    appId: env.WECHAT_APPID,
    mchId: env.WECHAT_MCH_ID,
    mchSerialNo: env.WECHAT_MCH_SERIAL_NO,
    mchPrivateKey: merchantKey,
    apiV3Key: createSecretKey(API_V3_KEY),
    payPublicKeyId,
    payPublicKeyPem,
    payApiBase: 'http://127.0.0.1:1',
    notifyUrl: 'https://merchant.example.com/wechat/notify',
    ...rest,
    payVerifier: createVerifier({
      publicKey: payPublicKeyPem ? { id: payPublicKeyId, pem: payPublicKeyPem } : undefined,
      platformCertificates: platformCertPems,
    }),
  };
}

let sequence = 0;
function prepayRequest(overrides: { outTradeNo?: string; totalFee?: number } = {}) {
  sequence++;
  return {
    outTradeNo: overrides.outTradeNo ?? `V3T${Date.now()}${sequence}`,
    description: '会员-月度会员',
    totalFee: overrides.totalFee ?? 1800,
    openid: 'oSandboxOpenid000000',
    clientIp: '203.0.113.7',
    timeExpire: new Date(Date.now() + 2 * 3600 * 1000),
  };
}

function rejectedStatus(act: () => unknown): number {
  const error = thrown(act);
  expect(error).toBeInstanceOf(NotifyRejectedError);
  return (error as NotifyRejectedError).status;
}

/** An in-process WeChat sandbox with the v3 endpoints on a free port. */
async function startSandbox(overrides: Partial<PayV3Settings> = {}) {
  const sandbox = new Sandbox();
  const store = new PayStore();
  registerPayV3(sandbox, store, { ...SETTINGS, ...overrides });
  const baseUrl = await sandbox.listen(0);
  return { sandbox, store, baseUrl };
}

/** A signed answer as WeChat Pay would send it. */
function signed(
  body: string,
  options: { key?: KeyObject; serial?: string; timestamp?: number } = {},
): Record<string, string> {
  return {
    'content-type': 'application/json',
    ...wechatpayHeaders(options.key ?? payKey, options.serial ?? PUB_KEY_ID, body, options.timestamp),
  };
}

const TRANSACTION = {
  appid: env.WECHAT_APPID,
  mchid: env.WECHAT_MCH_ID,
  out_trade_no: 'M20261121080000abcdefABCDEF',
  transaction_id: '4200000215201811190261405420',
  trade_type: 'JSAPI',
  trade_state: 'SUCCESS',
  trade_state_desc: '支付成功',
  bank_type: 'OTHERS',
  attach: '',
  success_time: '2026-11-21T16:05:09+08:00',
  payer: { openid: 'oSandboxOpenid000000' },
  amount: { total: 1800, payer_total: 1700, currency: 'CNY', payer_currency: 'CNY' },
};

const EXPECTED_REPORT = {
  outTradeNo: TRANSACTION.out_trade_no,
  transactionId: TRANSACTION.transaction_id,
  totalFee: 1800,
  currency: 'CNY',
  paidAt: '2026-11-21T08:05:09.000Z',
  appId: TRANSACTION.appid,
  mchId: TRANSACTION.mchid,
  bankType: 'OTHERS',
  cashFee: 1700,
};

/** A notify as API Gateway payload 2.0 hands it over: header names lower-cased. */
function notifyRequest(
  overrides: Partial<Parameters<typeof buildV3Notify>[0]> & { transaction?: Record<string, unknown> } = {},
): NotifyRequest & { headers: Record<string, string> } {
  const built = buildV3Notify({
    transaction: TRANSACTION,
    apiV3Key: API_V3_KEY,
    privateKey: payKey,
    serial: PUB_KEY_ID,
    ...overrides,
  });
  const headers = Object.fromEntries(
    Object.entries(built.headers).map(([name, value]) => [name.toLowerCase(), value]),
  );
  return { headers, body: built.body };
}

/** Re-signs a (tampered) body with fresh valid headers. */
function resigned(body: string, serial = PUB_KEY_ID, key = payKey): NotifyRequest {
  const headers = Object.fromEntries(
    Object.entries(wechatpayHeaders(key, serial, body)).map(([name, value]) => [name.toLowerCase(), value]),
  );
  return { headers, body };
}

describe('WechatPayV3 configuration', () => {
  it('accepts public-key, certificate and combined modes', () => {
    // Act / Assess
    expect(new WechatPayV3(config()).version).toBe('v3');
    expect(new WechatPayV3(config({ payPublicKeyPem: '', platformCertPems: [DEV_CERT] })).version).toBe('v3');
    expect(new WechatPayV3(config({ platformCertPems: [DEV_CERT, GO_CERT] })).version).toBe('v3');
  });
});

describe('WechatPayV3 against the sandbox', () => {
  let sandbox: Sandbox;
  let store: PayStore;
  let client: WechatPayV3;
  let receiver: ScriptedServer;

  beforeAll(async () => {
    receiver = await startScripted();
    ({ sandbox, store } = await startSandbox());
    client = new WechatPayV3(
      config({ payApiBase: sandbox.baseUrl, notifyUrl: `${receiver.url}/wechat/notify` }),
    );
  });
  afterAll(async () => {
    await sandbox.close();
    await receiver.close();
  });
  afterEach(() => sandbox.faults.clear());

  const pay = (outTradeNo: string): SandboxOrder => {
    const order = store.orders.get(outTradeNo) as SandboxOrder;
    order.tradeState = 'SUCCESS';
    order.transactionId = `4200${Date.now()}${sequence}`.slice(0, 28);
    order.paidAt = now();
    return order;
  };

  it('prepays, and the payParams verify with the merchant public key', async () => {
    // Arrange
    const request = prepayRequest();
    // Act
    const prepayId = await client.prepay(request);
    const params = client.payParams(prepayId);
    // Assess
    expect(prepayId).toMatch(/^wx\w+$/);
    const order = store.orders.get(request.outTradeNo);
    expect(order).toMatchObject({
      version: 'v3',
      totalFee: 1800,
      openid: request.openid,
      appId: env.WECHAT_APPID,
      mchId: env.WECHAT_MCH_ID,
      notifyUrl: `${receiver.url}/wechat/notify`,
      tradeState: 'NOTPAY',
    });
    expect(params.package).toBe(`prepay_id=${prepayId}`);
    expect(params.signType).toBe('RSA');
    const message = `${env.WECHAT_APPID}\n${params.timeStamp}\n${params.nonceStr}\n${params.package}\n`;
    expect(verifyRsaSha256(merchantPublicKey, message, params.paySign)).toBe(true);
    expect(await client.prepay(request)).toBe(prepayId);
  });

  it('maps a paid or closed order to ConflictError and a changed order to UpstreamError', async () => {
    // Arrange
    const paid = prepayRequest();
    const closed = prepayRequest();
    await client.prepay(paid);
    await client.prepay(closed);
    pay(paid.outTradeNo);
    (store.orders.get(closed.outTradeNo) as SandboxOrder).tradeState = 'CLOSED';
    const changed = prepayRequest();
    await client.prepay(changed);
    // Act
    const paidError = await rejection(client.prepay(paid));
    const closedError = await rejection(client.prepay(closed));
    const changedError = await rejection(client.prepay({ ...changed, totalFee: 1 }));
    // Assess
    expect(paidError).toBeInstanceOf(ConflictError);
    expect(paidError).toMatchObject({ code: 'ORDER_PAID', status: 409 });
    expect(closedError).toBeInstanceOf(ConflictError);
    expect(closedError).toMatchObject({ code: 'ORDER_CLOSED', status: 409 });
    expect(changedError).toBeInstanceOf(UpstreamError);
    expect(changedError).toMatchObject({ code: 'WECHAT_PAY_ERROR' });
    expect((changedError as UpstreamError).detail).toContain('INVALID_REQUEST');
  });

  it('queries NOTPAY, NOTEXIST, and SUCCESS with the report after payment', async () => {
    // Arrange
    const request = prepayRequest({ totalFee: 2500 });
    await client.prepay(request);
    // Act
    const unpaid = await client.queryOrder(request.outTradeNo);
    const unknown = await client.queryOrder('NOSUCHORDER000001');
    const order = pay(request.outTradeNo);
    const result = await client.queryOrder(request.outTradeNo);
    // Assess
    expect(unpaid).toEqual({ tradeState: 'NOTPAY' });
    expect(unknown).toEqual({ tradeState: 'NOTEXIST' });
    expect(result).toEqual({
      tradeState: 'SUCCESS',
      report: {
        outTradeNo: request.outTradeNo,
        transactionId: order.transactionId,
        totalFee: 2500,
        currency: 'CNY',
        paidAt: new Date((order.paidAt as number) * 1000).toISOString(),
        appId: env.WECHAT_APPID,
        mchId: env.WECHAT_MCH_ID,
        bankType: 'OTHERS',
        cashFee: 2500,
        paidVia: 'orderquery-v3',
      },
    });
  });

  it('parses the notify the sandbox delivers into a paid report and acknowledges with 204', async () => {
    // Arrange
    const request = prepayRequest({ totalFee: 1800 });
    await client.prepay(request);
    const order = pay(request.outTradeNo);
    receiver.requests.length = 0;
    // Act
    const delivery = await store.notifiers.v3?.(order);
    const captured = receiver.requests[0] as Captured;
    const result = client.parseNotify(
      { headers: captured.headers as Record<string, string>, body: captured.body },
      now(),
    );
    // Assess
    expect(delivery).toEqual({ status: 204, reply: '', accepted: true });
    expect(captured.method).toBe('POST');
    expect(captured.url).toBe('/wechat/notify');
    expect(captured.headers['wechatpay-serial']).toBe(PUB_KEY_ID);
    expect(captured.headers['wechatpay-signature-type']).toBe('WECHATPAY2-SHA256-RSA2048');
    expect(client.accepts({ headers: {}, body: captured.body })).toBe(true);
    expect(JSON.parse(captured.body)).toMatchObject({
      resource_type: 'encrypt-resource',
      event_type: 'TRANSACTION.SUCCESS',
      resource: {
        original_type: 'transaction',
        algorithm: 'AEAD_AES_256_GCM',
        associated_data: 'transaction',
      },
    });
    expect(result).toEqual({
      kind: 'paid',
      report: {
        outTradeNo: request.outTradeNo,
        transactionId: order.transactionId,
        totalFee: 1800,
        currency: 'CNY',
        paidAt: new Date((order.paidAt as number) * 1000).toISOString(),
        appId: env.WECHAT_APPID,
        mchId: env.WECHAT_MCH_ID,
        bankType: 'OTHERS',
        cashFee: 1800,
        paidVia: 'notify-v3',
      },
    });
    expect(client.notifyAck()).toEqual({ statusCode: 204, headers: {}, body: '' });
  });

  it('retries once on a signed SYSTEM_ERROR, then gives up with 503 on repeated 5xx', async () => {
    // Arrange
    const path = '/v3/pay/transactions/jsapi';
    sandbox.faults.set(path, { mode: 'busy', remaining: 1 });
    const before = sandbox.calls.length;
    // Act
    const prepayId = await client.prepay(prepayRequest());
    const retried = sandbox.calls.length - before;
    sandbox.faults.set(path, { mode: '5xx', remaining: 2 });
    const error = await rejection(client.prepay(prepayRequest()));
    // Assess
    expect(prepayId).toMatch(/^wx/);
    expect(retried).toBe(2);
    expect(error).toBeInstanceOf(ServiceUnavailableError);
    expect(error).toMatchObject({ code: 'WECHAT_PAY_UNAVAILABLE', status: 503 });
  });
});

describe('WechatPayV3 key modes against the sandbox', () => {
  let publicKeyMode: Awaited<ReturnType<typeof startSandbox>>;
  let certificateMode: Awaited<ReturnType<typeof startSandbox>>;

  beforeAll(async () => {
    publicKeyMode = await startSandbox({ mode: 'public-key' });
    certificateMode = await startSandbox({ mode: 'certificate' });
  });
  afterAll(async () => {
    await publicKeyMode.sandbox.close();
    await certificateMode.sandbox.close();
  });

  it('verifies certificate-mode answers with the platform certificate', async () => {
    // Arrange
    const client = new WechatPayV3(
      config({ payApiBase: certificateMode.baseUrl, payPublicKeyPem: '', platformCertPems: [DEV_CERT] }),
    );
    // Act
    const prepayId = await client.prepay(prepayRequest());
    // Assess
    expect(prepayId).toMatch(/^wx/);
  });

  it('refuses answers signed under a serial it does not hold', async () => {
    // Arrange
    const publicKeyOnly = new WechatPayV3(config({ payApiBase: certificateMode.baseUrl }));
    const certificateOnly = new WechatPayV3(
      config({ payApiBase: publicKeyMode.baseUrl, payPublicKeyPem: '', platformCertPems: [DEV_CERT] }),
    );
    // Act
    const errors = [
      await rejection(publicKeyOnly.prepay(prepayRequest())),
      await rejection(certificateOnly.prepay(prepayRequest())),
    ];
    // Assess
    for (const error of errors) {
      expect(error).toBeInstanceOf(UpstreamError);
      expect(error).toMatchObject({ code: 'WECHAT_PAY_BAD_SIGNATURE' });
      expect((error as UpstreamError).detail).toContain('unknown_serial');
    }
  });

  it('combined mode (public key + two platform certificates) accepts both sandbox modes', async () => {
    // Arrange
    const combined = (baseUrl: string) =>
      new WechatPayV3(config({ payApiBase: baseUrl, platformCertPems: [DEV_CERT, GO_CERT] }));
    // Act
    const viaKey = await combined(publicKeyMode.baseUrl).prepay(prepayRequest());
    const viaCert = await combined(certificateMode.baseUrl).prepay(prepayRequest());
    // Assess
    expect(viaKey).toMatch(/^wx/);
    expect(viaCert).toMatch(/^wx/);
  });
});

describe('WechatPayV3 against forged, unsigned and failing answers', () => {
  let upstream: ScriptedServer;
  let client: WechatPayV3;

  beforeAll(async () => {
    upstream = await startScripted();
    client = new WechatPayV3(config({ payApiBase: upstream.url }));
  });
  afterAll(() => upstream.close());
  afterEach(() => {
    upstream.requests.length = 0;
  });

  const prepayBody = '{"prepay_id":"wx201410272009395522657a690389285100"}';

  it('sends the signed request WeChat expects', async () => {
    // Arrange
    upstream.next(200, prepayBody, signed(prepayBody));
    const request = prepayRequest();
    // Act
    await client.prepay(request);
    // Assess
    const sent = upstream.requests[0] as Captured;
    expect(sent.method).toBe('POST');
    expect(sent.url).toBe('/v3/pay/transactions/jsapi');
    expect(sent.headers.accept).toBe('application/json');
    expect(sent.headers['content-type']).toBe('application/json');
    expect(sent.headers['wechatpay-serial']).toBe(PUB_KEY_ID);
    expect(sent.headers['user-agent']).toBeTruthy();
    expect(JSON.parse(sent.body)).toEqual({
      appid: env.WECHAT_APPID,
      mchid: env.WECHAT_MCH_ID,
      description: request.description,
      out_trade_no: request.outTradeNo,
      time_expire: formatRfc3339Cst(request.timeExpire),
      notify_url: 'https://merchant.example.com/wechat/notify',
      amount: { total: 1800, currency: 'CNY' },
      payer: { openid: request.openid },
      scene_info: { payer_client_ip: '203.0.113.7' },
    });
    expect(JSON.parse(sent.body).time_expire).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\+08:00$/);
    const auth = parseAuthorization(sent.headers.authorization as string);
    expect(auth.mchid).toBe(env.WECHAT_MCH_ID);
    expect(auth.serial_no).toBe(env.WECHAT_MCH_SERIAL_NO);
    expect(Math.abs(Number(auth.timestamp) - now())).toBeLessThanOrEqual(5);
    const message = `POST\n/v3/pay/transactions/jsapi\n${auth.timestamp}\n${auth.nonce_str}\n${sent.body}\n`;
    expect(verifyRsaSha256(merchantPublicKey, message, auth.signature)).toBe(true);
  });

  it('signs the query URL with its ?mchid= and sends no Wechatpay-Serial in certificate mode', async () => {
    // Arrange
    const certClient = new WechatPayV3(
      config({ payApiBase: upstream.url, payPublicKeyPem: '', platformCertPems: [DEV_CERT] }),
    );
    const body = JSON.stringify({ ...TRANSACTION, trade_state: 'NOTPAY' });
    upstream.next(200, body, signed(body, { serial: DEV_CERT_SERIAL }));
    // Act
    const result = await certClient.queryOrder('M20261121080000abcdefABCDEF');
    // Assess
    const sent = upstream.requests[0] as Captured;
    const url = `/v3/pay/transactions/out-trade-no/M20261121080000abcdefABCDEF?mchid=${env.WECHAT_MCH_ID}`;
    expect(result).toEqual({ tradeState: 'NOTPAY' });
    expect(sent.method).toBe('GET');
    expect(sent.url).toBe(url);
    expect(sent.body).toBe('');
    expect(sent.headers['wechatpay-serial']).toBeUndefined();
    const auth = parseAuthorization(sent.headers.authorization as string);
    const message = `GET\n${url}\n${auth.timestamp}\n${auth.nonce_str}\n\n`;
    expect(verifyRsaSha256(merchantPublicKey, message, auth.signature)).toBe(true);
  });

  it('treats an unsigned, foreign-signed, stale or tampered 2xx as forged', async () => {
    // Arrange
    const otherKeyHeaders = signed(prepayBody, { key: goKey });
    const staleHeaders = signed(prepayBody, { timestamp: now() - 301 });
    // +302: the client checks a moment later, and a second boundary in between must not bring it to 300.
    const futureHeaders = signed(prepayBody, { timestamp: now() + 302 });
    const tampered = prepayBody.replace('wx2014', 'wx2015');
    const cases: [string, Record<string, string>, string][] = [
      ['unsigned', { 'content-type': 'application/json' }, 'missing_header'],
      ['another key', otherKeyHeaders, 'bad_signature'],
      ['stale', staleHeaders, 'stale_timestamp'],
      ['future', futureHeaders, 'stale_timestamp'],
      ['tampered', signed(prepayBody), 'bad_signature'],
      [
        'unknown serial',
        signed(prepayBody, { serial: 'PUB_KEY_ID_0000000000000000000000000000000099' }),
        'unknown_serial',
      ],
    ];
    for (const [name, headers, reason] of cases) {
      upstream.next(200, name === 'tampered' ? tampered : prepayBody, headers);
      // Act
      const error = await rejection(client.prepay(prepayRequest()));
      // Assess
      expect(error, name).toBeInstanceOf(UpstreamError);
      expect(error, name).toMatchObject({ code: 'WECHAT_PAY_BAD_SIGNATURE', status: 502 });
      expect((error as UpstreamError).detail, name).toContain(reason);
    }
    expect(upstream.requests).toHaveLength(cases.length);
  });

  it('does not trust an unsigned error answer either', async () => {
    // Arrange
    upstream.next(400, '{"code":"ORDERPAID","message":"该订单已支付"}', {
      'content-type': 'application/json',
    });
    // Act
    const error = await rejection(client.prepay(prepayRequest()));
    // Assess
    expect(error).toBeInstanceOf(UpstreamError);
    expect(error).toMatchObject({ code: 'WECHAT_PAY_BAD_SIGNATURE' });
  });

  it('maps signed error answers: 429 → 503 without retry, others → UpstreamError with the code', async () => {
    // Arrange
    const limited = '{"code":"FREQUENCY_LIMITED","message":"频率超限"}';
    const param = '{"code":"PARAM_ERROR","message":"参数错误"}';
    upstream.next(429, limited, signed(limited));
    upstream.next(400, param, signed(param));
    // Act
    const limitedError = await rejection(client.prepay(prepayRequest()));
    const paramError = await rejection(client.queryOrder('M20261121080000abcdefABCDEF'));
    // Assess
    expect(limitedError).toBeInstanceOf(ServiceUnavailableError);
    expect(limitedError).toMatchObject({ code: 'WECHAT_PAY_UNAVAILABLE', status: 503 });
    expect(paramError).toBeInstanceOf(UpstreamError);
    expect(paramError).toMatchObject({ code: 'WECHAT_PAY_ERROR' });
    expect((paramError as UpstreamError).detail).toContain('PARAM_ERROR');
    expect(upstream.requests).toHaveLength(2);
  });

  it('retries a 5xx once with the identical body and a fresh Authorization', async () => {
    // Arrange
    const busy = '{"code":"SYSTEM_ERROR","message":"系统繁忙"}';
    upstream.next(500, busy, signed(busy));
    upstream.next(200, prepayBody, signed(prepayBody));
    // Act
    const prepayId = await client.prepay(prepayRequest());
    // Assess
    expect(prepayId).toBe('wx201410272009395522657a690389285100');
    const [first, second] = upstream.requests as [Captured, Captured];
    expect(second.body).toBe(first.body);
    const auth = parseAuthorization(second.headers.authorization as string);
    const message = `POST\n/v3/pay/transactions/jsapi\n${auth.timestamp}\n${auth.nonce_str}\n${second.body}\n`;
    expect(verifyRsaSha256(merchantPublicKey, message, auth.signature)).toBe(true);
  });

  it('answers 503 after a network failure and its one retry', async () => {
    // Arrange
    const unreachable = new WechatPayV3(config({ payApiBase: 'http://127.0.0.1:1' }));
    // Act
    const error = await rejection(unreachable.queryOrder(TRANSACTION.out_trade_no));
    // Assess
    expect(error).toBeInstanceOf(ServiceUnavailableError);
    expect(error).toMatchObject({ code: 'WECHAT_PAY_UNAVAILABLE' });
    expect((error as ServiceUnavailableError).detail).toContain('network');
  });

  it('does not follow a redirect, and an unsigned one is forged', async () => {
    // Arrange
    upstream.next(302, '', { location: 'http://127.0.0.1:1/elsewhere' });
    // Act
    const error = await rejection(client.prepay(prepayRequest()));
    // Assess
    expect(error).toMatchObject({ code: 'WECHAT_PAY_BAD_SIGNATURE' });
    expect(upstream.requests).toHaveLength(1);
  });

  it('refuses a verified SUCCESS query whose amount is not a positive integer', async () => {
    // Arrange
    for (const total of [18.5, 0, '1800', 2 ** 53]) {
      const body = JSON.stringify({ ...TRANSACTION, amount: { ...TRANSACTION.amount, total } });
      upstream.next(200, body, signed(body));
      // Act
      const error = await rejection(client.queryOrder(TRANSACTION.out_trade_no));
      // Assess
      expect(error, String(total)).toBeInstanceOf(UpstreamError);
      expect(error, String(total)).toMatchObject({ code: 'WECHAT_PAY_ERROR' });
    }
  });

  it('reads a verified SUCCESS query into an orderquery-v3 report', async () => {
    // Arrange
    const body = JSON.stringify(TRANSACTION);
    upstream.next(200, body, signed(body));
    // Act
    const result = await client.queryOrder(TRANSACTION.out_trade_no);
    // Assess
    expect(result).toEqual({
      tradeState: 'SUCCESS',
      report: { ...EXPECTED_REPORT, paidVia: 'orderquery-v3' },
    });
  });
});

describe('WechatPayV3.parseNotify', () => {
  const client = new WechatPayV3(config());
  const NAMES = ['wechatpay-serial', 'wechatpay-signature', 'wechatpay-timestamp', 'wechatpay-nonce'];

  it('accepts a genuine notify, with header names in any case', () => {
    // Arrange
    const request = notifyRequest();
    const capitalised = buildV3Notify({
      transaction: TRANSACTION,
      apiV3Key: API_V3_KEY,
      privateKey: payKey,
      serial: PUB_KEY_ID,
    });
    // Act
    const result = client.parseNotify(request, now());
    const capitalisedResult = client.parseNotify(capitalised, now());
    // Assess
    expect(result).toEqual({ kind: 'paid', report: { ...EXPECTED_REPORT, paidVia: 'notify-v3' } });
    expect(capitalisedResult).toEqual(result);
  });

  it.each(NAMES)('refuses a notify without %s with 401', (name) => {
    // Arrange
    const request = notifyRequest();
    delete request.headers[name];
    // Act / Assess
    expect(rejectedStatus(() => client.parseNotify(request, now()))).toBe(401);
  });

  it.each(NAMES)('refuses a notify with an empty %s with 401', (name) => {
    // Arrange
    const request = notifyRequest();
    request.headers[name] = '';
    // Act / Assess
    expect(rejectedStatus(() => client.parseNotify(request, now()))).toBe(401);
  });

  it.each(NAMES)(
    'refuses a notify carrying %s under two spellings with 401, even with equal values',
    (name) => {
      // Arrange: the genuine header plus a capitalised copy of it (a proxy that appended one).
      const request = notifyRequest();
      const capitalised = name.replace(
        /(^|-)([a-z])/g,
        (_all, dash: string, letter: string) => dash + letter.toUpperCase(),
      );
      request.headers[capitalised] = request.headers[name] as string;
      // Act / Assess
      expect(rejectedStatus(() => client.parseNotify(request, now()))).toBe(401);
    },
  );

  it('enforces ±300 s on Wechatpay-Timestamp', () => {
    // Arrange
    const t = now();
    const at = (timestamp: number) => notifyRequest({ timestamp });
    // Act / Assess
    expect(rejectedStatus(() => client.parseNotify(at(t - 301), t))).toBe(401);
    expect(rejectedStatus(() => client.parseNotify(at(t + 301), t))).toBe(401);
    expect(client.parseNotify(at(t - 299), t).kind).toBe('paid');
    expect(client.parseNotify(at(t + 299), t).kind).toBe('paid');
  });

  it('refuses non-numeric, millisecond, negative and huge timestamps', () => {
    // Arrange
    const request = notifyRequest();
    for (const timestamp of ['abc', String(Date.now()), '-1', '1e20', ' 1700000000']) {
      // Act / Assess
      const tampered = { ...request, headers: { ...request.headers, 'wechatpay-timestamp': timestamp } };
      expect(rejectedStatus(() => client.parseNotify(tampered, now()))).toBe(401);
    }
  });

  it('refuses an unknown serial, a SIGNTEST probe and comma-joined duplicate signatures', () => {
    // Arrange
    const request = notifyRequest();
    const signature = request.headers['wechatpay-signature'] as string;
    const variants: Record<string, string>[] = [
      { 'wechatpay-serial': 'PUB_KEY_ID_0000000000000000000000000000000099' },
      { 'wechatpay-serial': GO_CERT_SERIAL },
      { 'wechatpay-signature': `WECHATPAY/SIGNTEST/${signature}` },
      { 'wechatpay-signature': `${signature},${signature}` },
    ];
    for (const variant of variants) {
      // Act / Assess
      const tampered = { ...request, headers: { ...request.headers, ...variant } };
      expect(rejectedStatus(() => client.parseNotify(tampered, now()))).toBe(401);
    }
  });

  it('refuses a body that differs from the signed bytes (pretty-printed, one byte changed)', () => {
    // Arrange
    const request = notifyRequest();
    const pretty = JSON.stringify(JSON.parse(request.body), null, 2);
    const oneByte = request.body.replace('"TRANSACTION.SUCCESS"', '"TRANSACTION.SUCCESs"');
    // Act / Assess
    expect(rejectedStatus(() => client.parseNotify({ ...request, body: pretty }, now()))).toBe(401);
    expect(rejectedStatus(() => client.parseNotify({ ...request, body: `${request.body} ` }, now()))).toBe(
      401,
    );
    expect(rejectedStatus(() => client.parseNotify({ ...request, body: oneByte }, now()))).toBe(401);
  });

  it('refuses a signed notify whose GCM tag, key, algorithm, nonce or associated data is wrong with 400', () => {
    // Arrange
    const envelope = JSON.parse(notifyRequest().body);
    const bytes = Buffer.from(envelope.resource.ciphertext, 'base64');
    bytes[bytes.length - 1] = (bytes[bytes.length - 1] ?? 0) ^ 0x01;
    const otherKey = JSON.parse(
      notifyRequest({ apiV3Key: Buffer.from('ffffffffffffffffffffffffffffffff') }).body,
    );
    const resources = [
      { ...envelope.resource, ciphertext: bytes.toString('base64') },
      otherKey.resource,
      { ...envelope.resource, algorithm: 'AEAD_AES_128_GCM' },
      { ...envelope.resource, nonce: 'short' },
      { ...envelope.resource, associated_data: 'certificate' },
      { ...envelope.resource, associated_data: 'x'.repeat(17) },
      { ...envelope.resource, ciphertext: 'not base64!' },
    ];
    for (const resource of resources) {
      // Act / Assess
      const request = resigned(JSON.stringify({ ...envelope, resource }));
      expect(rejectedStatus(() => client.parseNotify(request, now()))).toBe(400);
    }
  });

  it('acknowledges without credit a verified non-SUCCESS trade_state and other event types', () => {
    // Arrange
    const notPaid = notifyRequest({ transaction: { ...TRANSACTION, trade_state: 'NOTPAY' } });
    const refundOnPaymentEvent = notifyRequest({ originalType: 'refund' });
    const paymentOnRefundEvent = notifyRequest({ eventType: 'REFUND.SUCCESS' });
    const unknownEvent = notifyRequest({ eventType: 'TRANSACTION.CLOSED' });
    // Act
    const results = [notPaid, refundOnPaymentEvent, paymentOnRefundEvent, unknownEvent].map((request) =>
      client.parseNotify(request, now()),
    );
    // Assess
    for (const result of results) expect(result.kind).toBe('ignored');
    expect(results[0]).toEqual({ kind: 'ignored', reason: 'trade_state NOTPAY' });
    expect(results[2]).toEqual({ kind: 'ignored', reason: 'resource is not a refund' });
  });

  it.each([
    ['REFUND.SUCCESS', 'SUCCESS'],
    ['REFUND.CLOSED', 'CLOSED'],
    ['REFUND.ABNORMAL', 'ABNORMAL'],
  ])('reads a verified %s notify into a refund report', (eventType, status) => {
    // Arrange
    const request = notifyRequest({
      eventType,
      originalType: 'refund',
      transaction: {
        mchid: TRANSACTION.mchid,
        out_trade_no: TRANSACTION.out_trade_no,
        transaction_id: TRANSACTION.transaction_id,
        out_refund_no: 'R20261121000000abcdefABCDEF',
        refund_id: '50300000000000000000000000001',
        refund_status: status,
        ...(status === 'SUCCESS' ? { success_time: '2026-11-21T16:30:00+08:00' } : {}),
        amount: { total: 1800, refund: 600, payer_total: 1800, payer_refund: 600 },
      },
    });
    // Act
    const result = client.parseNotify(request, now());
    // Assess
    expect(result).toEqual({
      kind: 'refund',
      report: {
        outRefundNo: 'R20261121000000abcdefABCDEF',
        outTradeNo: TRANSACTION.out_trade_no,
        status,
        refundId: '50300000000000000000000000001',
        refundFee: 600,
        successAt: status === 'SUCCESS' ? '2026-11-21T08:30:00.000Z' : undefined,
        mchId: TRANSACTION.mchid,
        via: 'notify-v3',
      },
    });
  });

  it('refuses verified but malformed content with 400', () => {
    // Arrange
    const bad = [
      { ...TRANSACTION, amount: { ...TRANSACTION.amount, total: 18.5 } },
      { ...TRANSACTION, amount: { ...TRANSACTION.amount, total: '1800' } },
      { ...TRANSACTION, amount: { ...TRANSACTION.amount, total: 0 } },
      { ...TRANSACTION, amount: { ...TRANSACTION.amount, payer_total: -1 } },
      { ...TRANSACTION, success_time: '20261121160509' },
      { ...TRANSACTION, out_trade_no: '' },
      { ...TRANSACTION, transaction_id: undefined },
    ];
    for (const transaction of bad) {
      // Act / Assess
      const request = notifyRequest({ transaction });
      expect(rejectedStatus(() => client.parseNotify(request, now()))).toBe(400);
    }
  });

  it('treats non-JSON: not accepted; signed → 400; unsigned → 401', () => {
    // Arrange
    const xml = '<xml><return_code>SUCCESS</return_code></xml>';
    const broken = '{"event_type":"TRANSACTION.SUCCESS"';
    // Act / Assess
    expect(client.accepts({ headers: {}, body: xml })).toBe(false);
    expect(client.accepts({ headers: {}, body: '' })).toBe(false);
    expect(client.accepts({ headers: {}, body: broken })).toBe(true);
    expect(rejectedStatus(() => client.parseNotify(resigned(broken), now()))).toBe(400);
    expect(rejectedStatus(() => client.parseNotify(resigned('[1,2]'), now()))).toBe(400);
    expect(rejectedStatus(() => client.parseNotify({ headers: {}, body: broken }, now()))).toBe(401);
  });

  it('verifies across a certificate rotation (combined mode with two platform certificates)', () => {
    // Arrange
    const rotating = new WechatPayV3(config({ platformCertPems: [DEV_CERT, GO_CERT] }));
    const viaGo = notifyRequest({ privateKey: goKey, serial: GO_CERT_SERIAL });
    const viaDevCert = notifyRequest({ serial: DEV_CERT_SERIAL });
    const viaPublicKey = notifyRequest();
    const wrongPair = notifyRequest({ privateKey: goKey, serial: DEV_CERT_SERIAL });
    // Act / Assess
    expect(rotating.parseNotify(viaGo, now()).kind).toBe('paid');
    expect(rotating.parseNotify(viaDevCert, now()).kind).toBe('paid');
    expect(rotating.parseNotify(viaPublicKey, now()).kind).toBe('paid');
    expect(rejectedStatus(() => rotating.parseNotify(wrongPair, now()))).toBe(401);
    expect(rejectedStatus(() => client.parseNotify(viaGo, now()))).toBe(401);
  });

  it('verifies in certificate-only mode by the lower-case serial too', () => {
    // Arrange
    const certOnly = new WechatPayV3(config({ payPublicKeyPem: '', platformCertPems: [DEV_CERT] }));
    // Act / Assess
    expect(certOnly.parseNotify(notifyRequest({ serial: DEV_CERT_SERIAL.toLowerCase() }), now()).kind).toBe(
      'paid',
    );
    expect(rejectedStatus(() => certOnly.parseNotify(notifyRequest(), now()))).toBe(401);
  });

  it('builds the FAIL reply with the given 4xx/5xx status', () => {
    // Act
    const unauthorized = client.notifyFail(401, '签名验证失败');
    const server = client.notifyFail(500, 'internal error');
    const nonsense = client.notifyFail(200, 'x');
    // Assess
    expect(unauthorized).toEqual({
      statusCode: 401,
      headers: { 'content-type': 'application/json' },
      body: '{"code":"FAIL","message":"签名验证失败"}',
    });
    expect(server.statusCode).toBe(500);
    expect(JSON.parse(server.body)).toEqual({ code: 'FAIL', message: 'internal error' });
    expect(nonsense.statusCode).toBe(500);
  });

  it('v3Transaction of a paid sandbox order reads back through the same report path', () => {
    // Arrange
    const order: SandboxOrder = {
      version: 'v3',
      outTradeNo: 'M20261121080000abcdefABCDEF',
      appId: env.WECHAT_APPID,
      mchId: env.WECHAT_MCH_ID,
      openid: 'oSandboxOpenid000000',
      description: '会员',
      totalFee: 990,
      notifyUrl: 'http://127.0.0.1:1/notify',
      fingerprint: '',
      prepayId: 'wx1',
      tradeState: 'SUCCESS',
      createdAt: 1_795_000_000,
      transactionId: '4200000000000000000000000001',
      paidAt: 1_795_000_100,
    };
    // Act
    const result = client.parseNotify(notifyRequest({ transaction: v3Transaction(order) }), now());
    // Assess
    expect(result).toMatchObject({
      kind: 'paid',
      report: { totalFee: 990, paidAt: new Date(1_795_000_100_000).toISOString(), cashFee: 990 },
    });
  });
});
