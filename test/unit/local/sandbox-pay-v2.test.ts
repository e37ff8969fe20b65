import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { WechatPayV2 } from '#lib/clients/wechat-pay-v2';
import { ConflictError, UpstreamError } from '#lib/errors';
import {
  formatTimeExpire,
  nonceStr,
  parseV2Xml,
  signV2,
  toV2Xml,
  V2_SUCCESS_REPLY,
  type V2SignType,
  v2FailReply,
  verifyV2Sign,
} from '#lib/wechat-pay/v2-protocol';
import { registerFaultControl, registerPayControl } from '#local/sandbox/control';
import { type Delivery, PayStore } from '#local/sandbox/pay-store';
import { registerPayV2 } from '#local/sandbox/pay-v2';
import { Sandbox } from '#local/sandbox/server';

const SETTINGS = {
  appId: 'wx5a1d0c0ffee0d0e1',
  mchId: '1900000109',
  mchKey: 'sandboxMchKey0000000000000000000',
};
const OTHER_KEY = 'otherMchKey000000000000000000000';
const SPEEDUP = 1000;

/** A merchant notify endpoint that records every delivery and answers from a script (SUCCESS once it runs out). */
class NotifyEndpoint {
  readonly received: { headers: IncomingHttpHeaders; body: string }[] = [];
  replies: string[] = [];
  private readonly server: Server = createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    this.received.push({ headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
    res.writeHead(200, { 'content-type': 'text/xml' }).end(this.replies.shift() ?? V2_SUCCESS_REPLY);
  });
  url = '';

  async start(): Promise<void> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/wechat/notify`;
  }

  stop(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

async function startSandbox(speedup = SPEEDUP) {
  const sandbox = new Sandbox();
  const store = new PayStore();
  registerPayV2(sandbox, store, SETTINGS);
  registerFaultControl(sandbox);
  registerPayControl(sandbox, store, { speedup });
  const url = await sandbox.listen(0);
  return { sandbox, store, url };
}

/** What the control routes answer (the fields these tests read). */
interface ControlAnswer {
  outTradeNo?: string;
  transactionId?: string;
  delivered?: boolean;
  status?: number | null;
  reply?: string;
  error?: string;
  notifications?: Delivery[];
}

async function control(url: string, path: string, body?: unknown) {
  const response = await fetch(`${url}${path}`, {
    method: body === undefined ? 'GET' : 'POST',
    headers: { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: response.status, body: (await response.json()) as ControlAnswer };
}

/** POSTs raw v2 XML the way a merchant does; returns the parsed answer and its HTTP facts. */
async function rawCall(url: string, path: string, body: string) {
  const response = await fetch(`${url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'text/xml' },
    body,
  });
  const text = await response.text();
  return {
    status: response.status,
    contentType: response.headers.get('content-type'),
    text,
    xml: parseV2Xml(text),
  };
}

/** A signed request with our appid/mch_id; `fields` override the defaults before signing. */
function signedXml(
  fields: Record<string, string | number | undefined>,
  signType: V2SignType = 'MD5',
  key = SETTINGS.mchKey,
): string {
  const params: Record<string, string | number | undefined> = {
    appid: SETTINGS.appId,
    mch_id: SETTINGS.mchId,
    nonce_str: nonceStr(),
    sign_type: signType,
    ...fields,
  };
  params.sign = signV2(params, key, signType);
  return toV2Xml(params);
}

let seq = 0;
function outTradeNo(): string {
  seq += 1;
  return `T${Date.now()}${String(seq).padStart(4, '0')}`;
}

function prepayRequest(no = outTradeNo(), totalFee = 1800) {
  return {
    outTradeNo: no,
    description: '会员-月度会员',
    totalFee,
    openid: 'oSandboxOpenid000000',
    clientIp: '127.0.0.1',
    timeExpire: new Date(Date.now() + 2 * 3600_000),
  };
}

/** What a promise rejected with (undefined when it resolved), so no rejection is ever left unhandled. */
function rejection(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => undefined,
    (error: unknown) => error,
  );
}

async function until<T>(read: () => T, done: (value: T) => boolean, timeoutMs = 3000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = read();
    if (done(value)) return value;
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

let env: Awaited<ReturnType<typeof startSandbox>>;
const endpoint = new NotifyEndpoint();

beforeAll(async () => {
  env = await startSandbox();
  await endpoint.start();
});

afterAll(async () => {
  await env.sandbox.close();
  await endpoint.stop();
});

beforeEach(() => {
  endpoint.replies = [];
  env.sandbox.faults.clear();
});

describe.each(['MD5', 'HMAC-SHA256'] as const)('the app client against the v2 sandbox (%s)', (signType) => {
  const client = () =>
    new WechatPayV2({ ...SETTINGS, payApiBase: env.url, notifyUrl: endpoint.url, v2SignType: signType });

  it('returns a prepay_id, the same one for an identical request, and refuses changed parameters', async () => {
    // Prepare
    const request = prepayRequest();
    // Act
    const first = await client().prepay(request);
    const again = await client().prepay(request);
    const changed = await rejection(client().prepay({ ...request, totalFee: 1 }));
    // Assess
    expect(first).toMatch(/^wx\d{14}[0-9a-f]{20}$/);
    expect(again).toBe(first);
    expect(changed).toMatchObject({ detail: 'unifiedorder INVALID_REQUEST' });
  });

  it('surfaces a request signed with the wrong key as an error (SIGNERROR)', async () => {
    // Prepare
    const wrong = new WechatPayV2({
      ...SETTINGS,
      mchKey: OTHER_KEY,
      payApiBase: env.url,
      notifyUrl: endpoint.url,
      v2SignType: signType,
    });
    const request = prepayRequest();
    // Act
    const result = await rejection(wrong.prepay(request));
    const raw = await rawCall(
      env.url,
      '/pay/unifiedorder',
      signedXml({ out_trade_no: outTradeNo(), total_fee: 1 }, signType, OTHER_KEY),
    );
    // Assess
    expect(result).toBeInstanceOf(UpstreamError);
    expect(result).toMatchObject({ detail: expect.stringContaining('签名错误') });
    expect(raw.xml).toMatchObject({ return_code: 'FAIL', return_msg: '签名错误', err_code: 'SIGNERROR' });
    expect(env.store.orders.has(request.outTradeNo)).toBe(false);
  });

  it('queries NOTPAY, pays, retries the notify on WeChat schedule until SUCCESS, then queries SUCCESS', async () => {
    // Prepare
    const request = prepayRequest();
    await client().prepay(request);
    const notpay = await client().queryOrder(request.outTradeNo);
    endpoint.replies = [v2FailReply('try later'), v2FailReply('try later again')];
    const before = endpoint.received.length;
    // Act
    const paid = await control(env.url, '/sandbox/pay', { outTradeNo: request.outTradeNo });
    const deliveries = await until(
      () => env.store.deliveries.filter((d) => d.outTradeNo === request.outTradeNo),
      (list) => list.length >= 3,
    );
    await new Promise((resolve) => setTimeout(resolve, 100));
    const success = await client().queryOrder(request.outTradeNo);
    // Assess: the first delivery was refused, the schedule retried, the third was acknowledged and the last
    expect(notpay).toEqual({ tradeState: 'NOTPAY' });
    expect(paid.status).toBe(200);
    expect(paid.body).toMatchObject({ outTradeNo: request.outTradeNo, delivered: false, status: 200 });
    expect(paid.body.transactionId).toMatch(/^4200\d{24}$/);
    expect(deliveries.map((d) => [d.attempt, d.accepted])).toEqual([
      [1, false],
      [2, false],
      [3, true],
    ]);
    expect(env.store.deliveries.filter((d) => d.outTradeNo === request.outTradeNo)).toHaveLength(3);
    const bodies = endpoint.received.slice(before);
    expect(bodies).toHaveLength(3);
    for (const { headers, body } of bodies) {
      const fields = parseV2Xml(body);
      expect(headers['content-type']).toBe('text/xml');
      expect(verifyV2Sign(fields, SETTINGS.mchKey, [signType])).toBe(true);
      expect(fields).toMatchObject({
        return_code: 'SUCCESS',
        result_code: 'SUCCESS',
        appid: SETTINGS.appId,
        mch_id: SETTINGS.mchId,
        sign_type: signType,
        openid: request.openid,
        out_trade_no: request.outTradeNo,
        transaction_id: paid.body.transactionId,
        total_fee: '1800',
        cash_fee: '1800',
        fee_type: 'CNY',
        trade_type: 'JSAPI',
      });
      expect(fields.time_end).toMatch(/^\d{14}$/);
      const parsed = client().parseNotify({ headers: {}, body });
      expect(parsed).toMatchObject({
        kind: 'paid',
        report: { outTradeNo: request.outTradeNo, totalFee: 1800, transactionId: paid.body.transactionId },
      });
    }
    expect(new Set(bodies.map(({ body }) => parseV2Xml(body).nonce_str)).size).toBe(3);
    expect(success).toMatchObject({
      tradeState: 'SUCCESS',
      report: {
        outTradeNo: request.outTradeNo,
        transactionId: paid.body.transactionId,
        totalFee: 1800,
        cashFee: 1800,
        currency: 'CNY',
        paidVia: 'orderquery-v2',
      },
    });
  });

  it('refuses to prepay a paid order (ORDERPAID → ConflictError) and a closed one (ORDERCLOSED)', async () => {
    // Prepare
    const paidRequest = prepayRequest();
    await client().prepay(paidRequest);
    await control(env.url, '/sandbox/pay', { outTradeNo: paidRequest.outTradeNo });
    const closedRequest = prepayRequest();
    await client().prepay(closedRequest);
    const closed = await rawCall(
      env.url,
      '/pay/closeorder',
      signedXml({ out_trade_no: closedRequest.outTradeNo }, signType),
    );
    // Act
    const repaid = await rejection(client().prepay(paidRequest));
    const reopened = await rejection(client().prepay(closedRequest));
    // Assess
    expect(closed.xml).toMatchObject({ return_code: 'SUCCESS', result_code: 'SUCCESS' });
    expect(repaid).toBeInstanceOf(ConflictError);
    expect(repaid).toMatchObject({ code: 'ORDER_PAID' });
    expect(reopened).toMatchObject({ code: 'ORDER_CLOSED' });
    expect(await client().queryOrder(closedRequest.outTradeNo)).toEqual({ tradeState: 'CLOSED' });
  });

  it('answers an unknown order query with ORDERNOTEXIST', async () => {
    // Act
    const result = await client().queryOrder(outTradeNo());
    // Assess
    expect(result).toEqual({ tradeState: 'ORDERNOTEXIST' });
  });

  it('answers the busy fault with a SYSTEMERROR signed under the request sign type, which the client retries', async () => {
    // Prepare
    await control(env.url, '/sandbox/faults', { endpoint: '/pay/unifiedorder', mode: 'busy', count: 1 });
    const raw = signedXml({ out_trade_no: outTradeNo() }, signType);
    const busy = await rawCall(env.url, '/pay/unifiedorder', raw);
    await control(env.url, '/sandbox/faults', { endpoint: '/pay/unifiedorder', mode: 'busy', count: 1 });
    const calls = env.sandbox.calls.length;
    // Act
    const prepayId = await client().prepay(prepayRequest());
    // Assess
    expect(busy.xml).toMatchObject({ return_code: 'SUCCESS', result_code: 'FAIL', err_code: 'SYSTEMERROR' });
    expect(verifyV2Sign(busy.xml, SETTINGS.mchKey, [signType])).toBe(true);
    expect(prepayId).toMatch(/^wx/);
    expect(env.sandbox.calls.length - calls).toBe(2);
  });
});

describe('v2 sandbox wire format', () => {
  const unifiedOrder = (fields: Record<string, string | number | undefined> = {}) => ({
    body: '会员-月度会员',
    out_trade_no: outTradeNo(),
    total_fee: 1800,
    spbill_create_ip: '127.0.0.1',
    notify_url: endpoint.url,
    trade_type: 'JSAPI',
    openid: 'oSandboxOpenid000000',
    time_expire: formatTimeExpire(new Date(Date.now() + 3600_000)),
    ...fields,
  });

  it('answers signed CDATA XML as text/xml with a fresh nonce_str each time', async () => {
    // Prepare
    const body = signedXml(unifiedOrder(), 'HMAC-SHA256');
    // Act
    const first = await rawCall(env.url, '/pay/unifiedorder', body);
    const second = await rawCall(env.url, '/pay/unifiedorder', body);
    // Assess
    expect(first.status).toBe(200);
    expect(first.contentType).toBe('text/xml');
    expect(first.text).toContain('<return_code><![CDATA[SUCCESS]]></return_code>');
    expect(first.xml.sign).toHaveLength(64);
    expect(verifyV2Sign(first.xml, SETTINGS.mchKey, ['HMAC-SHA256'])).toBe(true);
    expect(first.xml).toMatchObject({ result_code: 'SUCCESS', trade_type: 'JSAPI', appid: SETTINGS.appId });
    expect(second.xml.prepay_id).toBe(first.xml.prepay_id);
    expect(second.xml.nonce_str).not.toBe(first.xml.nonce_str);
  });

  it.each([
    ['a sign_type nobody knows', { sign_type: 'SHA1' }, 'INVALID_REQUEST'],
    ['no openid for JSAPI', { openid: undefined }, 'LACK_PARAMS'],
    ['no spbill_create_ip', { spbill_create_ip: undefined }, 'LACK_PARAMS'],
    ['trade_type NATIVE', { trade_type: 'NATIVE' }, 'INVALID_REQUEST'],
    ['total_fee 0', { total_fee: 0 }, 'INVALID_REQUEST'],
    ['total_fee 18.00', { total_fee: '18.00' }, 'INVALID_REQUEST'],
    ['total_fee 01800', { total_fee: '01800' }, 'INVALID_REQUEST'],
    ['a 5-character out_trade_no', { out_trade_no: 'A1234' }, 'INVALID_REQUEST'],
    ['an out_trade_no with a dot', { out_trade_no: 'ABC.123456' }, 'INVALID_REQUEST'],
    ['a notify_url with a query string', { notify_url: 'https://example.com/notify?a=1' }, 'INVALID_REQUEST'],
    ['a past time_expire', { time_expire: '20200101000000' }, 'INVALID_REQUEST'],
    ['another appid', { appid: 'wx0000000000000000' }, 'APPID_MCHID_NOT_MATCH'],
    ['another mch_id', { mch_id: '1234567890' }, 'MCHID_NOT_EXIST'],
  ])('refuses %s (%j) with %s', async (_name, fields, errCode) => {
    // Act
    const answer = await rawCall(env.url, '/pay/unifiedorder', signedXml(unifiedOrder(fields)));
    // Assess
    expect(answer.xml).toMatchObject({ return_code: 'SUCCESS', result_code: 'FAIL', err_code: errCode });
    expect(verifyV2Sign(answer.xml, SETTINGS.mchKey, ['MD5'])).toBe(true);
  });

  it('refuses a tampered sign and an MD5 sign declared as HMAC-SHA256', async () => {
    // Prepare
    const tampered = signedXml(unifiedOrder()).replace(
      '<total_fee>1800</total_fee>',
      '<total_fee>1</total_fee>',
    );
    const fields = unifiedOrder();
    const mislabelled = toV2Xml({
      appid: SETTINGS.appId,
      mch_id: SETTINGS.mchId,
      nonce_str: nonceStr(),
      ...fields,
      sign_type: 'HMAC-SHA256',
      sign: signV2(
        { appid: SETTINGS.appId, mch_id: SETTINGS.mchId, ...fields, sign_type: 'HMAC-SHA256' },
        SETTINGS.mchKey,
        'MD5',
      ),
    });
    // Act
    const answers = [
      await rawCall(env.url, '/pay/unifiedorder', tampered),
      await rawCall(env.url, '/pay/unifiedorder', mislabelled),
    ];
    // Assess
    for (const answer of answers)
      expect(answer.xml).toMatchObject({ return_code: 'FAIL', err_code: 'SIGNERROR' });
  });

  it.each([
    ['not XML', '{"out_trade_no":"x"}'],
    ['truncated XML', '<xml><appid>wx</xml>'],
    ['an entity declaration', '<!DOCTYPE x [<!ENTITY e "x">]><xml><a>&e;</a></xml>'],
    ['an empty body', ''],
  ])('answers return_code FAIL for %s', async (_name, body) => {
    // Act
    const answer = await rawCall(env.url, '/pay/unifiedorder', body);
    // Assess
    expect(answer.xml.return_code).toBe('FAIL');
    expect(answer.xml.return_msg).toBeTruthy();
    expect(answer.xml.sign).toBeUndefined();
  });

  it('refuses a re-request from the v3 side of the same out_trade_no with OUT_TRADE_NO_USED', async () => {
    // Prepare
    const fields = unifiedOrder();
    const first = await rawCall(env.url, '/pay/unifiedorder', signedXml(fields));
    const order = env.store.orders.get(fields.out_trade_no as string);
    if (order) order.version = 'v3';
    // Act
    const again = await rawCall(env.url, '/pay/unifiedorder', signedXml(fields));
    // Assess
    expect(first.xml.result_code).toBe('SUCCESS');
    expect(again.xml).toMatchObject({ result_code: 'FAIL', err_code: 'OUT_TRADE_NO_USED' });
  });

  it('queries by transaction_id, and refuses to close a paid order', async () => {
    // Prepare
    const fields = unifiedOrder();
    await rawCall(env.url, '/pay/unifiedorder', signedXml(fields));
    const paid = await control(env.url, '/sandbox/pay', { outTradeNo: fields.out_trade_no });
    // Act
    const query = await rawCall(
      env.url,
      '/pay/orderquery',
      signedXml({ transaction_id: paid.body.transactionId }, 'HMAC-SHA256'),
    );
    const close = await rawCall(env.url, '/pay/closeorder', signedXml({ out_trade_no: fields.out_trade_no }));
    const closeUnknown = await rawCall(env.url, '/pay/closeorder', signedXml({ out_trade_no: outTradeNo() }));
    // Assess
    expect(verifyV2Sign(query.xml, SETTINGS.mchKey, ['HMAC-SHA256'])).toBe(true);
    expect(query.xml).toMatchObject({
      result_code: 'SUCCESS',
      trade_state: 'SUCCESS',
      out_trade_no: fields.out_trade_no,
      transaction_id: paid.body.transactionId,
      total_fee: '1800',
      cash_fee: '1800',
      bank_type: 'OTHERS',
      openid: 'oSandboxOpenid000000',
    });
    expect(close.xml).toMatchObject({ result_code: 'FAIL', err_code: 'ORDERPAID' });
    expect(closeUnknown.xml).toMatchObject({ result_code: 'FAIL', err_code: 'ORDERNOTEXIST' });
  });
});

describe('payment control API', () => {
  async function openOrder(): Promise<string> {
    const client = new WechatPayV2({
      ...SETTINGS,
      payApiBase: env.url,
      notifyUrl: endpoint.url,
      v2SignType: 'MD5',
    });
    const request = prepayRequest();
    await client.prepay(request);
    return request.outTradeNo;
  }

  it('answers 404 for an unknown order, 409 when already paid, 400 without outTradeNo', async () => {
    // Prepare
    const no = await openOrder();
    // Act
    const first = await control(env.url, '/sandbox/pay', { outTradeNo: no });
    const second = await control(env.url, '/sandbox/pay', { outTradeNo: no });
    const unknown = await control(env.url, '/sandbox/pay', { outTradeNo: outTradeNo() });
    const missing = await control(env.url, '/sandbox/pay', {});
    // Assess
    expect(first.body).toMatchObject({ outTradeNo: no, delivered: true, status: 200 });
    expect(first.body.reply).toContain('SUCCESS');
    expect(second.status).toBe(409);
    expect(unknown.status).toBe(404);
    expect(missing.status).toBe(400);
  });

  it('pays an order exactly once when two /sandbox/pay calls race', async () => {
    // Prepare
    const no = await openOrder();
    // Act
    const answers = await Promise.all([
      control(env.url, '/sandbox/pay', { outTradeNo: no }),
      control(env.url, '/sandbox/pay', { outTradeNo: no }),
    ]);
    // Assess
    expect(answers.map((a) => a.status).sort()).toEqual([200, 409]);
  });

  it('resends the notify of a paid order with a fresh nonce and sign (notify-again) and lists deliveries', async () => {
    // Prepare
    const no = await openOrder();
    const unpaid = await control(env.url, '/sandbox/pay/notify-again', { outTradeNo: no });
    const before = endpoint.received.length;
    await control(env.url, '/sandbox/pay', { outTradeNo: no });
    // Act
    const again = await control(env.url, '/sandbox/pay/notify-again', { outTradeNo: no });
    const listed = await control(env.url, `/sandbox/notifications?outTradeNo=${no}`);
    const all = await control(env.url, '/sandbox/notifications');
    // Assess
    expect(unpaid.status).toBe(409);
    expect(again.body).toMatchObject({ outTradeNo: no, delivered: true });
    const [one, two] = endpoint.received.slice(before).map(({ body }) => parseV2Xml(body));
    expect(one?.transaction_id).toBe(two?.transaction_id);
    expect(one?.nonce_str).not.toBe(two?.nonce_str);
    expect(one?.sign).not.toBe(two?.sign);
    expect(listed.body.notifications).toMatchObject([
      { outTradeNo: no, version: 'v2', attempt: 1, accepted: true, status: 200 },
      { outTradeNo: no, version: 'v2', attempt: 2, accepted: true, status: 200 },
    ]);
    expect(all.body.notifications?.length).toBeGreaterThan(listed.body.notifications?.length ?? 0);
  });

  it('reports an unreachable notify_url as a failed delivery and stops retrying when the sandbox closes', async () => {
    // Prepare: a slow schedule (first retry after 50 ms) on a sandbox of its own
    const local = await startSandbox(300);
    const client = new WechatPayV2({
      ...SETTINGS,
      payApiBase: local.url,
      notifyUrl: 'http://127.0.0.1:9/wechat/notify',
      v2SignType: 'MD5',
    });
    const request = prepayRequest();
    await client.prepay(request);
    // Act
    const paid = await control(local.url, '/sandbox/pay', { outTradeNo: request.outTradeNo });
    await local.sandbox.close();
    await new Promise((resolve) => setTimeout(resolve, 200));
    // Assess
    expect(paid.body).toMatchObject({ delivered: false, status: null });
    expect(paid.body.reply).toMatch(/^network/);
    expect(local.store.deliveries).toHaveLength(1);
  });
});
