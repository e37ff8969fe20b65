import { createPrivateKey, createPublicKey, createSecretKey } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { WechatPayV2 } from '#lib/clients/wechat-pay-v2';
import { WechatPayV3 } from '#lib/clients/wechat-pay-v3';
import { UpstreamError } from '#lib/errors';
import { billSha1, formatTradeBill } from '#lib/wechat-pay/bill';
import { parseV2Xml, toV2Xml, verifyV2Sign } from '#lib/wechat-pay/v2-protocol';
import {
  createVerifier,
  parseAuthorization,
  verifyRsaSha256,
  wechatpayHeaders,
} from '#lib/wechat-pay/v3-protocol';
import { payV3SettingsFromEnv } from '#local/sandbox/pay-v3';
import { rejection } from '#test/helpers/outcomes';
import { type Captured, type ScriptedServer, startScripted } from '#test/helpers/scripted-server';

/** The trade bill downloads (v2 downloadbill, v3 tradebill + download_url) against scripted WeChat answers. */

const env = (name: string) => process.env[name] ?? '';
const MCH_KEY = env('WECHAT_MCH_KEY');
const SETTINGS = payV3SettingsFromEnv();
const merchantKey = createPrivateKey(env('WECHAT_MCH_PRIVATE_KEY'));
const merchantPublicKey = createPublicKey(merchantKey);

const BILL = formatTradeBill([
  {
    kind: 'payment',
    at: new Date('2026-11-28T05:51:31.000Z'),
    appId: env('WECHAT_APPID'),
    mchId: env('WECHAT_MCH_ID'),
    transactionId: '4200000612202611280000000001',
    outTradeNo: 'ORDER0000000001',
    openid: 'oUser',
    totalFee: 1800,
    description: '会员 月卡',
  },
]);

const xml = (fields: Record<string, string>) => toV2Xml(fields);

describe('WechatPayV2.downloadTradeBill', () => {
  let upstream: ScriptedServer;
  let client: WechatPayV2;

  beforeAll(async () => {
    upstream = await startScripted();
    client = new WechatPayV2({
      appId: env('WECHAT_APPID'),
      mchId: env('WECHAT_MCH_ID'),
      mchKey: MCH_KEY,
      payApiBase: upstream.url,
      notifyUrl: 'https://merchant.example.com/wechat/notify',
      v2SignType: 'HMAC-SHA256',
    });
  });
  afterAll(() => upstream.close());
  afterEach(() => {
    upstream.requests.length = 0;
  });

  it('asks for the ALL bill of the compact day, GZIP, signed; inflates the answer', async () => {
    // Prepare
    upstream.next(200, gzipSync(Buffer.from(BILL)) as unknown as string, {
      'content-type': 'application/x-gzip',
    });

    // Act
    const download = await client.downloadTradeBill('2026-11-28');

    // Assess
    expect(download).toEqual({ kind: 'bill', text: BILL });
    const sent = parseV2Xml((upstream.requests[0] as Captured).body);
    expect(sent).toMatchObject({
      bill_date: '20261128',
      bill_type: 'ALL',
      tar_type: 'GZIP',
      sign_type: 'HMAC-SHA256',
    });
    expect(verifyV2Sign(sent, MCH_KEY, ['HMAC-SHA256'])).toBe(true);
  });

  it('takes a plain-text bill as it is', async () => {
    // Prepare
    upstream.next(200, BILL, { 'content-type': 'text/plain' });

    // Act / Assess
    expect(await client.downloadTradeBill('2026-11-28')).toEqual({ kind: 'bill', text: BILL });
  });

  it('reads the unsigned FAIL answers: No Bill Exist → empty, Bill Creating → not_ready, others → 502', async () => {
    // Prepare
    upstream.next(200, xml({ return_code: 'FAIL', return_msg: 'No Bill Exist', error_code: '20002' }));
    upstream.next(200, xml({ return_code: 'FAIL', return_msg: 'Bill Creating', error_code: '20003' }));
    upstream.next(200, xml({ return_code: 'FAIL', return_msg: 'invalid bill_date', error_code: '20001' }));

    // Act
    const empty = await client.downloadTradeBill('2026-11-28');
    const creating = await client.downloadTradeBill('2026-11-28');
    const refused = await rejection(client.downloadTradeBill('2026-11-28'));

    // Assess
    expect(empty).toEqual({ kind: 'empty' });
    expect(creating).toEqual({ kind: 'not_ready' });
    expect(refused).toBeInstanceOf(UpstreamError);
  });

  it('refuses a gzip body that does not inflate', async () => {
    // Prepare
    upstream.next(200, Buffer.from([0x1f, 0x8b, 0x08, 0x00, 0x01, 0x02]) as unknown as string);

    // Act
    const error = await rejection(client.downloadTradeBill('2026-11-28'));

    // Assess
    expect(error).toBeInstanceOf(UpstreamError);
    expect((error as UpstreamError).detail).toMatch(/gzip/);
  });
});

describe('WechatPayV3.downloadTradeBill', () => {
  let upstream: ScriptedServer;
  let client: WechatPayV3;
  const serial = SETTINGS.publicKeyId;
  const signed = (body: string) => ({
    'content-type': 'application/json',
    ...wechatpayHeaders(SETTINGS.payPrivateKey, serial, body),
  });
  const apply = (fields: Record<string, unknown>, status = 200) => {
    const body = JSON.stringify(fields);
    upstream.next(status, body, signed(body));
  };

  beforeAll(async () => {
    upstream = await startScripted();
    client = new WechatPayV3({
      appId: env('WECHAT_APPID'),
      mchId: env('WECHAT_MCH_ID'),
      mchSerialNo: env('WECHAT_MCH_SERIAL_NO'),
      mchPrivateKey: merchantKey,
      apiV3Key: createSecretKey(SETTINGS.apiV3Key),
      payPublicKeyId: serial,
      payPublicKeyPem: env('WECHAT_PAY_PUBLIC_KEY'),
      payApiBase: upstream.url,
      notifyUrl: 'https://merchant.example.com/wechat/notify',
      payVerifier: createVerifier({ publicKey: { id: serial, pem: env('WECHAT_PAY_PUBLIC_KEY') } }),
    });
  });
  afterAll(() => upstream.close());
  afterEach(() => {
    upstream.requests.length = 0;
  });

  it('applies for the bill, then downloads it with a signed GET whose answer is not signed, SHA-1 checked', async () => {
    // Prepare
    const downloadUrl = `${upstream.url}/v3/billdownload/file?token=abc123`;
    apply({ hash_type: 'SHA1', hash_value: billSha1(BILL).toUpperCase(), download_url: downloadUrl });
    upstream.next(200, gzipSync(Buffer.from(BILL)) as unknown as string, {
      'content-type': 'application/octet-stream',
    });

    // Act
    const download = await client.downloadTradeBill('2026-11-28');

    // Assess
    expect(download).toEqual({ kind: 'bill', text: BILL });
    const [apply_, fetch_] = upstream.requests as [Captured, Captured];
    expect(apply_.url).toBe('/v3/bill/tradebill?bill_date=2026-11-28&bill_type=ALL&tar_type=GZIP');
    expect(fetch_.method).toBe('GET');
    expect(fetch_.url).toBe('/v3/billdownload/file?token=abc123');
    const auth = parseAuthorization(fetch_.headers.authorization as string);
    const message = `GET\n/v3/billdownload/file?token=abc123\n${auth.timestamp}\n${auth.nonce_str}\n\n`;
    expect(verifyRsaSha256(merchantPublicKey, message, auth.signature)).toBe(true);
  });

  it('refuses a file whose SHA-1 differs from hash_value (one byte changed)', async () => {
    // Prepare
    apply({
      hash_type: 'SHA1',
      hash_value: billSha1(BILL),
      download_url: `${upstream.url}/v3/billdownload/file?token=t`,
    });
    upstream.next(200, BILL.replace('18.00', '18.01'));

    // Act
    const error = await rejection(client.downloadTradeBill('2026-11-28'));

    // Assess
    expect(error).toBeInstanceOf(UpstreamError);
    expect((error as UpstreamError).code).toBe('WECHAT_PAY_BILL_CORRUPT');
  });

  it('never sends its Authorization to a download_url on another host', async () => {
    // Prepare
    apply({
      hash_type: 'SHA1',
      hash_value: billSha1(BILL),
      download_url: 'https://attacker.example.com/file?token=t',
    });

    // Act
    const error = await rejection(client.downloadTradeBill('2026-11-28'));

    // Assess
    expect(error).toBeInstanceOf(UpstreamError);
    expect(upstream.requests).toHaveLength(1);
  });

  it('reads NO_STATEMENT_EXIST as empty and STATEMENT_CREATING as not_ready', async () => {
    // Prepare
    apply({ code: 'NO_STATEMENT_EXIST', message: '请求的账单文件不存在' }, 400);
    apply({ code: 'STATEMENT_CREATING', message: '账单生成中' }, 400);

    // Act / Assess
    expect(await client.downloadTradeBill('2026-11-28')).toEqual({ kind: 'empty' });
    expect(await client.downloadTradeBill('2026-11-28')).toEqual({ kind: 'not_ready' });
  });
});
