import { randomBytes } from 'node:crypto';
import { formatTimeExpire, nonceStr, signV2, toV2Xml, type V2SignType } from '#lib/wechat-pay/v2-protocol';

export interface V2NotifyInput {
  outTradeNo: string;
  totalFee: number | string;
  transactionId?: string;
  appid?: string;
  mchId?: string;
  openid?: string;
  key?: string;
  signType?: V2SignType;
  /** Fields to add or override after the defaults (before signing). */
  extra?: Record<string, string | number | undefined>;
  /** Replace the computed sign (after signing). */
  sign?: string;
  timeEnd?: Date;
}

/** A v2 payment notify as WeChat Pay sends it, signed with the sandbox key from .env.example. */
export function v2NotifyFields(input: V2NotifyInput): Record<string, string | number | undefined> {
  const signType = input.signType ?? 'MD5';
  const fields: Record<string, string | number | undefined> = {
    appid: input.appid ?? process.env.WECHAT_APPID,
    bank_type: 'OTHERS',
    cash_fee: input.totalFee,
    fee_type: 'CNY',
    is_subscribe: 'N',
    mch_id: input.mchId ?? process.env.WECHAT_MCH_ID,
    nonce_str: nonceStr(),
    openid: input.openid ?? 'oSandboxOpenid000000',
    out_trade_no: input.outTradeNo,
    result_code: 'SUCCESS',
    return_code: 'SUCCESS',
    time_end: formatTimeExpire(input.timeEnd ?? new Date()),
    total_fee: input.totalFee,
    trade_type: 'JSAPI',
    transaction_id:
      input.transactionId ?? `4200${randomBytes(12).toString('hex').replace(/[a-f]/g, '7').slice(0, 24)}`,
    ...(signType === 'HMAC-SHA256' ? { sign_type: 'HMAC-SHA256' } : {}),
    ...input.extra,
  };
  fields.sign = input.sign ?? signV2(fields, input.key ?? (process.env.WECHAT_MCH_KEY as string), signType);
  return fields;
}

/** The notify XML body. */
export function v2NotifyXml(input: V2NotifyInput): string {
  return toV2Xml(v2NotifyFields(input));
}
