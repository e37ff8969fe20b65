import { createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { GetCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { handler as createPaymentHandler } from '#functions/create-payment';
import { handler as notifyHandler } from '#functions/pay-notify';
import { handler as signInHandler } from '#functions/sign-in';
import { dynamo } from '#lib/clients/dynamodb';
import { WechatPayV2 } from '#lib/clients/wechat-pay-v2';
import { WechatPayV3 } from '#lib/clients/wechat-pay-v3';
import { loadConfig, resetConfigCache, type V3Config } from '#lib/config';
import { buildV3Notify } from '#lib/wechat-pay/notify-builders';
import {
  createVerifier,
  verifyRsaSha256,
  type WechatPayVerifier,
  wechatpayHeaders,
} from '#lib/wechat-pay/v3-protocol';
import { context, envelope, httpEvent } from '#local/fixtures/events';
import { handleNotify, v2NotifyXml } from '#local/fixtures/notify';
import { countDynamoCalls, exceptionsFor, sandboxLogin } from './helpers';

const ROOT = resolve(import.meta.dirname, '../..');
const pem = (path: string) => readFileSync(resolve(ROOT, path), 'utf8');
const PUBLIC_KEY_ID = 'PUB_KEY_ID_0114232019112100000000000001';
const wechatPayKey = createPrivateKey(pem('local/keys/wechatpay-private.pem'));

let config: V3Config;

/** The v3 client of a loaded v3 config (its key and verifier were built by config). */
const v3Client = (loaded: V3Config) =>
  new WechatPayV3({
    ...loaded,
    mchPrivateKey: loaded.mchPrivateKey as KeyObject,
    payVerifier: loaded.payVerifier as WechatPayVerifier,
  });
let previousVersion: string | undefined;

beforeAll(async () => {
  previousVersion = process.env.WECHAT_PAY_VERSION;
  process.env.WECHAT_PAY_VERSION = 'v3';
  resetConfigCache();
  config = (await loadConfig()) as V3Config;
});

afterAll(() => {
  process.env.WECHAT_PAY_VERSION = previousVersion;
  resetConfigCache();
});

async function newOrder(planId = 'monthly') {
  const { code } = await sandboxLogin();
  const signIn = envelope(
    await signInHandler(httpEvent({ method: 'POST', path: '/wechat/sign_in', body: { code } }), context),
  );
  const token = signIn.data?.token as string;
  const paid = await createPaymentHandler(
    httpEvent({ method: 'POST', path: '/wechat/pay', body: { planId }, token }),
    context,
  );
  const { data } = envelope(paid);
  return { token, userId: signIn.data?.user.id as string, order: data?.order, payParams: data?.payParams };
}

function transaction(outTradeNo: string, overrides: Record<string, unknown> = {}) {
  return {
    appid: config.appId,
    mchid: config.mchId,
    out_trade_no: outTradeNo,
    transaction_id: '4200000000202611210000009999',
    trade_type: 'JSAPI',
    trade_state: 'SUCCESS',
    trade_state_desc: '支付成功',
    bank_type: 'OTHERS',
    attach: '',
    success_time: '2026-11-21T16:30:00+08:00',
    payer: { openid: 'oSomeoneElse0000000' },
    amount: { total: 1800, payer_total: 1800, currency: 'CNY', payer_currency: 'CNY' },
    ...overrides,
  };
}

function lower(headers: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(headers).map(([name, value]) => [name.toLowerCase(), value]));
}

async function deliver(notice: { headers: Record<string, string>; body: string }) {
  const result = await notifyHandler(
    httpEvent({ method: 'POST', path: '/wechat/notify', body: notice.body, headers: lower(notice.headers) }),
    context,
  );
  return { status: result.statusCode ?? 0, body: result.body ?? '' };
}

function signedNotice(tx: Record<string, unknown>, extra: Partial<Parameters<typeof buildV3Notify>[0]> = {}) {
  return buildV3Notify({
    transaction: tx,
    apiV3Key: config.apiV3Key,
    privateKey: wechatPayKey,
    serial: PUBLIC_KEY_ID,
    ...extra,
  });
}

async function userVersion(userId: string): Promise<number> {
  const { Item } = await dynamo().send(
    new GetCommand({ TableName: config.usersTable, Key: { id: userId }, ConsistentRead: true }),
  );
  return Item?.version as number;
}

async function orderStatus(outTradeNo: string): Promise<string> {
  const { Item } = await dynamo().send(
    new GetCommand({ TableName: config.ordersTable, Key: { outTradeNo }, ConsistentRead: true }),
  );
  return Item?.status as string;
}

describe('createPayment on v3', () => {
  it('returns RSA payParams signed with the merchant key over appId, timeStamp, nonceStr, package', async () => {
    // Act
    const { order, payParams } = await newOrder();
    // Assess
    expect(order).toMatchObject({ totalFee: 1800, status: 'PENDING' });
    expect(payParams.signType).toBe('RSA');
    const merchantPublic: KeyObject = createPublicKey(config.mchPrivateKey as KeyObject);
    const message = `${config.appId}\n${payParams.timeStamp}\n${payParams.nonceStr}\n${payParams.package}\n`;
    expect(verifyRsaSha256(merchantPublic, message, payParams.paySign)).toBe(true);
  });
});

describe('v3 notify: credit exactly once', () => {
  it('credits a genuine notify, then acknowledges duplicates and replays without a second credit', async () => {
    // Prepare
    const { userId, order } = await newOrder();
    const notice = signedNotice(transaction(order.outTradeNo));
    // Act
    const first = await deliver(notice);
    const duplicates = await Promise.all(
      Array.from({ length: 10 }, () => deliver(signedNotice(transaction(order.outTradeNo)))),
    );
    const replay = await deliver(notice);
    // Assess
    expect(first).toEqual({ status: 204, body: '' });
    expect(duplicates.every((reply) => reply.status === 204)).toBe(true);
    expect(replay.status).toBe(204);
    expect(await orderStatus(order.outTradeNo)).toBe('PAID');
    expect(await userVersion(userId)).toBe(1);
  });

  it('credits once when 20 first deliveries race', async () => {
    // Prepare
    const { userId, order } = await newOrder();
    // Act
    const replies = await Promise.all(
      Array.from({ length: 20 }, () => deliver(signedNotice(transaction(order.outTradeNo)))),
    );
    // Assess
    expect(replies.every((reply) => reply.status === 204)).toBe(true);
    expect(await userVersion(userId)).toBe(1);
  });

  it('credits once when a v2 notify and a v3 notify report the same payment at once', async () => {
    // Prepare: a merchant mid-migration, with both keys; each channel goes through its own provider.
    const { userId, order } = await newOrder();
    const v2 = new WechatPayV2({
      ...config,
      v2SignType: 'MD5',
      mchKey: process.env.WECHAT_MCH_KEY as string,
    });
    const v3 = v3Client(config);
    const tx = '4200000000202611210000008888';
    const xml = v2NotifyXml({ outTradeNo: order.outTradeNo, totalFee: 1800, transactionId: tx });
    const json = signedNotice(transaction(order.outTradeNo, { transaction_id: tx }));
    // Act
    const [v2Reply, v3Reply] = await Promise.all([
      handleNotify(
        config,
        v2,
        httpEvent({ method: 'POST', body: xml, headers: { 'content-type': 'text/xml' } }),
      ),
      handleNotify(config, v3, httpEvent({ method: 'POST', body: json.body, headers: lower(json.headers) })),
    ]);
    // Assess
    expect(v2Reply.body).toContain('SUCCESS');
    expect(v3Reply.statusCode).toBe(204);
    expect(await userVersion(userId)).toBe(1);
  });

  it('credits the order owner, whatever payer.openid says (V13)', async () => {
    // Prepare
    const { userId, order } = await newOrder();
    // Act
    const reply = await deliver(
      signedNotice(transaction(order.outTradeNo, { payer: { openid: 'oAttacker000000000' } })),
    );
    // Assess
    expect(reply.status).toBe(204);
    expect(await userVersion(userId)).toBe(1);
  });
});

describe('v3 notify bad inputs (reliability §2.6): refused, nothing written', () => {
  let outTradeNo: string;
  let userId: string;

  beforeAll(async () => {
    const created = await newOrder();
    outTradeNo = created.order.outTradeNo;
    userId = created.userId;
  });

  const now = () => Math.floor(Date.now() / 1000);
  const valid = () => signedNotice(transaction(outTradeNo));
  const without = (name: string) => () => {
    const notice = valid();
    const headers = { ...notice.headers };
    delete headers[name];
    return { ...notice, headers };
  };
  const resigned = (body: string, timestamp = now()) => ({
    headers: {
      'Content-Type': 'application/json',
      ...wechatpayHeaders(wechatPayKey, PUBLIC_KEY_ID, body, timestamp),
    },
    body,
  });
  const withResource = (change: (resource: Record<string, unknown>) => void) => () => {
    const parsed = JSON.parse(valid().body);
    change(parsed.resource);
    return resigned(JSON.stringify(parsed));
  };

  type Case = [string, () => { headers: Record<string, string>; body: string }, 'no-calls' | 'reads-only'];
  const cases: Case[] = [
    ['V1 Wechatpay-Serial missing', without('Wechatpay-Serial'), 'no-calls'],
    ['V1 Wechatpay-Signature missing', without('Wechatpay-Signature'), 'no-calls'],
    ['V1 Wechatpay-Timestamp missing', without('Wechatpay-Timestamp'), 'no-calls'],
    ['V1 Wechatpay-Nonce missing', without('Wechatpay-Nonce'), 'no-calls'],
    [
      'V2 SIGNTEST probe',
      () => {
        const notice = valid();
        return {
          ...notice,
          headers: { ...notice.headers, 'Wechatpay-Signature': `WECHATPAY/SIGNTEST/${'A'.repeat(40)}` },
        };
      },
      'no-calls',
    ],
    [
      'V3 timestamp 301 s old',
      () => signedNotice(transaction(outTradeNo), { timestamp: now() - 301 }),
      'no-calls',
    ],
    [
      'V3 timestamp 301 s ahead',
      () => signedNotice(transaction(outTradeNo), { timestamp: now() + 301 }),
      'no-calls',
    ],
    [
      'V4 timestamp in milliseconds',
      () => {
        const notice = valid();
        return { ...notice, headers: { ...notice.headers, 'Wechatpay-Timestamp': String(Date.now()) } };
      },
      'no-calls',
    ],
    [
      'V4 timestamp 1e20',
      () => {
        const notice = valid();
        return { ...notice, headers: { ...notice.headers, 'Wechatpay-Timestamp': '1e20' } };
      },
      'no-calls',
    ],
    [
      'V5 unknown serial',
      () => {
        const notice = valid();
        return {
          ...notice,
          headers: { ...notice.headers, 'Wechatpay-Serial': 'PUB_KEY_ID_0000000000000000000000000000099' },
        };
      },
      'no-calls',
    ],
    [
      'V6 pretty-printed body',
      () => {
        const notice = valid();
        return { ...notice, body: JSON.stringify(JSON.parse(notice.body), null, 2) };
      },
      'no-calls',
    ],
    [
      'V6 signed by another key',
      () => {
        const other = createPrivateKey(pem('test/fixtures/wechat-pay/go-test-private-key.pem'));
        return buildV3Notify({
          transaction: transaction(outTradeNo),
          apiV3Key: config.apiV3Key,
          privateKey: other,
          serial: PUBLIC_KEY_ID,
        });
      },
      'no-calls',
    ],
    [
      'V7 duplicated signature header',
      () => {
        const notice = valid();
        const signature = notice.headers['Wechatpay-Signature'] as string;
        return {
          ...notice,
          headers: { ...notice.headers, 'Wechatpay-Signature': `${signature},${signature}` },
        };
      },
      'no-calls',
    ],
    [
      'V8 algorithm not AEAD_AES_256_GCM',
      withResource((r) => {
        r.algorithm = 'AES_128_CBC';
      }),
      'no-calls',
    ],
    [
      'V8 GCM tag altered',
      withResource((r) => {
        const bytes = Buffer.from(r.ciphertext as string, 'base64');
        bytes[bytes.length - 1] = (bytes[bytes.length - 1] as number) ^ 1;
        r.ciphertext = bytes.toString('base64');
      }),
      'no-calls',
    ],
    [
      'V8 nonce not 12 bytes',
      withResource((r) => {
        r.nonce = 'short';
      }),
      'no-calls',
    ],
    ['V14 non-JSON body', () => resigned('not json'), 'no-calls'],
    ['V14 body over 64 KB', () => resigned(`{"pad":"${'a'.repeat(70_000)}"}`), 'no-calls'],
    [
      'X16 a v2 XML body on v3',
      () => ({ headers: {}, body: v2NotifyXml({ outTradeNo, totalFee: 1800 }) }),
      'no-calls',
    ],
  ];

  it.each(cases)('%s', async (_name, build, allowed) => {
    // Prepare
    const notice = build();
    const calls = countDynamoCalls();
    try {
      // Act
      const reply = await deliver(notice);
      // Assess
      expect(reply.status).toBeGreaterThanOrEqual(400);
      expect(JSON.parse(reply.body)).toMatchObject({ code: 'FAIL' });
      expect(calls.writes()).toEqual([]);
      if (allowed === 'no-calls') expect(calls.calls()).toEqual([]);
    } finally {
      calls.stop();
    }
    expect(await orderStatus(outTradeNo)).toBe('PENDING');
  });

  it.each([
    [
      'V9 appid not ours',
      () => transaction(outTradeNo, { appid: 'wx0000000000000000' }),
      'merchant_mismatch',
    ],
    ['V9 mchid not ours', () => transaction(outTradeNo, { mchid: '1234567890' }), 'merchant_mismatch'],
    [
      'V11 amount differs',
      () => transaction(outTradeNo, { amount: { total: 1, payer_total: 1, currency: 'CNY' } }),
      'amount_mismatch',
    ],
    [
      'V11 currency not CNY',
      () => transaction(outTradeNo, { amount: { total: 1800, payer_total: 1800, currency: 'USD' } }),
      'currency_mismatch',
    ],
    ['V12 unknown out_trade_no', () => transaction('M20990101000000unknown0000'), 'unknown_order'],
  ])(
    '%s: never credited, acknowledged once recorded as a payment exception',
    async (_name, build, reason) => {
      // Prepare: a transaction_id of its own, so each case records its own exception
      const tx = { ...build(), transaction_id: `42000000${Date.now()}${String(Math.random()).slice(2, 8)}` };
      const calls = countDynamoCalls();
      let replies: Awaited<ReturnType<typeof deliver>>[];
      try {
        // Act: WeChat delivers it twice
        replies = [await deliver(signedNotice(tx)), await deliver(signedNotice(tx))];
      } finally {
        calls.stop();
      }
      // Assess
      expect(replies.map((reply) => reply.status)).toEqual([204, 204]);
      expect(calls.writes()).toEqual(['PutItem', 'PutItem']);
      const recorded = (await exceptionsFor(tx.out_trade_no as string)).filter(
        (e) => e.transactionId === tx.transaction_id,
      );
      expect(recorded.map((e) => [e.reason, e.source])).toEqual([[reason, 'notify-v3']]);
      expect(await orderStatus(outTradeNo)).toBe('PENDING');
    },
  );

  it.each([
    ['V10 trade_state not SUCCESS', () => signedNotice(transaction(outTradeNo, { trade_state: 'PAYERROR' }))],
    [
      'V16 a REFUND event carrying a payment resource',
      () => signedNotice(transaction(outTradeNo), { eventType: 'REFUND.SUCCESS' }),
    ],
  ])('%s is acknowledged without credit', async (_name, build) => {
    // Prepare
    const calls = countDynamoCalls();
    try {
      // Act
      const reply = await deliver(build());
      // Assess
      expect(reply.status).toBe(204);
      expect(calls.calls()).toEqual([]);
    } finally {
      calls.stop();
    }
    expect(await orderStatus(outTradeNo)).toBe('PENDING');
    expect(await userVersion(userId)).toBe(0);
  });

  it('V16 a REFUND.SUCCESS for a refund we never made is never applied: recorded once as an exception, acknowledged', async () => {
    // Prepare
    const outRefundNo = `Runknown${Date.now()}`;
    const notice = () =>
      signedNotice(
        {
          mchid: config.mchId,
          out_trade_no: outTradeNo,
          transaction_id: '4200000000202611210000009999',
          out_refund_no: outRefundNo,
          refund_id: '50300000000000000000000000009',
          refund_status: 'SUCCESS',
          success_time: '2026-11-21T16:30:00+08:00',
          amount: { total: 1800, refund: 1800, payer_total: 1800, payer_refund: 1800 },
        },
        { eventType: 'REFUND.SUCCESS', originalType: 'refund' },
      );
    // Act: WeChat delivers it twice
    const replies = [await deliver(notice()), await deliver(notice())];
    // Assess
    expect(replies.map((reply) => reply.status)).toEqual([204, 204]);
    const recorded = (await exceptionsFor(outTradeNo)).filter(
      (e) => e.transactionId === `REFUND#${outRefundNo}`,
    );
    expect(recorded.map((e) => [e.reason, e.source])).toEqual([['refund_mismatch', 'notify-v3']]);
    expect(await orderStatus(outTradeNo)).toBe('PENDING');
    expect(await userVersion(userId)).toBe(0);
  });

  it('V3 accepts a timestamp 299 s old', async () => {
    // Act
    const reply = await deliver(signedNotice(transaction(outTradeNo), { timestamp: now() - 299 }));
    // Assess
    expect(reply.status).toBe(204);
    expect(await userVersion(userId)).toBe(1);
  });
});

describe('platform certificate rotation', () => {
  it('accepts notifies under either of two platform certificates and refuses a third serial', async () => {
    // Prepare: certificate mode with the sandbox certificate and a second one, as during a rotation.
    const platformCertPems = [
      pem('local/keys/wechatpay-platform-cert.pem'),
      pem('test/fixtures/wechat-pay/go-notify-cert-D7CE59D1F522D701.pem'),
    ];
    const rotating: V3Config = {
      ...config,
      payPublicKeyPem: '',
      platformCertPems,
      payVerifier: createVerifier({ platformCertificates: platformCertPems }),
    };
    const provider = v3Client(rotating);
    const oldKey = { key: wechatPayKey, serial: '5157F09EFDC096DE15EBE81A47057A7232F1B8E1' };
    const newKey = {
      key: createPrivateKey(pem('test/fixtures/wechat-pay/go-test-private-key.pem')),
      serial: 'D7CE59D1F522D701',
    };
    const first = await newOrder();
    const second = await newOrder();
    const send = (outTradeNo: string, signer: { key: KeyObject; serial: string }) => {
      const notice = buildV3Notify({
        transaction: transaction(outTradeNo),
        apiV3Key: config.apiV3Key,
        privateKey: signer.key,
        serial: signer.serial,
      });
      return handleNotify(
        rotating,
        provider,
        httpEvent({ method: 'POST', body: notice.body, headers: lower(notice.headers) }),
      );
    };
    // Act
    const underOld = await send(first.order.outTradeNo, oldKey);
    const underNew = await send(second.order.outTradeNo, newKey);
    const unknown = await send(second.order.outTradeNo, { key: newKey.key, serial: 'F5765756002FDD77' });
    // Assess
    expect(underOld.statusCode).toBe(204);
    expect(underNew.statusCode).toBe(204);
    expect(unknown.statusCode).toBe(401);
    expect(await userVersion(first.userId)).toBe(1);
    expect(await userVersion(second.userId)).toBe(1);
  });
});
