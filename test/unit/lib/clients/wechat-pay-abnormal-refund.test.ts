import { createPrivateKey, createPublicKey, createSecretKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { AbnormalRefundRequest } from '#lib/clients/payment-provider';
import { WechatPayV2 } from '#lib/clients/wechat-pay-v2';
import { type V3ClientConfig, WechatPayV3 } from '#lib/clients/wechat-pay-v3';
import { ConflictError, ServiceUnavailableError, UpstreamError } from '#lib/errors';
import {
  createVerifier,
  decryptSensitiveField,
  parseAuthorization,
  verifyRsaSha256,
  wechatpayHeaders,
} from '#lib/wechat-pay/v3-protocol';
import { PayStore, type SandboxRefund } from '#local/sandbox/pay-store';
import { payV3SettingsFromEnv, registerPayV3 } from '#local/sandbox/pay-v3';
import { Sandbox } from '#local/sandbox/server';
import { rejection } from '#test/helpers/outcomes';
import { type Captured, type ScriptedServer, startScripted } from '#test/helpers/scripted-server';

// Dev keys (local/keys): the sandbox's WeChat Pay pair and platform certificate.
const read = (path: string): string => readFileSync(new URL(`../../../../${path}`, import.meta.url), 'utf8');
const DEV_CERT = read('local/keys/wechatpay-platform-cert.pem');
const DEV_CERT_SERIAL = '5157F09EFDC096DE15EBE81A47057A7232F1B8E1';
const SETTINGS = payV3SettingsFromEnv();
const PUB_KEY_ID = SETTINGS.publicKeyId;
const payKey = SETTINGS.payPrivateKey;
const merchantKey = createPrivateKey(process.env.WECHAT_MCH_PRIVATE_KEY as string);
const PUBLIC_KEY_PEM = process.env.WECHAT_PAY_PUBLIC_KEY as string;

const REFUND_ID = '50300908092018010222000000000';
const OUT_REFUND_NO = 'R20261121080000abcdefABCDEF';
const OUT_TRADE_NO = 'M20261121080000abcdefABCDEF';
const USER_CARD: AbnormalRefundRequest = {
  refundId: REFUND_ID,
  outRefundNo: OUT_REFUND_NO,
  type: 'USER_BANK_CARD',
  bankType: 'ICBC_DEBIT',
  bankAccount: '6222020200112233445',
  realName: '张三',
};
const MERCHANT_CARD: AbnormalRefundRequest = {
  refundId: REFUND_ID,
  outRefundNo: OUT_REFUND_NO,
  type: 'MERCHANT_BANK_CARD',
};

/** A v3 client: public-key mode unless `certificates` (and then no public key) or `combined`. */
function client(payApiBase: string, mode: 'public-key' | 'certificate' | 'combined' = 'public-key') {
  const publicKeyPem = mode === 'certificate' ? '' : PUBLIC_KEY_PEM;
  const certs = mode === 'public-key' ? [] : [DEV_CERT];
  const config: V3ClientConfig = {
    appId: process.env.WECHAT_APPID as string,
    mchId: process.env.WECHAT_MCH_ID as string,
    mchSerialNo: process.env.WECHAT_MCH_SERIAL_NO as string,
    mchPrivateKey: merchantKey,
    apiV3Key: createSecretKey(SETTINGS.apiV3Key),
    payPublicKeyId: PUB_KEY_ID,
    payPublicKeyPem: publicKeyPem,
    platformCertPems: certs,
    payApiBase,
    notifyUrl: 'https://merchant.example.com/wechat/notify',
    payVerifier: createVerifier({
      publicKey: publicKeyPem ? { id: PUB_KEY_ID, pem: publicKeyPem } : undefined,
      platformCertificates: certs,
    }),
  };
  return new WechatPayV3(config);
}

/** The refund model WeChat answers, signed under `serial`. */
function refundModel(status: string, serial = PUB_KEY_ID) {
  const body = JSON.stringify({
    refund_id: REFUND_ID,
    out_refund_no: OUT_REFUND_NO,
    transaction_id: '4200000215201811190261405420',
    out_trade_no: OUT_TRADE_NO,
    channel: 'ORIGINAL',
    user_received_account: '招商银行信用卡0403',
    create_time: '2026-11-21T16:05:00+08:00',
    status,
    amount: { total: 1800, refund: 600, payer_total: 1800, payer_refund: 600, currency: 'CNY' },
  });
  return { body, headers: { 'content-type': 'application/json', ...wechatpayHeaders(payKey, serial, body) } };
}

function signedError(status: number, code: string) {
  const body = JSON.stringify({ code, message: '错误' });
  return [
    status,
    body,
    { 'content-type': 'application/json', ...wechatpayHeaders(payKey, PUB_KEY_ID, body) },
  ] as const;
}

describe('WechatPayV3.applyAbnormalRefund against a scripted WeChat', () => {
  let upstream: ScriptedServer;

  beforeAll(async () => {
    upstream = await startScripted();
  });
  afterAll(() => upstream.close());
  afterEach(() => {
    upstream.requests.length = 0;
  });

  it('sends USER_BANK_CARD signed, with bank_account and real_name encrypted and Wechatpay-Serial naming the key', async () => {
    // Prepare
    const answer = refundModel('PROCESSING');
    upstream.next(200, answer.body, answer.headers);
    // Act
    const report = await client(upstream.url).applyAbnormalRefund(USER_CARD);
    // Assess
    const sent = upstream.requests[0] as Captured;
    const path = `/v3/refund/domestic/refunds/${REFUND_ID}/apply-abnormal-refund`;
    expect(sent.method).toBe('POST');
    expect(sent.url).toBe(path);
    expect(sent.headers['wechatpay-serial']).toBe(PUB_KEY_ID);
    const body = JSON.parse(sent.body);
    expect(Object.keys(body).sort()).toEqual([
      'bank_account',
      'bank_type',
      'out_refund_no',
      'real_name',
      'type',
    ]);
    expect(body).toMatchObject({
      out_refund_no: OUT_REFUND_NO,
      type: 'USER_BANK_CARD',
      bank_type: 'ICBC_DEBIT',
    });
    expect(sent.body).not.toContain('6222020200112233445');
    expect(sent.body).not.toContain('张三');
    expect(decryptSensitiveField(payKey, body.bank_account)).toBe('6222020200112233445');
    expect(decryptSensitiveField(payKey, body.real_name)).toBe('张三');
    const auth = parseAuthorization(sent.headers.authorization as string);
    const message = `POST\n${path}\n${auth.timestamp}\n${auth.nonce_str}\n${sent.body}\n`;
    expect(verifyRsaSha256(createPublicKey(merchantKey), message, auth.signature)).toBe(true);
    expect(report).toMatchObject({
      outRefundNo: OUT_REFUND_NO,
      outTradeNo: OUT_TRADE_NO,
      status: 'PROCESSING',
      refundId: REFUND_ID,
      refundFee: 600,
    });
  });

  it('sends MERCHANT_BANK_CARD with no bank fields; in certificate mode the serial is the certificate’s', async () => {
    // Prepare
    const answer = refundModel('PROCESSING', DEV_CERT_SERIAL);
    upstream.next(200, answer.body, answer.headers);
    // Act
    await client(upstream.url, 'certificate').applyAbnormalRefund(MERCHANT_CARD);
    // Assess
    const sent = upstream.requests[0] as Captured;
    expect(JSON.parse(sent.body)).toEqual({ out_refund_no: OUT_REFUND_NO, type: 'MERCHANT_BANK_CARD' });
    expect(sent.headers['wechatpay-serial']).toBe(DEV_CERT_SERIAL);
  });

  it('maps refusals: 4xx → 502 ABNORMAL_REFUND_REFUSED with WeChat’s code, 429 → 503, unsigned → forged', async () => {
    // Prepare
    upstream.next(...signedError(400, 'INVALID_REQUEST'));
    upstream.next(...signedError(404, 'RESOURCE_NOT_EXISTS'));
    upstream.next(...signedError(429, 'FREQUENCY_LIMITED'));
    upstream.next(200, refundModel('PROCESSING').body, { 'content-type': 'application/json' });
    const v3 = client(upstream.url);
    // Act
    const errors = [
      await rejection(v3.applyAbnormalRefund(MERCHANT_CARD)),
      await rejection(v3.applyAbnormalRefund(MERCHANT_CARD)),
      await rejection(v3.applyAbnormalRefund(MERCHANT_CARD)),
      await rejection(v3.applyAbnormalRefund(MERCHANT_CARD)),
    ];
    // Assess
    expect(errors[0]).toBeInstanceOf(UpstreamError);
    expect(errors[0]).toMatchObject({ status: 502, code: 'ABNORMAL_REFUND_REFUSED' });
    expect((errors[0] as Error).message).toContain('INVALID_REQUEST');
    expect(errors[1]).toMatchObject({ code: 'ABNORMAL_REFUND_REFUSED' });
    expect((errors[1] as Error).message).toContain('RESOURCE_NOT_EXISTS');
    expect(errors[2]).toBeInstanceOf(ServiceUnavailableError);
    expect(errors[3]).toMatchObject({ code: 'WECHAT_PAY_BAD_SIGNATURE' });
    expect(upstream.requests).toHaveLength(4);
  });
});

describe('WechatPayV3.applyAbnormalRefund against the sandbox', () => {
  let sandbox: Sandbox;
  let store: PayStore;
  let certificateSandbox: Sandbox;
  let certificateStore: PayStore;

  /** An ABNORMAL v3 refund in `target`'s books. */
  function abnormal(target: PayStore, refundId = REFUND_ID): SandboxRefund {
    const refund: SandboxRefund = {
      version: 'v3',
      outRefundNo: OUT_REFUND_NO,
      outTradeNo: OUT_TRADE_NO,
      transactionId: '4200000215201811190261405420',
      refundId,
      refundFee: 600,
      totalFee: 1800,
      notifyUrl: 'http://127.0.0.1:9/notify',
      status: 'ABNORMAL',
      plan: { mode: 'ABNORMAL', deliver: false },
      fingerprint: '',
      createdAt: Math.floor(Date.now() / 1000),
    };
    target.refunds.set(refund.outRefundNo, refund);
    return refund;
  }

  beforeAll(async () => {
    sandbox = new Sandbox();
    store = new PayStore();
    registerPayV3(sandbox, store, SETTINGS);
    await sandbox.listen(0);
    certificateSandbox = new Sandbox();
    certificateStore = new PayStore();
    registerPayV3(certificateSandbox, certificateStore, { ...SETTINGS, mode: 'certificate' });
    await certificateSandbox.listen(0);
  });
  afterAll(async () => {
    await sandbox.close();
    await certificateSandbox.close();
  });

  it('is accepted on the wire: the sandbox decrypts the bank fields and the refund is PROCESSING again', async () => {
    // Prepare
    const refund = abnormal(store);
    // Act
    const report = await client(sandbox.baseUrl).applyAbnormalRefund(USER_CARD);
    // Assess
    expect(report).toMatchObject({ status: 'PROCESSING', refundId: REFUND_ID, outRefundNo: OUT_REFUND_NO });
    expect(refund.status).toBe('PROCESSING');
    expect(refund.reapplications).toEqual([
      {
        type: 'USER_BANK_CARD',
        bankType: 'ICBC_DEBIT',
        bankAccount: '6222020200112233445',
        realName: '张三',
        at: expect.any(Number),
      },
    ]);
  });

  it('in certificate mode too, with the certificate serial', async () => {
    // Prepare
    const refund = abnormal(certificateStore);
    // Act
    const report = await client(certificateSandbox.baseUrl, 'certificate').applyAbnormalRefund(USER_CARD);
    // Assess
    expect(report.status).toBe('PROCESSING');
    expect(refund.reapplications?.[0]).toMatchObject({
      bankAccount: '6222020200112233445',
      realName: '张三',
    });
  });

  it('refuses a second application, an unknown refund_id and a Wechatpay-Serial naming another key', async () => {
    // Prepare
    abnormal(store);
    await client(sandbox.baseUrl).applyAbnormalRefund(MERCHANT_CARD);
    abnormal(certificateStore);
    // Act
    const again = await rejection(client(sandbox.baseUrl).applyAbnormalRefund(MERCHANT_CARD));
    const unknown = await rejection(
      client(sandbox.baseUrl).applyAbnormalRefund({
        ...MERCHANT_CARD,
        refundId: '50300000000000000000000000001',
      }),
    );
    // Combined mode encrypts with the public key, which a certificate-mode WeChat does not expect.
    const otherKey = await rejection(
      client(certificateSandbox.baseUrl, 'combined').applyAbnormalRefund(USER_CARD),
    );
    // Assess
    expect(again).toMatchObject({ code: 'ABNORMAL_REFUND_REFUSED', status: 502 });
    expect((again as Error).message).toContain('INVALID_REQUEST');
    expect((unknown as Error).message).toContain('RESOURCE_NOT_EXISTS');
    expect((otherKey as Error).message).toContain('PARAM_ERROR');
    expect(certificateStore.refunds.get(OUT_REFUND_NO)?.status).toBe('ABNORMAL');
  });
});

describe('WechatPayV2.applyAbnormalRefund', () => {
  it('refuses with 409 ABNORMAL_REFUND_V3_ONLY and calls no WeChat', async () => {
    // Prepare
    const upstream = await startScripted();
    const v2 = new WechatPayV2({
      appId: process.env.WECHAT_APPID as string,
      mchId: process.env.WECHAT_MCH_ID as string,
      mchKey: process.env.WECHAT_MCH_KEY as string,
      payApiBase: upstream.url,
      notifyUrl: 'https://merchant.example.com/wechat/notify',
      v2SignType: 'MD5',
    });
    // Act
    const error = await rejection(v2.applyAbnormalRefund(MERCHANT_CARD));
    await upstream.close();
    // Assess
    expect(error).toBeInstanceOf(ConflictError);
    expect(error).toMatchObject({ status: 409, code: 'ABNORMAL_REFUND_V3_ONLY' });
    expect((error as Error).message).toContain('商户平台');
    expect(upstream.requests).toHaveLength(0);
  });
});
