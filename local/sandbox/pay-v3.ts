import {
  createPrivateKey,
  createPublicKey,
  type KeyObject,
  randomBytes,
  randomInt,
  X509Certificate,
} from 'node:crypto';
import { readFileSync } from 'node:fs';
import { formatRfc3339Cst } from '#lib/clients/wechat-pay-v3';
import { envValue } from '#lib/config';
import { splitPems } from '#lib/secrets';
import {
  aesGcmEncrypt,
  parseAuthorization,
  signResponse,
  V3SignatureError,
  verifyRsaSha256,
} from '#lib/wechat-pay/v3-protocol';
import type { PayStore, SandboxOrder } from './pay-store';
import type { Sandbox, SandboxReply, SandboxRequest } from './server';

/**
 * Plays WeChat Pay API v3 (api.mch.weixin.qq.com) for one merchant: the merchant Authorization is checked on
 * every call, every answer is signed like WeChat's (Wechatpay-Timestamp/Nonce/Signature/Serial), and paid
 * orders are announced with the real encrypted TRANSACTION.SUCCESS notify. Orders live in the shared PayStore.
 */

export interface PayV3Settings {
  appId: string;
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

const MAX_SKEW_SECONDS = 300;
const NOTIFY_TIMEOUT_MS = 5000;
const OUT_TRADE_NO = /^[0-9A-Za-z_\-|*]{6,32}$/;
const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$/;
const IPV4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;
const TRANSACTIONS = '/v3/pay/transactions/out-trade-no/';
const ALPHANUMERIC = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

type Json = Record<string, unknown>;

/** The sandbox's v3 settings from the names the app reads; a key left empty falls back to the dev pair in local/keys. */
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

/** The `Wechatpay-*` headers WeChat Pay puts on a response or notify with this body (signed `timestamp\nnonce\nbody\n`). */
export function wechatpayHeaders(
  privateKey: KeyObject,
  serial: string,
  body: string,
  timestamp = Math.floor(Date.now() / 1000),
  nonce = randomBytes(16).toString('hex'),
): Record<string, string> {
  return {
    'Wechatpay-Timestamp': String(timestamp),
    'Wechatpay-Nonce': nonce,
    'Wechatpay-Signature': signResponse(privateKey, timestamp, nonce, body),
    'Wechatpay-Serial': serial,
    'Wechatpay-Signature-Type': 'WECHATPAY2-SHA256-RSA2048',
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

export interface V3NotifyInput {
  transaction: Json;
  apiV3Key: Buffer;
  privateKey: KeyObject;
  serial: string;
  eventType?: string;
  originalType?: string;
  /** Unix seconds of the Wechatpay-Timestamp header. */
  timestamp?: number;
}

/** A v3 payment notify as WeChat Pay POSTs it: the encrypt-resource envelope (AEAD_AES_256_GCM, AAD = original_type) and its signed headers. */
export function buildV3Notify(input: V3NotifyInput): { headers: Record<string, string>; body: string } {
  const originalType = input.originalType ?? 'transaction';
  const nonce = Array.from({ length: 12 }, () => ALPHANUMERIC[randomInt(ALPHANUMERIC.length)]).join('');
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

/** Registers the v3 endpoints (jsapi prepay, query and close by out_trade_no) and `store.notifiers.v3`. */
export function registerPayV3(sandbox: Sandbox, store: PayStore, settings: PayV3Settings): void {
  const serial = settings.mode === 'public-key' ? settings.publicKeyId : settings.platformCertSerial;

  const reply = (status: number, payload?: Json): SandboxReply => {
    const body = payload === undefined ? '' : JSON.stringify(payload);
    return {
      status,
      headers: {
        ...(body === '' ? {} : { 'Content-Type': 'application/json' }),
        'Request-ID': randomBytes(12).toString('hex'),
        ...wechatpayHeaders(settings.payPrivateKey, serial, body),
      },
      body,
    };
  };
  const fail = (status: number, code: string, message: string) => reply(status, { code, message });

  /** The merchant Authorization (WECHATPAY2-SHA256-RSA2048) over `METHOD\nURL\nTS\nNONCE\nBODY\n`; undefined when valid. */
  const authorize = (request: SandboxRequest): SandboxReply | undefined => {
    const header = request.headers.authorization;
    let auth: ReturnType<typeof parseAuthorization>;
    try {
      auth = parseAuthorization(typeof header === 'string' ? header : '');
    } catch (error) {
      const reason = error instanceof V3SignatureError ? error.reason : 'bad_authorization';
      return fail(401, 'SIGN_ERROR', `Authorization 无效 (${reason})`);
    }
    if (auth.mchid !== settings.mchId) return fail(401, 'SIGN_ERROR', 'mchid 与商户不符');
    if (auth.serial_no.toUpperCase() !== settings.merchantSerialNo.toUpperCase()) {
      return fail(401, 'SIGN_ERROR', '商户证书序列号有误');
    }
    const timestamp = /^\d{1,10}$/.test(auth.timestamp) ? Number(auth.timestamp) : Number.NaN;
    if (!(Math.abs(Date.now() / 1000 - timestamp) <= MAX_SKEW_SECONDS)) {
      return fail(401, 'SIGN_ERROR', '时间戳超出有效期');
    }
    const url = `${request.url.pathname}${request.url.search}`;
    const message = `${request.method}\n${url}\n${auth.timestamp}\n${auth.nonce_str}\n${request.body}\n`;
    if (!verifyRsaSha256(settings.merchantPublicKey, message, auth.signature)) {
      return fail(401, 'SIGN_ERROR', '签名错误');
    }
    return undefined;
  };

  /** Runs a handler behind the Authorization check; anything unexpected answers a signed 500 SYSTEM_ERROR. */
  const guarded =
    (handler: (request: SandboxRequest) => SandboxReply) =>
    (request: SandboxRequest): SandboxReply => {
      try {
        return authorize(request) ?? handler(request);
      } catch (error) {
        return fail(500, 'SYSTEM_ERROR', `系统错误 (${(error as Error).message})`);
      }
    };

  sandbox.route(
    'POST',
    '/v3/pay/transactions/jsapi',
    guarded((request) => {
      let body: unknown;
      try {
        body = JSON.parse(request.body);
      } catch {
        return fail(400, 'PARAM_ERROR', '请求体不是合法的 JSON');
      }
      const problem = jsapiProblem(body);
      if (problem) return fail(400, 'PARAM_ERROR', problem);
      const fields = body as JsapiBody;
      if (fields.mchid !== settings.mchId) return fail(400, 'MCH_NOT_EXISTS', '商户号不存在');
      if (fields.appid !== settings.appId) return fail(400, 'APPID_MCHID_NOT_MATCH', 'appid和mch_id不匹配');

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
        if (existing.tradeState === 'SUCCESS') return fail(400, 'ORDERPAID', '该订单已支付');
        if (existing.tradeState === 'CLOSED') return fail(400, 'ORDER_CLOSED', '订单已关闭');
        if (existing.fingerprint !== fingerprint) {
          return fail(400, 'INVALID_REQUEST', '同一笔订单的请求参数与原请求不一致');
        }
        return reply(200, { prepay_id: existing.prepayId });
      }
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
        prepayId: `wx${formatRfc3339Cst(new Date()).replace(/\D/g, '').slice(0, 14)}${randomBytes(11).toString('hex')}`,
        tradeState: 'NOTPAY',
        createdAt: Math.floor(Date.now() / 1000),
      };
      store.orders.set(order.outTradeNo, order);
      return reply(200, { prepay_id: order.prepayId });
    }),
    () => fail(500, 'SYSTEM_ERROR', '系统繁忙，请稍后重试'),
  );

  // `GET …/out-trade-no/{no}?mchid=` (query) and `POST …/out-trade-no/{no}/close`.
  sandbox.routePrefix(
    'GET',
    TRANSACTIONS,
    guarded((request) => {
      const outTradeNo = decodeURIComponent(request.url.pathname.slice(TRANSACTIONS.length));
      if (!OUT_TRADE_NO.test(outTradeNo)) return fail(404, 'NOT_FOUND', '资源不存在');
      const mchid = request.url.searchParams.get('mchid');
      if (!mchid) return fail(400, 'PARAM_ERROR', '缺少参数 mchid');
      if (mchid !== settings.mchId) return fail(400, 'MCH_NOT_EXISTS', '商户号不存在');
      const order = store.orders.get(outTradeNo);
      if (!order || order.mchId !== settings.mchId) return fail(404, 'ORDER_NOT_EXIST', '订单不存在');
      return reply(200, v3Transaction(order));
    }),
  );

  sandbox.routePrefix(
    'POST',
    TRANSACTIONS,
    guarded((request) => {
      const rest = request.url.pathname.slice(TRANSACTIONS.length);
      if (!rest.endsWith('/close')) return fail(404, 'NOT_FOUND', '资源不存在');
      const outTradeNo = decodeURIComponent(rest.slice(0, -'/close'.length));
      if (!OUT_TRADE_NO.test(outTradeNo)) return fail(404, 'NOT_FOUND', '资源不存在');
      let body: unknown;
      try {
        body = JSON.parse(request.body);
      } catch {
        return fail(400, 'PARAM_ERROR', '请求体不是合法的 JSON');
      }
      const mchid = isObject(body) ? body.mchid : undefined;
      if (typeof mchid !== 'string' || mchid === '') return fail(400, 'PARAM_ERROR', '缺少参数 mchid');
      if (mchid !== settings.mchId) return fail(400, 'MCH_NOT_EXISTS', '商户号不存在');
      const order = store.orders.get(outTradeNo);
      if (!order || order.mchId !== settings.mchId) return fail(404, 'ORDER_NOT_EXIST', '订单不存在');
      if (order.tradeState === 'SUCCESS') return fail(400, 'ORDERPAID', '该订单已支付');
      order.tradeState = 'CLOSED';
      return reply(204);
    }),
  );

  store.notifiers.v3 = async (order) => {
    if (order.tradeState !== 'SUCCESS' || !order.transactionId) {
      return { status: null, reply: 'order is not paid', accepted: false };
    }
    let notify: { headers: Record<string, string>; body: string };
    try {
      notify = buildV3Notify({
        transaction: v3Transaction(order),
        apiV3Key: settings.apiV3Key,
        privateKey: settings.payPrivateKey,
        serial,
      });
    } catch (error) {
      return { status: null, reply: `cannot build notify: ${(error as Error).message}`, accepted: false };
    }
    try {
      const response = await fetch(order.notifyUrl, {
        method: 'POST',
        headers: notify.headers,
        body: notify.body,
        signal: AbortSignal.timeout(NOTIFY_TIMEOUT_MS),
      });
      const text = await response.text();
      return {
        status: response.status,
        reply: text,
        accepted: response.status >= 200 && response.status < 300,
      };
    } catch (error) {
      return { status: null, reply: `network: ${(error as Error).name}`, accepted: false };
    }
  };
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
    if (typeof body.time_expire !== 'string' || !RFC3339.test(body.time_expire)) {
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

function isIp(value: string): boolean {
  const v4 = IPV4.exec(value);
  if (v4) return v4.slice(1).every((part) => Number(part) <= 255);
  return /^[0-9A-Fa-f:.]{2,45}$/.test(value) && value.includes(':');
}
