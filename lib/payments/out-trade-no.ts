/** out_trade_no: 6–32 of [0-9A-Za-z_-|*] (WeChat Pay 商户订单号). Moves to lib/wechat-pay/fields.ts. */
export const OUT_TRADE_NO = /^[0-9A-Za-z_\-|*]{6,32}$/;
