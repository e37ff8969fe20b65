/**
 * The payment notifies WeChat Pay sends, built from their parts: the signed v2 XML (支付结果通知) and the signed,
 * encrypted v3 envelope (支付通知). Production only receives notifies; the local sandbox delivers these, and tests,
 * load and bench feed them to the notify handler.
 *
 * Pure: every key, id and amount is passed in; nothing is read from the environment. Amounts are integer fen.
 */
import type { KeyObject } from 'node:crypto';
import { randomBytes } from 'node:crypto';
import { randomAlphanumeric, type V2SignType } from './fields';
import { formatCstCompact, formatRfc3339Cst } from './time';
import { nonceStr, signV2, toV2Xml } from './v2-protocol';
import { type AesKey, aesGcmEncrypt, wechatpayHeaders } from './v3-protocol';

type V2Fields = Record<string, string | number | undefined>;

/** WeChat resource nonce length: "随机串nonce长度12个字节". */
const RESOURCE_NONCE_CHARS = 12;

/** The facts of a paid order that v2 reports in the notify and in orderquery. */
export interface V2Payment {
  openid: string;
  /** Integer fen (a string of digits passes through as sent). */
  totalFee: number | string;
  transactionId: string;
  /** The payment time, written as `time_end` yyyyMMddHHmmss CST. */
  timeEnd: Date;
}

export interface V2NotifyParts extends V2Payment {
  appId: string;
  mchId: string;
  /** The APIv2 key the notify is signed with. */
  key: string;
  signType: V2SignType;
  /**
   * Whether `sign_type` is on the wire (default true). It is optional and means MD5 when absent; pass false to
   * leave it out so the receiver falls back on the signature length.
   */
  declareSignType?: boolean;
  outTradeNo: string;
  deviceInfo?: string;
  attach?: string;
  /** Fields added or overridden before signing (coupons, err_code, tampering in tests). */
  extra?: V2Fields;
}

/**
 * The fields of a v2 payment notify for a paid JSAPI order, signed: return/result SUCCESS, appid, mch_id, a fresh
 * nonce_str, sign_type (see declareSignType), trade_type JSAPI, v2PaidFields, out_trade_no, optional device_info /
 * attach, then `extra`, then `sign` under `signType`; throws TypeError from signV2 on an empty key or a non-integer
 * amount, RangeError on an invalid timeEnd (WeChat Pay v2 支付结果通知, doc/v2/merchant/4011937248).
 */
export function v2NotifyFields(parts: V2NotifyParts): V2Fields {
  const fields: V2Fields = {
    return_code: 'SUCCESS',
    return_msg: 'OK',
    appid: parts.appId,
    mch_id: parts.mchId,
    device_info: parts.deviceInfo,
    nonce_str: nonceStr(),
    sign_type: parts.declareSignType === false ? undefined : parts.signType,
    result_code: 'SUCCESS',
    trade_type: 'JSAPI',
    ...v2PaidFields(parts),
    out_trade_no: parts.outTradeNo,
    attach: parts.attach,
    ...parts.extra,
  };
  fields.sign = signV2(fields, parts.key, parts.signType);
  return fields;
}

/**
 * The fields a paid order carries in the v2 notify and the orderquery answer: openid, is_subscribe N, bank_type
 * OTHERS, total_fee = cash_fee (fen), fee_type and cash_fee_type CNY, transaction_id, time_end (CST); throws
 * RangeError on an invalid timeEnd (WeChat Pay v2 支付结果通知 / 查询订单).
 */
export function v2PaidFields(payment: V2Payment): V2Fields {
  return {
    openid: payment.openid,
    is_subscribe: 'N',
    bank_type: 'OTHERS',
    total_fee: payment.totalFee,
    fee_type: 'CNY',
    cash_fee: payment.totalFee,
    cash_fee_type: 'CNY',
    transaction_id: payment.transactionId,
    time_end: formatCstCompact(payment.timeEnd),
  };
}

/** v2NotifyFields as the XML body WeChat POSTs (`text/xml`); throws TypeError like v2NotifyFields and toV2Xml. */
export function v2NotifyXml(parts: V2NotifyParts): string {
  return toV2Xml(v2NotifyFields(parts));
}

export interface V3NotifyInput {
  /** The decrypted resource (for payments the transaction model of 查询订单); amounts integer fen. */
  transaction: Record<string, unknown>;
  /** The 32-byte APIv3 key the resource is encrypted with (bytes or a secret KeyObject). */
  apiV3Key: AesKey;
  /** WeChat Pay's signing key (the private half of the WeChat Pay public key or platform certificate). */
  privateKey: KeyObject;
  /** `Wechatpay-Serial`: the WeChat Pay public key id or the platform certificate serial. */
  serial: string;
  /** Default TRANSACTION.SUCCESS. */
  eventType?: string;
  /** `resource.original_type` and the AAD; default `transaction`. */
  originalType?: string;
  /** Unix seconds of the Wechatpay-Timestamp header; default now. */
  timestamp?: number;
}

/**
 * A v3 notify as WeChat Pay POSTs it: body `{id: 'EV-…', create_time (RFC 3339 CST, now), resource_type
 * 'encrypt-resource', event_type, summary, resource: {original_type, algorithm AEAD_AES_256_GCM, ciphertext,
 * associated_data = original_type, nonce (12 alphanumerics)}}` and headers Content-Type + wechatpayHeaders over that
 * body; throws V3DecryptError 'bad_key' on a key not 16/32 bytes, TypeError on a bad signing key or timestamp
 * (WeChat Pay v3 支付通知 / 回调报文加密格式).
 */
export function buildV3Notify(input: V3NotifyInput): { headers: Record<string, string>; body: string } {
  const originalType = input.originalType ?? 'transaction';
  const nonce = randomAlphanumeric(RESOURCE_NONCE_CHARS);
  const eventType = input.eventType ?? 'TRANSACTION.SUCCESS';
  const body = JSON.stringify({
    id: `EV-${randomBytes(10).toString('hex')}`,
    create_time: formatRfc3339Cst(new Date()),
    resource_type: 'encrypt-resource',
    event_type: eventType,
    summary: eventType === 'TRANSACTION.SUCCESS' ? '支付成功' : '通知',
    resource: {
      original_type: originalType,
      algorithm: 'AEAD_AES_256_GCM',
      ciphertext: aesGcmEncrypt(input.apiV3Key, nonce, originalType, JSON.stringify(input.transaction)),
      associated_data: originalType,
      nonce,
    },
  });
  return {
    headers: {
      'Content-Type': 'application/json',
      ...wechatpayHeaders(input.privateKey, input.serial, body, input.timestamp),
    },
    body,
  };
}
