import { createSecretKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { WechatPayV2 } from '#lib/clients/wechat-pay-v2';
import { WechatPayV3 } from '#lib/clients/wechat-pay-v3';
import { NotifyRejectedError } from '#lib/errors';
import {
  chinaDay,
  decryptReqInfo,
  encryptReqInfo,
  formatV2DateTime,
  parseV2DateTime,
  readReqInfo,
  reqInfoKey,
  V2RefundNotifyError,
  v2RefundNotifyXml,
  v2RefundStatus,
} from '#lib/wechat-pay/refund-protocol';
import { createVerifier, decryptResource } from '#lib/wechat-pay/v3-protocol';
import { thrown } from '#test/helpers/outcomes';

// Test keys only (see test/fixtures/wechat-pay/README.md for provenance).
const fixture = (name: string): string =>
  readFileSync(new URL(`../../../fixtures/wechat-pay/${name}`, import.meta.url), 'utf8');

/**
 * wechat-protocol.md test vector 14 (self-generated with the official doc key; the official sample ciphertext is a
 * placeholder): the v2 refund notify's req_info under API key 192006250b4c09247ec02edce69f6a2d.
 */
const VECTOR14 = {
  apiKey: '192006250b4c09247ec02edce69f6a2d',
  ecbKey: 'd96eb16afdd491fa1e705096edbc2205',
  reqInfo:
    'WBzGpzQuNpcFxIlFjUUD9FKo0rHFKIn0kRJVv7PAhPDSCjWAzcyQtBNpSb92FQg9FKQ3UKchg9ThtBc2nKj5Y9XQBa0sRi19hY8xK6q96ePF0FRsZh9XrYEEcSr4GdYPZADb4Gq4EvlprO5AGKpKnYgy9+AB3siIHVLqKp1e7CMDZkCLyAlk991qWZJ+RnTqjZDiH3z0P9mVsgVvCwn/wiQkIa1sx4MwQGogiV+cLAipOd+mF/3UPsndjHDy8Po5hA4YBiCrpVgwIxwWUVIgExDUJQ1ZeGHDOhtmWmU9X6abKebrtLvWRE/Pk3HmLtqWQLniBLt7z9mswKUp4Dbo+PQF4N1hEgNT1RHYHPXda1QqeDRz4zZKQXqdYymUZCHx3yGObL1X1Lg15NMKGt6nM+suGjTvBxfh8kxmNfL75O+TUjDmfIcMFBoa4Q/omYi3',
  plaintext:
    '<root><out_refund_no><![CDATA[131811191610442717309]]></out_refund_no><out_trade_no><![CDATA[71106718111915575302817]]></out_trade_no><refund_fee><![CDATA[3960]]></refund_fee><refund_status><![CDATA[SUCCESS]]></refund_status><success_time><![CDATA[2018-11-19 16:24:13]]></success_time><total_fee><![CDATA[3960]]></total_fee></root>',
};

/** research/peer-vectors/v3-refund-notify.json: a REFUND.SUCCESS signed with the wechatpay-go test key. */
const V3_REFUND = JSON.parse(fixture('v3-refund-notify.json')) as {
  apiv3_key: string;
  headers: Record<string, string>;
  raw_body: string;
  expected_plaintext: string;
};
const V3_REFUND_AT = 1_700_000_000;

/** research/peer-vectors/vectors.json, kind v2-refund-req_info-aes-256-ecb (decrypted identically by two peers). */
const PEER_VECTORS = JSON.parse(fixture('v2-refund-req-info.json')) as {
  inputs: { api_v2_key: string; ecb_key: string; req_info_b64: string };
  expected: { plaintext: string; refund_fee: string; out_refund_no: string; refund_status: string };
}[];

/** Flips one base64 character of `text` at `index` (a different valid base64 character). */
function alterBase64(text: string, index: number): string {
  const char = text[index] === 'A' ? 'B' : 'A';
  return `${text.slice(0, index)}${char}${text.slice(index + 1)}`;
}

describe('v2 req_info (退款结果通知)', () => {
  it('derives the AES-256 key as the 32 ASCII bytes of the lowercase hex MD5 of the APIv2 key', () => {
    // Assess
    expect(reqInfoKey(VECTOR14.apiKey).toString('ascii')).toBe(VECTOR14.ecbKey);
  });

  it('decrypts vector 14 to its plaintext and reads its fields', () => {
    // Act
    const plaintext = decryptReqInfo(VECTOR14.reqInfo, VECTOR14.apiKey);
    const fields = readReqInfo(VECTOR14.reqInfo, VECTOR14.apiKey);
    // Assess
    expect(plaintext).toBe(VECTOR14.plaintext);
    expect({ ...fields }).toEqual({
      out_refund_no: '131811191610442717309',
      out_trade_no: '71106718111915575302817',
      refund_fee: '3960',
      refund_status: 'SUCCESS',
      success_time: '2018-11-19 16:24:13',
      total_fee: '3960',
    });
  });

  it.each(PEER_VECTORS.map((vector) => [vector.inputs.api_v2_key, vector] as const))(
    'decrypts the peer req_info vector of the official wechatpay-php sample under key %s',
    (_key, vector) => {
      // Act
      const plaintext = decryptReqInfo(vector.inputs.req_info_b64, vector.inputs.api_v2_key);
      const fields = readReqInfo(vector.inputs.req_info_b64, vector.inputs.api_v2_key);
      // Assess
      expect(reqInfoKey(vector.inputs.api_v2_key).toString('ascii')).toBe(vector.inputs.ecb_key);
      expect(plaintext).toBe(vector.expected.plaintext);
      expect([fields.refund_fee, fields.out_refund_no, fields.refund_status]).toEqual([
        vector.expected.refund_fee,
        vector.expected.out_refund_no,
        vector.expected.refund_status,
      ]);
      expect(encryptReqInfo(plaintext, vector.inputs.api_v2_key)).toBe(vector.inputs.req_info_b64);
    },
  );

  it('fails on one altered ciphertext byte, another key, and bad base64', () => {
    // Act
    const reasons = [
      thrown(() => readReqInfo(alterBase64(VECTOR14.reqInfo, VECTOR14.reqInfo.length - 6), VECTOR14.apiKey)),
      thrown(() => readReqInfo(VECTOR14.reqInfo, 'sandboxMchKey0000000000000000000')),
      thrown(() => decryptReqInfo('not base64!', VECTOR14.apiKey)),
      thrown(() => decryptReqInfo('', VECTOR14.apiKey)),
    ];
    // Assess
    for (const error of reasons) expect(error).toBeInstanceOf(V2RefundNotifyError);
    expect(reasons.map((error) => (error as V2RefundNotifyError).reason)).toEqual([
      expect.stringMatching(/^(decrypt_failed|bad_plaintext)$/),
      expect.stringMatching(/^(decrypt_failed|bad_plaintext)$/),
      'bad_base64',
      'bad_base64',
    ]);
  });

  it('reads a built v2 refund notify through the v2 client: no sign, req_info decrypted', () => {
    // Prepare
    const mchKey = 'sandboxMchKey0000000000000000000';
    const client = new WechatPayV2({
      appId: 'wx5a1d0c0ffee0d0e1',
      mchId: '1900000109',
      mchKey,
      payApiBase: 'http://127.0.0.1:9',
      notifyUrl: 'http://127.0.0.1:9/notify',
      v2SignType: 'MD5',
    });
    const body = v2RefundNotifyXml({
      appId: 'wx5a1d0c0ffee0d0e1',
      mchId: '1900000109',
      mchKey,
      fields: {
        out_refund_no: 'R1',
        out_trade_no: 'M20261121080000abcdefABCDEF',
        refund_fee: 600,
        refund_id: '503000000',
        refund_status: 'SUCCESS',
        success_time: '2026-11-21 16:30:00',
        total_fee: 1800,
      },
    });
    // Act
    const result = client.parseNotify({ headers: {}, body });
    const forged = thrown(() =>
      client.parseNotify({
        headers: {},
        body: body.replace(/<req_info><!\[CDATA\[(.)/, '<req_info><![CDATA[A'),
      }),
    );
    // Assess
    expect(result).toEqual({
      kind: 'refund',
      report: {
        outRefundNo: 'R1',
        outTradeNo: 'M20261121080000abcdefABCDEF',
        status: 'SUCCESS',
        refundId: '503000000',
        refundFee: 600,
        successAt: '2026-11-21T08:30:00.000Z',
        mchId: '1900000109',
        via: 'notify-v2',
      },
    });
    expect(body).not.toContain('<sign>');
    expect(forged).toBeInstanceOf(NotifyRejectedError);
  });
});

describe('v3 refund notify vector (REFUND.SUCCESS)', () => {
  const verifier = createVerifier({ platformCertificates: [fixture('go-notify-cert-D7CE59D1F522D701.pem')] });
  const signed = (body: string) => ({
    serial: V3_REFUND.headers['Wechatpay-Serial'] as string,
    signature: V3_REFUND.headers['Wechatpay-Signature'] as string,
    timestamp: V3_REFUND.headers['Wechatpay-Timestamp'] as string,
    nonce: V3_REFUND.headers['Wechatpay-Nonce'] as string,
    body,
    now: V3_REFUND_AT,
  });

  it('verifies under certificate D7CE59D1F522D701 and decrypts to the expected plaintext', () => {
    // Act
    verifier.verify(signed(V3_REFUND.raw_body));
    const { resource } = JSON.parse(V3_REFUND.raw_body) as { resource: unknown };
    const plaintext = decryptResource(resource, Buffer.from(V3_REFUND.apiv3_key));
    // Assess
    expect(plaintext).toBe(V3_REFUND.expected_plaintext);
  });

  it('fails verification when one body byte is altered, and decryption when the ciphertext is', () => {
    // Prepare
    const body = V3_REFUND.raw_body.replace('退款成功', '退款成功!');
    const { resource } = JSON.parse(V3_REFUND.raw_body) as { resource: { ciphertext: string } };
    const tampered = { ...resource, ciphertext: alterBase64(resource.ciphertext, 10) };
    // Act / Assess
    expect(thrown(() => verifier.verify(signed(body)))).toBeInstanceOf(Error);
    expect(thrown(() => decryptResource(tampered, Buffer.from(V3_REFUND.apiv3_key)))).toBeInstanceOf(Error);
  });

  it('reads the vector through the v3 client into a SUCCESS refund report', () => {
    // Prepare
    const client = new WechatPayV3({
      appId: 'wx5a1d0c0ffee0d0e1',
      mchId: '1900000100',
      mchSerialNo: '3775B6A45ACD588826D15E583A95F5DD20E9D8B0',
      apiV3Key: createSecretKey(Buffer.from(V3_REFUND.apiv3_key)),
      payPublicKeyId: '',
      payPublicKeyPem: '',
      payApiBase: 'http://127.0.0.1:9',
      notifyUrl: 'http://127.0.0.1:9/notify',
      mchPrivateKey: undefined as never,
      payVerifier: verifier,
    });
    const headers = Object.fromEntries(
      Object.entries(V3_REFUND.headers).map(([name, value]) => [name.toLowerCase(), value]),
    );
    // Act
    const result = client.parseNotify({ headers, body: V3_REFUND.raw_body }, V3_REFUND_AT);
    const altered = thrown(() =>
      client.parseNotify({ headers, body: V3_REFUND.raw_body.replace('EV-2018', 'EV-2019') }, V3_REFUND_AT),
    );
    // Assess
    expect(result).toEqual({
      kind: 'refund',
      report: {
        outRefundNo: '7752501201407033233368018',
        outTradeNo: '20150806125346',
        status: 'SUCCESS',
        refundId: '50200207182018070300011301001',
        refundFee: 999,
        successAt: '2018-06-08T02:34:56.000Z',
        mchId: '1900000100',
        via: 'notify-v3',
      },
    });
    expect((altered as NotifyRejectedError).status).toBe(401);
  });
});

describe('refund field rules', () => {
  it('converts v2 refund times (China time) both ways and names the China-time day', () => {
    // Assess
    expect(parseV2DateTime('2018-11-19 16:24:13')).toBe('2018-11-19T08:24:13.000Z');
    expect(formatV2DateTime(new Date('2018-11-19T08:24:13.000Z'))).toBe('2018-11-19 16:24:13');
    expect(thrown(() => parseV2DateTime('2018-11-19T16:24:13'))).toBeInstanceOf(RangeError);
    expect(thrown(() => parseV2DateTime('2018-02-30 16:24:13'))).toBeInstanceOf(RangeError);
    expect(chinaDay('2026-11-21T15:59:59.999Z')).toBe('2026-11-21');
    expect(chinaDay('2026-11-21T16:00:00.000Z')).toBe('2026-11-22');
  });

  it('maps v2 refund statuses to ours', () => {
    // Assess
    expect(['SUCCESS', 'REFUNDCLOSE', 'CHANGE', 'PROCESSING', 'NOTSURE'].map(v2RefundStatus)).toEqual([
      'SUCCESS',
      'CLOSED',
      'ABNORMAL',
      'PROCESSING',
      undefined,
    ]);
  });
});
