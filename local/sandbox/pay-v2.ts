import {
  isIp,
  isTotalFeeText,
  MAX_NONCE_LENGTH,
  newPrepayId,
  OUT_REFUND_NO,
  OUT_TRADE_NO,
  V2_SIGN_TYPES,
  type V2SignType,
} from '#lib/wechat-pay/fields';
import { v2NotifyXml, v2PaidFields } from '#lib/wechat-pay/notify-builders';
import { formatV2DateTime, toV2RefundStatus, v2RefundNotifyXml } from '#lib/wechat-pay/refund-protocol';
import {
  nonceStr,
  parseTimeEnd,
  parseV2Xml,
  signV2,
  toV2Xml,
  verifyV2Sign,
} from '#lib/wechat-pay/v2-protocol';
import { sendNotify } from './notify-deliverer';
import type { NotifyResult, PayStore, SandboxOrder, SandboxRefund } from './pay-store';
import { RefundRefusal, requestRefund } from './refunds';
import type { Sandbox, SandboxReply, SandboxRequest } from './server';

/**
 * Plays WeChat Pay API v2 (api.mch.weixin.qq.com, XML + MD5 / HMAC-SHA256) for one merchant: unifiedorder
 * (JSAPI), orderquery and closeorder check every request's sign under its sign_type and answer signed CDATA XML
 * like WeChat's; paid orders are announced with the signed v2 payment notify. Orders live in the shared PayStore.
 * Refunds: `/secapi/pay/refund` only on the mutual-TLS listener (Sandbox.listenTls), `/pay/refundquery`, and the
 * refund notify with its encrypted `req_info` (refunds.ts runs them for both versions).
 * Not modelled: the 5-minute wait before closeorder, coupons.
 */

export interface PayV2Settings {
  appId: string;
  /** The official account's AppID (H5 JSAPI orders), also bound to this merchant; optional. */
  mpAppId?: string;
  mchId: string;
  /** The APIv2 key requests, responses and notifies are signed with. */
  mchKey: string;
}

type Fields = Record<string, string | number | undefined>;

const TRADE_STATE_DESC: Record<SandboxOrder['tradeState'], string> = {
  NOTPAY: '订单未支付',
  SUCCESS: '支付成功',
  CLOSED: '订单已关闭',
};

/** What the v2 API keeps beside the shared order: the sign type notifies use and the echoed optional fields. */
interface V2Extras {
  signType: V2SignType;
  attach?: string;
  deviceInfo?: string;
}

/** One sandbox v2 merchant: its settings, the shared orders and the v2-only order extras. */
interface V2Merchant {
  settings: PayV2Settings;
  store: PayStore;
  extras: Map<string, V2Extras>;
}

/** An endpoint's business logic: the checked request fields → the answer's business fields (or a V2Refusal). */
type V2Endpoint = (merchant: V2Merchant, params: Record<string, string>, signType: V2SignType) => Fields;

/** A refused request: result_code FAIL with err_code / err_code_des (signed like every SUCCESS-level answer). */
class V2Refusal extends Error {
  constructor(
    readonly errCode: string,
    readonly description: string,
  ) {
    super(`${errCode}: ${description}`);
  }
}

/** The key a forged v2 notify is signed with. */
const FORGED_KEY = 'forgedForgedForgedForgedForged00';

/** Registers `POST /pay/unifiedorder`, `/pay/orderquery`, `/pay/closeorder` and `store.notifiers.v2`. */
export function registerPayV2(sandbox: Sandbox, store: PayStore, settings: PayV2Settings): void {
  const merchant: V2Merchant = { settings, store, extras: new Map() };
  const busy = (request: SandboxRequest) => busyReply(merchant, request);
  sandbox.route('POST', '/pay/unifiedorder', checked(merchant, unifiedOrder), busy);
  sandbox.route('POST', '/pay/orderquery', checked(merchant, orderQuery), busy);
  sandbox.route('POST', '/pay/closeorder', checked(merchant, closeOrder), busy);
  const refundChecked = checked(merchant, refund);
  // 申请退款 needs the merchant API certificate: only the mutual-TLS listener has a verified one.
  sandbox.route(
    'POST',
    '/secapi/pay/refund',
    (request) =>
      request.clientCertSerial ? refundChecked(request) : communicationFail('证书不存在或无效', 'CERT_ERROR'),
    busy,
  );
  sandbox.route('POST', '/pay/refundquery', checked(merchant, refundQuery), busy);
  store.refundNotifiers.v2 = (refund, order) =>
    sendNotify(
      order,
      () => ({
        headers: { 'content-type': 'text/xml' },
        body: v2RefundNotifyXml({
          appId: order.appId,
          mchId: order.mchId,
          mchKey: merchant.settings.mchKey,
          fields: refundNotifyFields(refund),
        }),
      }),
      (status, reply) => status >= 200 && status < 300 && replyAccepted(reply),
    );
  store.notifiers.v2 = (order, variant) => {
    if (variant === 'stale' || variant === 'signtest') return undefined;
    return notifyV2(merchant, order, variant === 'forged');
  };
  store.paySignCheckers.v2 = (params) =>
    V2_SIGN_TYPES.includes(params.signType as V2SignType) &&
    verifyV2Sign({ ...params, sign: params.paySign, paySign: '' }, settings.mchKey, [
      params.signType as V2SignType,
    ]);
}

/** `POST /pay/unifiedorder` (统一下单, JSAPI): a new order → its prepay_id; the same request again → the same id. */
function unifiedOrder(merchant: V2Merchant, params: Record<string, string>, signType: V2SignType): Fields {
  checkUnifiedOrder(params);
  const fingerprint = JSON.stringify([
    'v2',
    params.appid,
    params.mch_id,
    params.body,
    params.detail ?? '',
    params.attach ?? '',
    params.fee_type || 'CNY',
    params.total_fee,
    params.notify_url,
    params.trade_type,
    params.openid,
    params.device_info ?? '',
    params.goods_tag ?? '',
    params.limit_pay ?? '',
  ]);
  const outTradeNo = params.out_trade_no as string;
  const existing = merchant.store.orders.get(outTradeNo);
  if (existing) {
    if (existing.tradeState === 'SUCCESS') throw new V2Refusal('ORDERPAID', '该订单已支付');
    if (existing.tradeState === 'CLOSED') throw new V2Refusal('ORDERCLOSED', '该订单已关闭');
    if (existing.version !== 'v2') throw new V2Refusal('OUT_TRADE_NO_USED', '商户订单号重复');
    if (existing.fingerprint !== fingerprint) {
      throw new V2Refusal('INVALID_REQUEST', '订单重入时，要求参数值与原请求一致，请确认参数问题');
    }
    return { trade_type: 'JSAPI', prepay_id: existing.prepayId };
  }
  const now = new Date();
  const order: SandboxOrder = {
    version: 'v2',
    outTradeNo,
    appId: params.appid as string,
    mchId: params.mch_id as string,
    openid: params.openid as string,
    description: params.body as string,
    totalFee: Number(params.total_fee),
    notifyUrl: params.notify_url as string,
    fingerprint,
    prepayId: newPrepayId(now),
    tradeState: 'NOTPAY',
    createdAt: Math.floor(now.getTime() / 1000),
  };
  merchant.store.orders.set(outTradeNo, order);
  merchant.extras.set(outTradeNo, { signType, attach: params.attach, deviceInfo: params.device_info });
  return { trade_type: 'JSAPI', prepay_id: order.prepayId };
}

/** `POST /pay/orderquery` (查询订单) by transaction_id or out_trade_no: the trade state, and the payment once paid. */
function orderQuery(merchant: V2Merchant, params: Record<string, string>): Fields {
  const order = findOrder(merchant, params);
  const extra = merchant.extras.get(order.outTradeNo);
  return {
    device_info: extra?.deviceInfo,
    ...(order.tradeState === 'SUCCESS' ? paidFields(order) : {}),
    trade_type: 'JSAPI',
    trade_state: order.tradeState,
    trade_state_desc: TRADE_STATE_DESC[order.tradeState],
    out_trade_no: order.outTradeNo,
    attach: extra?.attach,
    total_fee: order.totalFee,
    fee_type: 'CNY',
  };
}

/** `POST /pay/closeorder` (关闭订单) by out_trade_no: an unpaid open order becomes CLOSED. */
function closeOrder(merchant: V2Merchant, params: Record<string, string>): Fields {
  if (!params.out_trade_no) throw new V2Refusal('LACK_PARAMS', '缺少参数 out_trade_no');
  const order = findOrder(merchant, { appid: params.appid ?? '', out_trade_no: params.out_trade_no });
  if (order.tradeState === 'SUCCESS') throw new V2Refusal('ORDERPAID', '订单已支付，不能发起关单');
  if (order.tradeState === 'CLOSED') throw new V2Refusal('ORDERCLOSED', '订单已关闭，无法重复关闭');
  order.tradeState = 'CLOSED';
  return { result_msg: 'OK' };
}

/** `POST /secapi/pay/refund` (申请退款): accepted → the refund's ids and amounts (fen); WeChat finishes it later. */
function refund(merchant: V2Merchant, params: Record<string, string>): Fields {
  for (const name of ['out_refund_no', 'total_fee', 'refund_fee', 'out_trade_no']) {
    if (!params[name]) throw new V2Refusal('PARAM_ERROR', `缺少参数 ${name}`);
  }
  if (!OUT_REFUND_NO.test(params.out_refund_no as string))
    throw new V2Refusal('PARAM_ERROR', 'out_refund_no 格式错误');
  if (!isTotalFeeText(params.total_fee as string) || !isTotalFeeText(params.refund_fee as string)) {
    throw new V2Refusal('PARAM_ERROR', 'total_fee / refund_fee 应为正整数（单位：分）');
  }
  if (params.refund_desc !== undefined && [...params.refund_desc].length > 80) {
    throw new V2Refusal('PARAM_ERROR', 'refund_desc 不能超过80个字符');
  }
  let done: SandboxRefund;
  try {
    done = requestRefund(merchant.store, {
      version: 'v2',
      outTradeNo: params.out_trade_no as string,
      outRefundNo: params.out_refund_no as string,
      totalFee: Number(params.total_fee),
      refundFee: Number(params.refund_fee),
      reason: params.refund_desc,
      notifyUrl: params.notify_url ?? '',
    });
  } catch (error) {
    if (!(error instanceof RefundRefusal)) throw error;
    throw new V2Refusal(error.code === 'ORDERNOTEXIST' ? 'ERROR' : error.code, error.description);
  }
  return {
    transaction_id: done.transactionId,
    out_trade_no: done.outTradeNo,
    out_refund_no: done.outRefundNo,
    refund_id: done.refundId,
    refund_fee: done.refundFee,
    settlement_refund_fee: done.refundFee,
    total_fee: done.totalFee,
    settlement_total_fee: done.totalFee,
    fee_type: 'CNY',
    cash_fee: done.totalFee,
    cash_refund_fee: done.refundFee,
  };
}

/** `POST /pay/refundquery` (查询退款) by out_refund_no: that one refund as `$n = 0`; REFUNDNOTEXIST otherwise. */
function refundQuery(merchant: V2Merchant, params: Record<string, string>): Fields {
  const found = params.out_refund_no ? merchant.store.refunds.get(params.out_refund_no) : undefined;
  if (!found || found.version !== 'v2') throw new V2Refusal('REFUNDNOTEXIST', '退款订单查询失败');
  return {
    transaction_id: found.transactionId,
    out_trade_no: found.outTradeNo,
    total_fee: found.totalFee,
    cash_fee: found.totalFee,
    refund_count: 1,
    out_refund_no_0: found.outRefundNo,
    refund_id_0: found.refundId,
    refund_fee_0: found.refundFee,
    settlement_refund_fee_0: found.refundFee,
    refund_status_0: toV2RefundStatus(found.status),
    refund_account_0: 'REFUND_SOURCE_UNSETTLED_FUNDS',
    refund_recv_accout_0: '支付用户零钱',
    refund_success_time_0:
      found.successAt !== undefined ? formatV2DateTime(new Date(found.successAt * 1000)) : undefined,
  };
}

/** The plaintext fields of a v2 refund notify's `req_info` (退款结果通知). */
function refundNotifyFields(refund: SandboxRefund): Fields {
  return {
    out_refund_no: refund.outRefundNo,
    out_trade_no: refund.outTradeNo,
    refund_account: 'REFUND_SOURCE_UNSETTLED_FUNDS',
    refund_fee: refund.refundFee,
    refund_id: refund.refundId,
    refund_recv_accout: '支付用户零钱',
    refund_request_source: 'API',
    refund_status: toV2RefundStatus(refund.status),
    settlement_refund_fee: refund.refundFee,
    settlement_total_fee: refund.totalFee,
    success_time:
      refund.successAt !== undefined ? formatV2DateTime(new Date(refund.successAt * 1000)) : undefined,
    total_fee: refund.totalFee,
    transaction_id: refund.transactionId,
  };
}

/**
 * The signed v2 payment notify (支付结果通知) for a paid order, POSTed to its notify_url (`forged`: signed with a key
 * that is not the merchant's); accepted on a SUCCESS XML reply.
 */
function notifyV2(merchant: V2Merchant, order: SandboxOrder, forged = false): Promise<NotifyResult> {
  const extra = merchant.extras.get(order.outTradeNo);
  return sendNotify(
    order,
    () => ({
      headers: { 'content-type': 'text/xml' },
      body: v2NotifyXml({
        appId: order.appId,
        mchId: order.mchId,
        // A forged notify is signed by someone who does not hold the merchant key.
        key: forged ? FORGED_KEY : merchant.settings.mchKey,
        signType: extra?.signType ?? 'MD5',
        outTradeNo: order.outTradeNo,
        deviceInfo: extra?.deviceInfo,
        attach: extra?.attach,
        ...paidParts(order),
      }),
    }),
    (status, reply) => status >= 200 && status < 300 && replyAccepted(reply),
  );
}

/**
 * The checks every v2 call shares, in WeChat's order: a readable XML body → mch_id and appid ours → the sign
 * under the request's sign_type (MD5 by default) → nonce_str; then `endpoint` builds the business fields.
 */
function checked(merchant: V2Merchant, endpoint: V2Endpoint): (request: SandboxRequest) => SandboxReply {
  const { settings } = merchant;
  return (request) => {
    if (request.body.trim() === '') return communicationFail('post数据为空', 'POST_DATA_EMPTY');
    let params: Record<string, string>;
    try {
      params = parseV2Xml(request.body);
    } catch {
      return communicationFail('XML格式错误', 'XML_FORMAT_ERROR');
    }
    const declared = params.sign_type;
    const signType: V2SignType = declared === 'HMAC-SHA256' ? 'HMAC-SHA256' : 'MD5';
    try {
      if (declared !== undefined && !(V2_SIGN_TYPES as readonly string[]).includes(declared)) {
        throw new V2Refusal('INVALID_REQUEST', 'sign_type 参数错误，应为 MD5 或 HMAC-SHA256');
      }
      if (!params.mch_id) throw new V2Refusal('LACK_PARAMS', '缺少参数 mch_id');
      if (params.mch_id !== settings.mchId) throw new V2Refusal('MCHID_NOT_EXIST', '商户号不存在');
      if (!params.appid) throw new V2Refusal('LACK_PARAMS', '缺少参数 appid');
      if (params.appid !== settings.appId && !(settings.mpAppId && params.appid === settings.mpAppId))
        throw new V2Refusal('APPID_MCHID_NOT_MATCH', 'appid和mch_id不匹配');
      // WeChat answers a bad sign at the communication level; err_code names it for tests.
      if (!verifyV2Sign(params, settings.mchKey, [signType]))
        return communicationFail('签名错误', 'SIGNERROR');
      if (!params.nonce_str) throw new V2Refusal('LACK_PARAMS', '缺少参数 nonce_str');
      if (params.nonce_str.length > MAX_NONCE_LENGTH)
        throw new V2Refusal('INVALID_REQUEST', 'nonce_str 长度不能超过32位');
      return signed(merchant, signType, {
        appid: params.appid,
        result_code: 'SUCCESS',
        ...endpoint(merchant, params, signType),
      });
    } catch (error) {
      if (!(error instanceof V2Refusal)) throw error;
      return signed(merchant, signType, {
        appid: params.appid,
        result_code: 'FAIL',
        err_code: error.errCode,
        err_code_des: error.description,
      });
    }
  };
}

/** A signed answer: return_code SUCCESS, the request's appid (else the mini-program's), our mch_id, a fresh nonce_str, the fields, sign under `signType`. */
function signed(merchant: V2Merchant, signType: V2SignType, fields: Fields): SandboxReply {
  const params: Fields = {
    return_code: 'SUCCESS',
    return_msg: 'OK',
    appid: merchant.settings.appId,
    mch_id: merchant.settings.mchId,
    nonce_str: nonceStr(),
    ...fields,
  };
  params.sign = signV2(params, merchant.settings.mchKey, signType);
  return xmlReply(params);
}

/** The `busy` fault: a signed result_code FAIL SYSTEMERROR, under the sign_type of the request it answers. */
function busyReply(merchant: V2Merchant, request: SandboxRequest): SandboxReply {
  return signed(merchant, requestSignType(request.body), {
    result_code: 'FAIL',
    err_code: 'SYSTEMERROR',
    err_code_des: '系统繁忙，请稍后再试',
  });
}

/** The text/xml reply WeChat Pay v2 sends. */
function xmlReply(fields: Fields): SandboxReply {
  return { status: 200, headers: { 'content-type': 'text/xml' }, body: toV2Xml(fields) };
}

/** return_code FAIL: the communication-level refusal (unparsable body, bad sign); carries no sign. */
function communicationFail(message: string, errCode?: string): SandboxReply {
  return xmlReply({ return_code: 'FAIL', return_msg: message, ...(errCode ? { err_code: errCode } : {}) });
}

/** The sign_type a request asked for, MD5 when absent or unreadable (what WeChat signs its answer with). */
function requestSignType(body: string): V2SignType {
  try {
    return parseV2Xml(body).sign_type === 'HMAC-SHA256' ? 'HMAC-SHA256' : 'MD5';
  } catch {
    return 'MD5';
  }
}

/** The order a query or close names (transaction_id first, as WeChat does), if it is this merchant's. */
function findOrder(merchant: V2Merchant, params: Record<string, string>): SandboxOrder {
  const { settings, store } = merchant;
  const { transaction_id: transactionId, out_trade_no: outTradeNo } = params;
  if (!transactionId && !outTradeNo) {
    throw new V2Refusal('LACK_PARAMS', '缺少参数 out_trade_no 或 transaction_id');
  }
  const order = transactionId
    ? [...store.orders.values()].find((candidate) => candidate.transactionId === transactionId)
    : store.orders.get(outTradeNo as string);
  if (!order || order.mchId !== settings.mchId || order.appId !== params.appid) {
    throw new V2Refusal('ORDERNOTEXIST', '此交易订单号不存在');
  }
  return order;
}

/** The payment facts of a paid order as the floor's v2 builders take them (paidAt unix s, now if unset). */
function paidParts(order: SandboxOrder) {
  return {
    openid: order.openid,
    totalFee: order.totalFee,
    transactionId: order.transactionId ?? '',
    timeEnd: new Date((order.paidAt ?? Math.floor(Date.now() / 1000)) * 1000),
  };
}

/** The fields a paid order adds to orderquery: payer, transaction, amounts (fen), time_end (CST). */
function paidFields(order: SandboxOrder): Fields {
  return v2PaidFields(paidParts(order));
}

/** Whether a merchant's notify reply is WeChat's acknowledgement: XML with return_code SUCCESS. */
function replyAccepted(reply: string): boolean {
  try {
    return parseV2Xml(reply).return_code === 'SUCCESS';
  } catch {
    return false;
  }
}

/** unifiedorder's own checks (JSAPI): required fields → LACK_PARAMS; formats → INVALID_REQUEST. */
function checkUnifiedOrder(params: Record<string, string>): void {
  for (const name of ['body', 'out_trade_no', 'total_fee', 'spbill_create_ip', 'notify_url', 'trade_type']) {
    if (!params[name]) throw new V2Refusal('LACK_PARAMS', `缺少参数 ${name}`);
  }
  const invalid = (description: string) => new V2Refusal('INVALID_REQUEST', description);
  if (params.trade_type !== 'JSAPI') throw invalid('trade_type 参数错误（沙箱仅支持 JSAPI）');
  if (!params.openid) throw new V2Refusal('LACK_PARAMS', 'trade_type=JSAPI 时 openid 为必填参数');
  if (Buffer.byteLength(params.openid) > 128) throw invalid('openid 参数格式错误');
  if (Buffer.byteLength(params.body as string) > 127) throw invalid('body 长度不能超过127字节');
  if (params.attach !== undefined && Buffer.byteLength(params.attach) > 127) {
    throw invalid('attach 长度不能超过127字节');
  }
  if (!OUT_TRADE_NO.test(params.out_trade_no as string)) {
    throw invalid('out_trade_no 应为 6–32 位数字、字母或 _-|*');
  }
  if (!isTotalFeeText(params.total_fee as string)) {
    throw invalid('total_fee 应为正整数（单位：分）');
  }
  if (params.fee_type && params.fee_type !== 'CNY') throw invalid('fee_type 仅支持 CNY');
  if (!isIp(params.spbill_create_ip as string)) throw invalid('spbill_create_ip 格式错误');
  let notifyUrl: URL;
  try {
    notifyUrl = new URL(params.notify_url as string);
  } catch {
    throw invalid('notify_url 格式错误');
  }
  // The real API wants a public https address; the sandbox also takes http for loopback.
  if (
    !['https:', 'http:'].includes(notifyUrl.protocol) ||
    (params.notify_url as string).length > 256 ||
    notifyUrl.search !== '' ||
    (params.notify_url as string).includes('?') ||
    notifyUrl.hash !== ''
  ) {
    throw invalid('notify_url 应为可直接访问的地址，不能携带参数');
  }
  for (const name of ['time_start', 'time_expire']) {
    const value = params[name];
    if (value === undefined) continue;
    let at: string;
    try {
      at = parseTimeEnd(value);
    } catch {
      throw invalid(`${name} 格式错误，应为 yyyyMMddHHmmss`);
    }
    if (name === 'time_expire' && new Date(at).getTime() <= Date.now()) throw invalid('time_expire 已过期');
  }
}
