/**
 * The v2 inputs both benches measure on (bench/run.ts against raw baselines, bench/peers.ts against the peers):
 * one paid order's notify fields, signed MD5 and HMAC-SHA256 with the sandbox APIv2 key.
 */
import { v2NotifyFields } from '#local/fixtures/notify';

export const paid = {
  outTradeNo: 'M20261121080000abcdefABCDEF',
  totalFee: 1800,
  transactionId: '4200000000202611210000000001',
  openid: 'oSandboxOpenid000000',
};
export const mchKey = process.env.WECHAT_MCH_KEY as string;
export const md5Fields = v2NotifyFields({ ...paid, signType: 'MD5' });
export const hmacFields = v2NotifyFields({ ...paid, signType: 'HMAC-SHA256' });
