import { createPrivateKey, createPublicKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { buildV3Notify, v2NotifyFields, v2NotifyXml, v2PaidFields } from '#lib/wechat-pay/notify-builders';
import { parseV2Xml, verifyV2Sign } from '#lib/wechat-pay/v2-protocol';
import { decryptResource, verifyRsaSha256 } from '#lib/wechat-pay/v3-protocol';

const fixture = (name: string): string =>
  readFileSync(new URL(`../../../fixtures/wechat-pay/${name}`, import.meta.url), 'utf8');

/** wechatpay-java test "WeChat Pay public key" pair. */
const javaKey = createPrivateKey(fixture('java-wechatpay-private-key.pem'));
const javaPublicKey = createPublicKey(fixture('java-wechatpay-public-key.pem'));
const PUB_KEY_ID = 'PUB_KEY_ID_0114232019112100000000000001';

/** The official v2 signing example's merchant (pay.weixin.qq.com jsapi.php?chapter=4_3). */
const V2_PARTS = {
  appId: 'wxd930ea5d5a258f4f',
  mchId: '10000100',
  key: '192006250b4c09247ec02edce69f6a2d',
  signType: 'MD5' as const,
  outTradeNo: '1409811653',
  totalFee: 1,
  transactionId: '1004400740201409030005092168',
  openid: 'oUpF8uMEb4qRXf22hE3X68TekukE',
  timeEnd: new Date('2014-09-03T05:15:40Z'),
};

describe('v2PaidFields', () => {
  it('reports the payment with amounts in fen and time_end in CST', () => {
    // Act
    const fields = v2PaidFields(V2_PARTS);

    // Assess
    expect(fields).toEqual({
      openid: V2_PARTS.openid,
      is_subscribe: 'N',
      bank_type: 'OTHERS',
      total_fee: 1,
      fee_type: 'CNY',
      cash_fee: 1,
      cash_fee_type: 'CNY',
      transaction_id: V2_PARTS.transactionId,
      time_end: '20140903131540',
    });
  });
});

describe('v2NotifyFields', () => {
  it.each(['MD5', 'HMAC-SHA256'] as const)(
    'signs a SUCCESS notify the receiver verifies under %s',
    (signType) => {
      // Act
      const xml = v2NotifyXml({ ...V2_PARTS, signType, attach: '支付测试', deviceInfo: '1000' });

      // Assess
      const fields = parseV2Xml(xml);
      expect(verifyV2Sign(fields, V2_PARTS.key, [signType])).toBe(true);
      expect({ ...fields }).toMatchObject({
        return_code: 'SUCCESS',
        result_code: 'SUCCESS',
        appid: V2_PARTS.appId,
        mch_id: V2_PARTS.mchId,
        device_info: '1000',
        sign_type: signType,
        trade_type: 'JSAPI',
        out_trade_no: V2_PARTS.outTradeNo,
        attach: '支付测试',
        total_fee: '1',
        time_end: '20140903131540',
      });
      expect(fields.nonce_str).toMatch(/^[0-9A-Za-z]{32}$/);
    },
  );

  it('leaves sign_type out when asked, and the MD5 sign still verifies by its length', () => {
    // Act
    const fields = v2NotifyFields({ ...V2_PARTS, declareSignType: false });

    // Assess
    expect(fields.sign_type).toBeUndefined();
    expect(fields.sign).toMatch(/^[0-9A-F]{32}$/);
    expect(
      verifyV2Sign(parseV2Xml(v2NotifyXml({ ...V2_PARTS, declareSignType: false })), V2_PARTS.key, ['MD5']),
    ).toBe(true);
  });

  it('signs the extra fields, overriding the defaults', () => {
    // Act
    const xml = v2NotifyXml({ ...V2_PARTS, extra: { cash_fee: 0, coupon_fee: 1, coupon_count: 1 } });

    // Assess
    const fields = parseV2Xml(xml);
    expect({ ...fields }).toMatchObject({ cash_fee: '0', coupon_fee: '1', coupon_count: '1' });
    expect(verifyV2Sign(fields, V2_PARTS.key, ['MD5'])).toBe(true);
    expect(verifyV2Sign({ ...fields, coupon_fee: '2' }, V2_PARTS.key, ['MD5'])).toBe(false);
  });

  it('throws TypeError when the key is empty', () => {
    // Act / Assess
    expect(() => v2NotifyFields({ ...V2_PARTS, key: '' })).toThrow(TypeError);
  });
});

describe('buildV3Notify', () => {
  const apiV3Key = Buffer.from('testMchAPIv3Key0testMchAPIv3Key0', 'utf8');
  const transaction = { out_trade_no: 'T1234567', trade_state: 'SUCCESS', amount: { total: 1800 } };

  it('encrypts the transaction and signs the envelope as WeChat Pay does', () => {
    // Act
    const notify = buildV3Notify({ transaction, apiV3Key, privateKey: javaKey, serial: PUB_KEY_ID });

    // Assess
    const envelope = JSON.parse(notify.body);
    expect(envelope).toEqual({
      id: expect.stringMatching(/^EV-[0-9a-f]{20}$/),
      create_time: expect.stringMatching(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\+08:00$/),
      resource_type: 'encrypt-resource',
      event_type: 'TRANSACTION.SUCCESS',
      summary: '支付成功',
      resource: {
        original_type: 'transaction',
        algorithm: 'AEAD_AES_256_GCM',
        ciphertext: expect.any(String),
        associated_data: 'transaction',
        nonce: expect.stringMatching(/^[0-9A-Za-z]{12}$/),
      },
    });
    expect(JSON.parse(decryptResource(envelope.resource, apiV3Key))).toEqual(transaction);
    expect(notify.headers['Content-Type']).toBe('application/json');
    const { 'Wechatpay-Timestamp': timestamp, 'Wechatpay-Nonce': nonce } = notify.headers;
    const message = `${timestamp}\n${nonce}\n${notify.body}\n`;
    expect(notify.headers['Wechatpay-Serial']).toBe(PUB_KEY_ID);
    expect(verifyRsaSha256(javaPublicKey, message, notify.headers['Wechatpay-Signature'] as string)).toBe(
      true,
    );
  });

  it('uses the given event type, original type and timestamp', () => {
    // Act
    const notify = buildV3Notify({
      transaction,
      apiV3Key,
      privateKey: javaKey,
      serial: PUB_KEY_ID,
      eventType: 'REFUND.SUCCESS',
      originalType: 'refund',
      timestamp: 1_722_850_421,
    });

    // Assess
    const envelope = JSON.parse(notify.body);
    expect(envelope).toMatchObject({ event_type: 'REFUND.SUCCESS', summary: '通知' });
    expect(envelope.resource).toMatchObject({ original_type: 'refund', associated_data: 'refund' });
    expect(notify.headers['Wechatpay-Timestamp']).toBe('1722850421');
  });
});
