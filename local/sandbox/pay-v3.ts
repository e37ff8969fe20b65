import { createPrivateKey, createPublicKey, type KeyObject, randomBytes, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { envValue } from '#lib/env';
import { splitPems } from '#lib/secrets';
import { isIp, newPrepayId, OUT_REFUND_NO, OUT_TRADE_NO } from '#lib/wechat-pay/fields';
import { buildV3Notify } from '#lib/wechat-pay/notify-builders';
import { formatRfc3339Cst, RFC3339_PATTERN } from '#lib/wechat-pay/time';
import {
  decryptSensitiveField,
  V3DecryptError,
  V3SignatureError,
  type V3SignatureReason,
  verifyAuthorization,
  verifyRsaSha256,
  wechatpayHeaders,
} from '#lib/wechat-pay/v3-protocol';
import { sendNotify } from './notify-deliverer';
import type { NotifyResult, NotifyVariant, PayStore, SandboxOrder, SandboxRefund } from './pay-store';
import { RefundRefusal, reapplyAbnormalRefund, requestRefund } from './refunds';
import type { RouteHandler, Sandbox, SandboxReply, SandboxRequest } from './server';

/**
 * Plays WeChat Pay API v3 (api.mch.weixin.qq.com) for one merchant: the merchant Authorization is checked on
 * every call, every answer is signed like WeChat's (Wechatpay-Timestamp/Nonce/Signature/Serial), and paid
 * orders are announced with the real encrypted TRANSACTION.SUCCESS notify. Orders live in the shared PayStore.
 */

export interface PayV3Settings {
  appId: string;
  /** The official account's AppID (H5 JSAPI orders), also bound to this merchant; optional. */
  mpAppId?: string;
  mchId: string;
  /** The 32-byte APIv3 key notifies are encrypted with. */
  apiV3Key: Buffer;
  /** Public half of the merchant API key (WECHAT_MCH_PRIVATE_KEY): checks the Authorization signature. */
  merchantPublicKey: KeyObject;
  /** The merchant API certificate serial the Authorization must name (WECHAT_MCH_SERIAL_NO). */
  merchantSerialNo: string;
  /** What responses and notifies are signed with (SANDBOX_PAY_PRIVATE_KEY). */
  payPrivateKey: KeyObject;
  /** `public-key`: Wechatpay-Serial = publicKeyId; `certificate`: the platform certificate serial. */
  mode: 'public-key' | 'certificate';
  publicKeyId: string;
  platformCertSerial: string;
}

type Json = Record<string, unknown>;

/** One sandbox v3 merchant: its settings, the shared orders and the Wechatpay-Serial its answers carry. */
export interface V3Merchant {
  settings: PayV3Settings;
  store: PayStore;
  serial: string;
}

/** The v3 merchant the sandbox plays with these settings (also the bill endpoints', local/sandbox/bill.ts). */
export function v3Merchant(settings: PayV3Settings, store: PayStore): V3Merchant {
  return {
    settings,
    store,
    serial: settings.mode === 'public-key' ? settings.publicKeyId : settings.platformCertSerial,
  };
}

const TRANSACTIONS = '/v3/pay/transactions/out-trade-no/';
const REFUNDS = '/v3/refund/domestic/refunds';
/** The 401 message for each way a merchant Authorization fails. */
const AUTHORIZATION_FAILURES: Partial<Record<V3SignatureReason, string>> = {
  unknown_mchid: 'mchid 与商户不符',
  unknown_serial: '商户证书序列号有误',
  bad_timestamp: '时间戳超出有效期',
  stale_timestamp: '时间戳超出有效期',
  bad_signature: '签名错误',
};

/**
 * The sandbox's v3 settings from the names the app reads; a key left empty falls back to the dev pair in
 * local/keys.
 */
export function payV3SettingsFromEnv(): PayV3Settings {
  const devFile = (name: string) => readFileSync(new URL(`../keys/${name}`, import.meta.url), 'utf8');
  const pem = (name: string, file: string) => envValue(name).replace(/\\n/g, '\n') || devFile(file);
  const payPrivateKey = createPrivateKey(pem('SANDBOX_PAY_PRIVATE_KEY', 'wechatpay-private.pem'));
  const payPublicKey = createPublicKey(payPrivateKey);
  // The platform certificate that certifies the sandbox key: among the configured ones, else the dev one.
  const certificates = [
    ...splitPems(envValue('WECHAT_PAY_PLATFORM_CERTS').replace(/\\n/g, '\n')),
    devFile('wechatpay-platform-cert.pem'),
  ].map((text) => new X509Certificate(text));
  const platformCert =
    certificates.find((cert) => cert.publicKey.equals(payPublicKey)) ?? certificates.at(-1);
  const mchPem = pem('WECHAT_MCH_PRIVATE_KEY', 'merchant-private.pem');
  const mode = envValue('SANDBOX_PAY_KEY_MODE', 'public-key');
  if (mode !== 'public-key' && mode !== 'certificate') {
    throw new Error('SANDBOX_PAY_KEY_MODE must be public-key or certificate');
  }
  return {
    appId: envValue('WECHAT_APPID'),
    mpAppId: envValue('WECHAT_MP_APPID'),
    mchId: envValue('WECHAT_MCH_ID'),
    apiV3Key: Buffer.from(envValue('WECHAT_APIV3_KEY'), 'utf8'),
    merchantPublicKey: createPublicKey(mchPem),
    merchantSerialNo:
      envValue('WECHAT_MCH_SERIAL_NO') || new X509Certificate(devFile('merchant-cert.pem')).serialNumber,
    payPrivateKey,
    mode,
    publicKeyId: envValue('WECHAT_PAY_PUBLIC_KEY_ID') || 'PUB_KEY_ID_0114232019112100000000000001',
    platformCertSerial: (platformCert?.serialNumber ?? '').toUpperCase(),
  };
}

/** The decrypted `transaction` resource (the order-query model) for a sandbox order; amounts integer fen. */
export function v3Transaction(order: SandboxOrder): Json {
  const paid = order.tradeState === 'SUCCESS';
  return {
    appid: order.appId,
    mchid: order.mchId,
    out_trade_no: order.outTradeNo,
    ...(paid ? { transaction_id: order.transactionId } : {}),
    trade_type: 'JSAPI',
    trade_state: order.tradeState,
    trade_state_desc: { NOTPAY: '未支付', SUCCESS: '支付成功', CLOSED: '已关闭' }[order.tradeState],
    ...(paid ? { bank_type: 'OTHERS' } : {}),
    attach: '',
    ...(paid && order.paidAt !== undefined
      ? { success_time: formatRfc3339Cst(new Date(order.paidAt * 1000)) }
      : {}),
    payer: { openid: order.openid },
    amount: {
      total: order.totalFee,
      ...(paid ? { payer_total: order.totalFee } : {}),
      currency: 'CNY',
      payer_currency: 'CNY',
    },
  };
}

/** Registers the v3 endpoints (jsapi prepay, query and close by out_trade_no) and `store.notifiers.v3`. */
export function registerPayV3(sandbox: Sandbox, store: PayStore, settings: PayV3Settings): void {
  const merchant = v3Merchant(settings, store);
  sandbox.route('POST', '/v3/pay/transactions/jsapi', guarded(merchant, jsapiPrepay), () =>
    fail(merchant, 500, 'SYSTEM_ERROR', '系统繁忙，请稍后重试'),
  );
  // `GET …/out-trade-no/{no}?mchid=` (query) and `POST …/out-trade-no/{no}/close`.
  sandbox.routePrefix('GET', TRANSACTIONS, guarded(merchant, queryByOutTradeNo));
  sandbox.routePrefix('POST', TRANSACTIONS, guarded(merchant, closeByOutTradeNo));
  store.notifiers.v3 = (order, variant) => notifyV3(merchant, order, variant);
  sandbox.route('POST', REFUNDS, guarded(merchant, createRefund), () =>
    fail(merchant, 500, 'SYSTEM_ERROR', '系统繁忙，请稍后重试'),
  );
  sandbox.routePrefix('GET', `${REFUNDS}/`, guarded(merchant, queryRefund));
  sandbox.routePrefix('POST', `${REFUNDS}/`, guarded(merchant, applyAbnormalRefund));
  store.refundNotifiers.v3 = (refund, order) =>
    sendNotify(
      order,
      () =>
        buildV3Notify({
          transaction: refundNotifyResource(merchant, refund),
          apiV3Key: merchant.settings.apiV3Key,
          privateKey: merchant.settings.payPrivateKey,
          serial: merchant.serial,
          eventType: `REFUND.${refund.status}`,
          originalType: 'refund',
        }),
      (status) => status >= 200 && status < 300,
    );
  store.paySignCheckers.v3 = (params) =>
    params.signType === 'RSA' &&
    verifyRsaSha256(
      settings.merchantPublicKey,
      `${params.appId}\n${params.timeStamp}\n${params.nonceStr}\n${params.package}\n`,
      params.paySign,
    );
}

/** The refund model of 退款申请 / 查询单笔退款 (amounts integer fen). */
function refundModel(refund: SandboxRefund): Json {
  return {
    refund_id: refund.refundId,
    out_refund_no: refund.outRefundNo,
    transaction_id: refund.transactionId,
    out_trade_no: refund.outTradeNo,
    channel: 'ORIGINAL',
    user_received_account: '支付用户零钱',
    ...(refund.successAt !== undefined
      ? { success_time: formatRfc3339Cst(new Date(refund.successAt * 1000)) }
      : {}),
    create_time: formatRfc3339Cst(new Date(refund.createdAt * 1000)),
    status: refund.status,
    funds_account: 'AVAILABLE',
    amount: {
      total: refund.totalFee,
      refund: refund.refundFee,
      from: [],
      payer_total: refund.totalFee,
      payer_refund: refund.refundFee,
      settlement_refund: refund.refundFee,
      settlement_total: refund.totalFee,
      discount_refund: 0,
      currency: 'CNY',
    },
    promotion_detail: [],
  };
}

/** The decrypted resource of a v3 refund notify (退款结果通知). */
function refundNotifyResource(merchant: V3Merchant, refund: SandboxRefund): Json {
  return {
    mchid: merchant.settings.mchId,
    transaction_id: refund.transactionId,
    out_trade_no: refund.outTradeNo,
    refund_id: refund.refundId,
    out_refund_no: refund.outRefundNo,
    refund_status: refund.status,
    ...(refund.successAt !== undefined
      ? { success_time: formatRfc3339Cst(new Date(refund.successAt * 1000)) }
      : {}),
    user_received_account: '支付用户零钱',
    amount: {
      total: refund.totalFee,
      refund: refund.refundFee,
      payer_total: refund.totalFee,
      payer_refund: refund.refundFee,
    },
  };
}

/** `POST /v3/refund/domestic/refunds` (退款申请): the refund model, PROCESSING (the same one for a repeated number). */
function createRefund(merchant: V3Merchant, request: SandboxRequest): SandboxReply {
  const body = jsonBody(request);
  if (!isObject(body)) return fail(merchant, 400, 'PARAM_ERROR', '请求体不是合法的 JSON 对象');
  const {
    out_trade_no: outTradeNo,
    out_refund_no: outRefundNo,
    notify_url: notifyUrl,
    reason,
    amount,
  } = body;
  if (typeof outTradeNo !== 'string' || !OUT_TRADE_NO.test(outTradeNo)) {
    return fail(merchant, 400, 'PARAM_ERROR', '缺少参数 out_trade_no 或格式错误');
  }
  if (typeof outRefundNo !== 'string' || !OUT_REFUND_NO.test(outRefundNo)) {
    return fail(merchant, 400, 'PARAM_ERROR', 'out_refund_no 格式错误');
  }
  if (reason !== undefined && (typeof reason !== 'string' || [...reason].length > 80)) {
    return fail(merchant, 400, 'PARAM_ERROR', 'reason 不能超过80个字符');
  }
  const fen = (value: unknown) => typeof value === 'number' && Number.isSafeInteger(value) && value > 0;
  if (!isObject(amount) || !fen(amount.refund) || !fen(amount.total) || amount.currency !== 'CNY') {
    return fail(
      merchant,
      400,
      'PARAM_ERROR',
      'amount.refund / amount.total 应为正整数（单位：分），currency 为 CNY',
    );
  }
  try {
    const refund = requestRefund(merchant.store, {
      version: 'v3',
      outTradeNo,
      outRefundNo,
      totalFee: amount.total as number,
      refundFee: amount.refund as number,
      ...(typeof reason === 'string' ? { reason } : {}),
      notifyUrl: typeof notifyUrl === 'string' ? notifyUrl : '',
    });
    return reply(merchant, 200, refundModel(refund));
  } catch (error) {
    if (!(error instanceof RefundRefusal)) throw error;
    const code = error.code === 'ORDERNOTEXIST' ? 'RESOURCE_NOT_EXISTS' : error.code;
    return fail(merchant, error.httpStatus, code, error.description);
  }
}

/** `GET /v3/refund/domestic/refunds/{out_refund_no}` (查询单笔退款): the refund model; 404 RESOURCE_NOT_EXISTS. */
function queryRefund(merchant: V3Merchant, request: SandboxRequest): SandboxReply {
  const outRefundNo = decodeURIComponent(request.url.pathname.slice(REFUNDS.length + 1));
  const refund = merchant.store.refunds.get(outRefundNo);
  if (!refund || refund.version !== 'v3') return fail(merchant, 404, 'RESOURCE_NOT_EXISTS', '退款单不存在');
  return reply(merchant, 200, refundModel(refund));
}

/**
 * `POST /v3/refund/domestic/refunds/{refund_id}/apply-abnormal-refund` (发起异常退款) `{out_refund_no, type, bank_type?,
 * bank_account?, real_name?}`: Wechatpay-Serial must name the sandbox's key; for USER_BANK_CARD bank_account and
 * real_name are decrypted with its private key (RSA-OAEP). The refund model, PROCESSING; 404 RESOURCE_NOT_EXISTS for
 * an unknown refund_id; 400 PARAM_ERROR for a bad body, serial or ciphertext; 400 INVALID_REQUEST unless ABNORMAL.
 */
function applyAbnormalRefund(merchant: V3Merchant, request: SandboxRequest): SandboxReply {
  const rest = request.url.pathname.slice(REFUNDS.length + 1);
  if (!rest.endsWith('/apply-abnormal-refund')) return fail(merchant, 404, 'NOT_FOUND', '资源不存在');
  const refundId = decodeURIComponent(rest.slice(0, -'/apply-abnormal-refund'.length));
  if (request.headers['wechatpay-serial'] !== merchant.serial) {
    return fail(merchant, 400, 'PARAM_ERROR', 'Wechatpay-Serial 与加密使用的微信支付公钥或平台证书不符');
  }
  const body = jsonBody(request);
  if (!isObject(body)) return fail(merchant, 400, 'PARAM_ERROR', '请求体不是合法的 JSON 对象');
  const { out_refund_no: outRefundNo, type } = body;
  if (typeof outRefundNo !== 'string' || !OUT_REFUND_NO.test(outRefundNo)) {
    return fail(merchant, 400, 'PARAM_ERROR', 'out_refund_no 格式错误');
  }
  if (type !== 'USER_BANK_CARD' && type !== 'MERCHANT_BANK_CARD') {
    return fail(merchant, 400, 'PARAM_ERROR', 'type 应为 USER_BANK_CARD 或 MERCHANT_BANK_CARD');
  }
  let bank = {};
  if (type === 'USER_BANK_CARD') {
    const { bank_type: bankType, bank_account: account, real_name: name } = body;
    if (!isString(bankType, 32) || typeof account !== 'string' || typeof name !== 'string') {
      return fail(merchant, 400, 'PARAM_ERROR', 'USER_BANK_CARD 需要 bank_type、bank_account 与 real_name');
    }
    try {
      const key = merchant.settings.payPrivateKey;
      bank = {
        bankType,
        bankAccount: decryptSensitiveField(key, account),
        realName: decryptSensitiveField(key, name),
      };
    } catch (error) {
      if (!(error instanceof TypeError || error instanceof V3DecryptError)) throw error;
      return fail(merchant, 400, 'PARAM_ERROR', 'bank_account 或 real_name 解密失败');
    }
  }
  try {
    const refund = reapplyAbnormalRefund(merchant.store, { refundId, outRefundNo, type, ...bank });
    return reply(merchant, 200, refundModel(refund));
  } catch (error) {
    if (!(error instanceof RefundRefusal)) throw error;
    return fail(merchant, error.httpStatus, error.code, error.description);
  }
}

/** `POST /v3/pay/transactions/jsapi` (JSAPI/小程序下单): a new order → `{prepay_id}`; the same body again → the same id. */
function jsapiPrepay(merchant: V3Merchant, request: SandboxRequest): SandboxReply {
  const { settings, store } = merchant;
  const body = jsonBody(request);
  if (body === undefined) return fail(merchant, 400, 'PARAM_ERROR', '请求体不是合法的 JSON');
  const problem = jsapiProblem(body);
  if (problem) return fail(merchant, 400, 'PARAM_ERROR', problem);
  const fields = body as JsapiBody;
  if (fields.mchid !== settings.mchId) return fail(merchant, 400, 'MCH_NOT_EXISTS', '商户号不存在');
  if (fields.appid !== settings.appId && !(settings.mpAppId && fields.appid === settings.mpAppId)) {
    return fail(merchant, 400, 'APPID_MCHID_NOT_MATCH', 'appid和mch_id不匹配');
  }
  const fingerprint = JSON.stringify([
    'v3',
    fields.appid,
    fields.mchid,
    fields.description,
    fields.notify_url,
    fields.amount.total,
    fields.amount.currency ?? 'CNY',
    fields.payer.openid,
  ]);
  const existing = store.orders.get(fields.out_trade_no);
  if (existing) {
    if (existing.tradeState === 'SUCCESS') return fail(merchant, 400, 'ORDERPAID', '该订单已支付');
    if (existing.tradeState === 'CLOSED') return fail(merchant, 400, 'ORDER_CLOSED', '订单已关闭');
    if (existing.fingerprint !== fingerprint) {
      return fail(merchant, 400, 'INVALID_REQUEST', '同一笔订单的请求参数与原请求不一致');
    }
    return reply(merchant, 200, { prepay_id: existing.prepayId });
  }
  const now = new Date();
  const order: SandboxOrder = {
    version: 'v3',
    outTradeNo: fields.out_trade_no,
    appId: fields.appid,
    mchId: fields.mchid,
    openid: fields.payer.openid,
    description: fields.description,
    totalFee: fields.amount.total,
    notifyUrl: fields.notify_url,
    fingerprint,
    prepayId: newPrepayId(now),
    tradeState: 'NOTPAY',
    createdAt: Math.floor(now.getTime() / 1000),
  };
  store.orders.set(order.outTradeNo, order);
  return reply(merchant, 200, { prepay_id: order.prepayId });
}

/** `GET /v3/pay/transactions/out-trade-no/{out_trade_no}?mchid=` (查询订单): the transaction model. */
function queryByOutTradeNo(merchant: V3Merchant, request: SandboxRequest): SandboxReply {
  const outTradeNo = decodeURIComponent(request.url.pathname.slice(TRANSACTIONS.length));
  if (!OUT_TRADE_NO.test(outTradeNo)) return fail(merchant, 404, 'NOT_FOUND', '资源不存在');
  const mchid = request.url.searchParams.get('mchid');
  const order = merchantOrder(merchant, outTradeNo, mchid);
  return 'status' in order ? order : reply(merchant, 200, v3Transaction(order));
}

/** `POST /v3/pay/transactions/out-trade-no/{out_trade_no}/close {mchid}` (关闭订单): 204, the order CLOSED. */
function closeByOutTradeNo(merchant: V3Merchant, request: SandboxRequest): SandboxReply {
  const rest = request.url.pathname.slice(TRANSACTIONS.length);
  if (!rest.endsWith('/close')) return fail(merchant, 404, 'NOT_FOUND', '资源不存在');
  const outTradeNo = decodeURIComponent(rest.slice(0, -'/close'.length));
  if (!OUT_TRADE_NO.test(outTradeNo)) return fail(merchant, 404, 'NOT_FOUND', '资源不存在');
  const body = jsonBody(request);
  if (body === undefined) return fail(merchant, 400, 'PARAM_ERROR', '请求体不是合法的 JSON');
  const mchid = isObject(body) && typeof body.mchid === 'string' ? body.mchid : null;
  const order = merchantOrder(merchant, outTradeNo, mchid);
  if ('status' in order) return order;
  if (order.tradeState === 'SUCCESS') return fail(merchant, 400, 'ORDERPAID', '该订单已支付');
  order.tradeState = 'CLOSED';
  return reply(merchant, 204);
}

/**
 * The signed, encrypted TRANSACTION.SUCCESS notify (支付通知) for a paid order, POSTed to its notify_url, or one of
 * the probes a merchant must refuse (NotifyVariant); accepted on any 2xx.
 */
function notifyV3(
  merchant: V3Merchant,
  order: SandboxOrder,
  variant: NotifyVariant = 'genuine',
): Promise<NotifyResult> {
  const build = () => {
    const notify = buildV3Notify({
      transaction: v3Transaction(order),
      apiV3Key: merchant.settings.apiV3Key,
      privateKey: merchant.settings.payPrivateKey,
      serial: merchant.serial,
      ...(variant === 'stale' ? { timestamp: Math.floor(Date.now() / 1000) - STALE_SECONDS } : {}),
    });
    if (variant === 'forged') return { ...notify, body: notify.body.replace('"EV-', '"EV-forged-') };
    if (variant === 'signtest') {
      const probe = `WECHATPAY/SIGNTEST/${randomBytes(32).toString('base64')}`;
      return { ...notify, headers: { ...notify.headers, 'Wechatpay-Signature': probe } };
    }
    return notify;
  };
  return sendNotify(order, build, (status) => status >= 200 && status < 300);
}

/** How old a stale notify's Wechatpay-Timestamp is, seconds (the merchant accepts 300). */
const STALE_SECONDS = 600;

/** Runs an endpoint behind the merchant Authorization check; anything unexpected answers a signed 500 SYSTEM_ERROR. */
function guarded(
  merchant: V3Merchant,
  endpoint: (merchant: V3Merchant, request: SandboxRequest) => SandboxReply,
): RouteHandler {
  return (request) => {
    try {
      return authorize(merchant, request) ?? endpoint(merchant, request);
    } catch (error) {
      return fail(merchant, 500, 'SYSTEM_ERROR', `系统错误 (${(error as Error).message})`);
    }
  };
}

/** The merchant Authorization (verifyAuthorization) → undefined when valid, else a signed 401 SIGN_ERROR. */
export function authorize(merchant: V3Merchant, request: SandboxRequest): SandboxReply | undefined {
  const { settings } = merchant;
  const header = request.headers.authorization;
  try {
    verifyAuthorization({
      header: typeof header === 'string' ? header : '',
      method: request.method,
      url: `${request.url.pathname}${request.url.search}`,
      body: request.body,
      publicKey: settings.merchantPublicKey,
      mchId: settings.mchId,
      serialNo: settings.merchantSerialNo,
      now: Date.now() / 1000,
    });
    return undefined;
  } catch (error) {
    if (!(error instanceof V3SignatureError)) throw error;
    const message = AUTHORIZATION_FAILURES[error.reason] ?? `Authorization 无效 (${error.reason})`;
    return fail(merchant, 401, 'SIGN_ERROR', message);
  }
}

/**
 * The order `mchid` asks about, if it is ours: else 400 PARAM_ERROR (no mchid), MCH_NOT_EXISTS or 404
 * ORDER_NOT_EXIST.
 */
function merchantOrder(
  merchant: V3Merchant,
  outTradeNo: string,
  mchid: string | null,
): SandboxOrder | SandboxReply {
  const { settings, store } = merchant;
  if (!mchid) return fail(merchant, 400, 'PARAM_ERROR', '缺少参数 mchid');
  if (mchid !== settings.mchId) return fail(merchant, 400, 'MCH_NOT_EXISTS', '商户号不存在');
  const order = store.orders.get(outTradeNo);
  if (!order || order.mchId !== settings.mchId) return fail(merchant, 404, 'ORDER_NOT_EXIST', '订单不存在');
  return order;
}

/** A signed answer (wechatpayHeaders over the JSON body, '' for none) with a Request-ID. */
export function reply(merchant: V3Merchant, status: number, payload?: Json): SandboxReply {
  const body = payload === undefined ? '' : JSON.stringify(payload);
  return {
    status,
    headers: {
      ...(body === '' ? {} : { 'Content-Type': 'application/json' }),
      'Request-ID': randomBytes(12).toString('hex'),
      ...wechatpayHeaders(merchant.settings.payPrivateKey, merchant.serial, body),
    },
    body,
  };
}

/** A signed error answer `{code, message}`. */
function fail(merchant: V3Merchant, status: number, code: string, message: string): SandboxReply {
  return reply(merchant, status, { code, message });
}

/** The parsed JSON body, undefined when it is not JSON. */
function jsonBody(request: SandboxRequest): unknown {
  try {
    return JSON.parse(request.body) as unknown;
  } catch {
    return undefined;
  }
}

interface JsapiBody {
  appid: string;
  mchid: string;
  description: string;
  out_trade_no: string;
  notify_url: string;
  amount: { total: number; currency?: string };
  payer: { openid: string };
}

function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isString(value: unknown, maxBytes: number): value is string {
  return typeof value === 'string' && value !== '' && Buffer.byteLength(value, 'utf8') <= maxBytes;
}

/** What the real API answers PARAM_ERROR for in a JSAPI prepay body; undefined when the body is acceptable. */
function jsapiProblem(body: unknown): string | undefined {
  if (!isObject(body)) return '请求体应为 JSON 对象';
  if (!isString(body.appid, 32)) return '缺少参数 appid 或格式错误';
  if (!isString(body.mchid, 32)) return '缺少参数 mchid 或格式错误';
  if (!isString(body.description, 127)) return '缺少参数 description 或超长';
  if (typeof body.out_trade_no !== 'string' || !OUT_TRADE_NO.test(body.out_trade_no)) {
    return 'out_trade_no 应为 6–32 位数字、字母或 _-|*';
  }
  if (!isString(body.notify_url, 255)) return '缺少参数 notify_url';
  let notifyUrl: URL;
  try {
    notifyUrl = new URL(body.notify_url);
  } catch {
    return 'notify_url 格式错误';
  }
  // The real API wants https; the sandbox also takes http for loopback.
  if (!['https:', 'http:'].includes(notifyUrl.protocol) || notifyUrl.search !== '' || notifyUrl.hash !== '') {
    return 'notify_url 应为 https 地址且不能携带参数';
  }
  const { amount, payer } = body;
  if (!isObject(amount)) return '缺少参数 amount';
  if (typeof amount.total !== 'number' || !Number.isSafeInteger(amount.total) || amount.total <= 0) {
    return 'amount.total 应为正整数（单位：分）';
  }
  if (amount.currency !== undefined && amount.currency !== 'CNY') return 'amount.currency 仅支持 CNY';
  if (!isObject(payer) || !isString(payer.openid, 128)) return '缺少参数 payer.openid';
  if (body.time_expire !== undefined) {
    if (typeof body.time_expire !== 'string' || !RFC3339_PATTERN.test(body.time_expire)) {
      return 'time_expire 应为 RFC 3339 格式';
    }
  }
  if (body.scene_info !== undefined) {
    const scene = body.scene_info;
    if (!isObject(scene) || typeof scene.payer_client_ip !== 'string' || !isIp(scene.payer_client_ip)) {
      return 'scene_info.payer_client_ip 格式错误';
    }
  }
  return undefined;
}
