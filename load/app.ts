/**
 * The app under load, imported dynamically (after the environment is set: lib/clients/dynamodb reads
 * DYNAMODB_ENDPOINT at import time), plus what drives it: a DynamoDB call counter on the shared client,
 * per-scenario tables, seeding through the real code, signed v2/v3 notifies, and reply classification.
 */
import { createPrivateKey, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { createTables } from '#local/tables';

export const ROOT = resolve(import.meta.dirname, '..');

/** Imports every app module the harness drives. Call only after applyLocalEnv(). */
export async function loadApp() {
  const [
    notifyFn,
    signInFn,
    meFn,
    getOrderFn,
    createPaymentFn,
    dynamodb,
    config,
    payments,
    plans,
    orders,
    users,
    v2,
    v3,
    notifyHelpers,
    events,
    sandboxV3,
    v3Client,
  ] = await Promise.all([
    import('#functions/pay-notify'),
    import('#functions/sign-in'),
    import('#functions/me'),
    import('#functions/get-order'),
    import('#functions/create-payment'),
    import('#lib/clients/dynamodb'),
    import('#lib/config'),
    import('#lib/payments'),
    import('#lib/plans'),
    import('#lib/repositories/order-repository'),
    import('#lib/users'),
    import('#lib/wechat-pay/v2-protocol'),
    import('#lib/wechat-pay/v3-protocol'),
    import('#local/fixtures/notify'),
    import('#local/fixtures/events'),
    import('#local/sandbox/pay-v3'),
    import('#lib/clients/wechat-pay-v3'),
  ]);
  return {
    handlers: {
      notify: notifyFn.handler,
      signIn: signInFn.handler,
      me: meFn.handler,
      getOrder: getOrderFn.handler,
      createPayment: createPaymentFn.handler,
    },
    dynamo: dynamodb.dynamo(),
    loadConfig: config.loadConfig,
    resetConfigCache: config.resetConfigCache,
    extendMembership: payments.extendMembership,
    PLANS: plans.PLANS,
    findPlan: plans.findPlan,
    createOrder: orders.createOrder,
    userIdForOpenid: users.userIdForOpenid,
    v2,
    v3,
    v2NotifyXml: notifyHelpers.v2NotifyXml,
    httpEvent: events.httpEvent,
    context: events.context,
    sandboxV3,
    formatRfc3339Cst: v3Client.formatRfc3339Cst,
  };
}

export type App = Awaited<ReturnType<typeof loadApp>>;
export type OrderRecord = import('#lib/repositories/order-repository').OrderRecord;
export type Plan = import('#lib/plans').Plan;

/** Counts every command the shared `dynamo` client sends, by name (INV-4 and retry accounting). */
export class CallCounter {
  readonly byName = new Map<string, number>();
  /** Duration of every call in ms (SDK queueing and retries included). */
  durations: number[] = [];
  /** Calls the SDK had to send more than once (its own retries: throttling, timeouts, 5xx). */
  sdkRetried = 0;

  constructor(app: App) {
    app.dynamo.middlewareStack.add(
      (next, context) => async (args) => {
        const name = String(context.commandName);
        this.byName.set(name, (this.byName.get(name) ?? 0) + 1);
        const started = performance.now();
        let attempts = 1;
        try {
          const output = await next(args);
          attempts = (output.output as { $metadata?: { attempts?: number } }).$metadata?.attempts ?? 1;
          return output;
        } catch (error) {
          attempts = (error as { $metadata?: { attempts?: number } }).$metadata?.attempts ?? 1;
          throw error;
        } finally {
          this.durations.push(performance.now() - started);
          if (attempts > 1) this.sdkRetried++;
        }
      },
      { step: 'initialize', name: 'loadCounter' },
    );
  }

  reset(): void {
    this.byName.clear();
    this.durations = [];
    this.sdkRetried = 0;
  }

  total(): number {
    let sum = 0;
    for (const count of this.byName.values()) sum += count;
    return sum;
  }

  /** Calls of one operation, whichever client sent it (the document client reports the low-level name, e.g. GetItemCommand). */
  get(operation: 'Get' | 'Put' | 'Update' | 'TransactWrite' | 'Query' | 'Scan'): number {
    const lowLevel = operation === 'TransactWrite' ? 'TransactWriteItems' : `${operation}Item`;
    return (this.byName.get(`${operation}Command`) ?? 0) + (this.byName.get(`${lowLevel}Command`) ?? 0);
  }

  snapshot(): Record<string, number> {
    return Object.fromEntries(this.byName);
  }
}

export interface Tables {
  users: string;
  orders: string;
}

/**
 * Points the app at a fresh pair of tables for one scenario: creates them from serverless.yml, sets
 * USERS_TABLE/ORDERS_TABLE (plus any extra env) and drops the cached config so the next call re-reads it.
 */
export async function useFreshTables(
  app: App,
  endpoint: string,
  scenario: string,
  extraEnv: Record<string, string> = {},
): Promise<Tables> {
  const tables = { users: `load-${scenario}-users`, orders: `load-${scenario}-orders` };
  await createTables(endpoint, { UsersTable: tables.users, OrdersTable: tables.orders }, true);
  Object.assign(process.env, { USERS_TABLE: tables.users, ORDERS_TABLE: tables.orders, ...extraEnv });
  app.resetConfigCache();
  return tables;
}

/** Plays `wx.login` on the sandbox: a fresh single-use code for `openid`. */
export async function sandboxCode(sandboxUrl: string, openid: string): Promise<string> {
  const response = await fetch(`${sandboxUrl}/sandbox/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ openid }),
  });
  if (!response.ok) throw new Error(`sandbox login answered ${response.status}`);
  return ((await response.json()) as { code: string }).code;
}

export interface SignedIn {
  openid: string;
  userId: string;
  token: string;
}

/** Signs a user in through the real sign-in handler (code2Session against the sandbox). */
export async function signInThroughHandler(
  app: App,
  sandboxUrl: string,
  openid: string,
  code?: string,
): Promise<{ status: number; body: Record<string, unknown>; signedIn?: SignedIn }> {
  const loginCode = code ?? (await sandboxCode(sandboxUrl, openid));
  const result = (await app.handlers.signIn(
    app.httpEvent({ method: 'POST', path: '/wechat/sign_in', body: { code: loginCode } }),
    app.context,
  )) as APIGatewayProxyStructuredResultV2;
  const body = JSON.parse(result.body ?? '{}') as {
    data?: { token?: string; user?: { id?: string } };
  };
  const status = result.statusCode ?? 0;
  const token = body.data?.token;
  const userId = body.data?.user?.id;
  return {
    status,
    body: body as Record<string, unknown>,
    signedIn: status === 200 && token && userId ? { openid, userId, token } : undefined,
  };
}

/** A PENDING order written through the repository (no prepay needed for notify-driven scenarios). */
export function pendingOrder(
  input: { outTradeNo: string; userId: string; openid: string; plan: Plan },
  version: 'v2' | 'v3' = 'v2',
): OrderRecord {
  const now = new Date();
  return {
    outTradeNo: input.outTradeNo,
    userId: input.userId,
    openid: input.openid,
    planId: input.plan.id,
    description: `会员-${input.plan.name}`,
    totalFee: input.plan.totalFee,
    status: 'PENDING',
    payVersion: version,
    clientIp: '203.0.113.7',
    createdAt: now.toISOString(),
    timeExpire: new Date(now.getTime() + 2 * 3600 * 1000).toISOString(),
  };
}

/** A 28-digit WeChat-style transaction_id, unique per (scenario, seed, index). */
export function transactionIdFor(scenarioNumber: number, seed: number, index: number): string {
  return `4200${String(scenarioNumber).padStart(2, '0')}${String(seed % 1_000_000).padStart(6, '0')}${String(index).padStart(16, '0')}`;
}

/** One notify as API Gateway would hand it to the payNotify function. */
export interface Delivery {
  version: 'v2' | 'v3';
  outTradeNo: string;
  headers: Record<string, string>;
  body: string;
  isBase64Encoded?: boolean;
  /** What a genuine notify reports, so a refused one can be re-sent freshly signed (WeChat's retries). */
  paid?: PaidFacts;
  signType?: 'MD5' | 'HMAC-SHA256';
}

export interface PaidFacts {
  outTradeNo: string;
  transactionId: string;
  totalFee: number;
  openid: string;
}

/** A genuine v2 notify for a paid order, freshly signed (new nonce_str) every call. */
export function v2Delivery(app: App, paid: PaidFacts, signType: 'MD5' | 'HMAC-SHA256' = 'MD5'): Delivery {
  return {
    version: 'v2',
    outTradeNo: paid.outTradeNo,
    headers: { 'content-type': 'text/xml' },
    body: app.v2NotifyXml({
      outTradeNo: paid.outTradeNo,
      totalFee: paid.totalFee,
      transactionId: paid.transactionId,
      openid: paid.openid,
      signType,
    }),
    paid,
    signType,
  };
}

/** Keys of the local WeChat Pay v3 stand-in (local/keys and .env.example). */
export interface V3Keys {
  payPrivateKey: KeyObject;
  apiV3Key: Buffer;
  serial: string;
  /** A different RSA key (the merchant's), for "signed by the wrong key" forgeries. */
  wrongKey: KeyObject;
}

export function v3Keys(): V3Keys {
  return {
    payPrivateKey: createPrivateKey(readFileSync(resolve(ROOT, 'local/keys/wechatpay-private.pem'), 'utf8')),
    apiV3Key: Buffer.from(process.env.WECHAT_APIV3_KEY ?? '', 'utf8'),
    serial: process.env.WECHAT_PAY_PUBLIC_KEY_ID || 'PUB_KEY_ID_0114232019112100000000000001',
    wrongKey: createPrivateKey(readFileSync(resolve(ROOT, 'local/keys/merchant-private.pem'), 'utf8')),
  };
}

export interface V3NotifyOptions {
  timestamp?: number;
  serial?: string;
  /** Replace the computed signature. */
  signature?: string;
  /** Sign with this key instead. */
  signingKey?: KeyObject;
  /** Change the body after signing. */
  tamper?: (body: string) => string;
  /** Drop a header (simulates a proxy that strips it). */
  dropHeader?: string;
}

/** A v3 TRANSACTION.SUCCESS notify as the sandbox builds it (buildV3Notify), then altered as `options` say. */
export function v3Delivery(app: App, keys: V3Keys, paid: PaidFacts, options: V3NotifyOptions = {}): Delivery {
  const notice = app.sandboxV3.buildV3Notify({
    transaction: {
      appid: process.env.WECHAT_APPID,
      mchid: process.env.WECHAT_MCH_ID,
      out_trade_no: paid.outTradeNo,
      transaction_id: paid.transactionId,
      trade_type: 'JSAPI',
      trade_state: 'SUCCESS',
      trade_state_desc: '支付成功',
      bank_type: 'OTHERS',
      attach: '',
      success_time: app.formatRfc3339Cst(new Date()),
      payer: { openid: paid.openid },
      amount: { total: paid.totalFee, payer_total: paid.totalFee, currency: 'CNY', payer_currency: 'CNY' },
    },
    apiV3Key: keys.apiV3Key,
    privateKey: options.signingKey ?? keys.payPrivateKey,
    serial: options.serial ?? keys.serial,
    timestamp: options.timestamp,
  });
  // Function URLs and HTTP APIs deliver lower-case header names.
  const headers = Object.fromEntries(
    Object.entries(notice.headers).map(([name, value]) => [name.toLowerCase(), value]),
  );
  if (options.signature) headers['wechatpay-signature'] = options.signature;
  if (options.dropHeader) delete headers[options.dropHeader];
  return {
    version: 'v3',
    outTradeNo: paid.outTradeNo,
    headers,
    body: options.tamper ? options.tamper(notice.body) : notice.body,
    paid,
  };
}

/** The same payment notified again, freshly signed (new nonce, new timestamp), as a WeChat retry is. */
export function resend(app: App, keys: V3Keys | undefined, delivery: Delivery): Delivery {
  if (!delivery.paid)
    throw new Error(`cannot resend a notify for ${delivery.outTradeNo} without its payment facts`);
  if (delivery.version === 'v3') {
    if (!keys) throw new Error('cannot resend a v3 notify without v3 keys');
    return v3Delivery(app, keys, delivery.paid);
  }
  return v2Delivery(app, delivery.paid, delivery.signType);
}

export type Outcome = 'ack' | 'fail' | 'error';

/** How WeChat would read the reply: v2 SUCCESS XML / v3 2xx = ack; v2 "internal error" / v3 5xx = error. */
export function classify(
  version: 'v2' | 'v3',
  result: APIGatewayProxyStructuredResultV2,
): {
  outcome: Outcome;
  reason: string;
} {
  const status = result.statusCode ?? 0;
  const body = result.body ?? '';
  if (version === 'v2') {
    if (status === 200 && body.includes('<return_code><![CDATA[SUCCESS]]></return_code>')) {
      return { outcome: 'ack', reason: 'SUCCESS' };
    }
    const message = /<return_msg><!\[CDATA\[(.*?)\]\]><\/return_msg>/.exec(body)?.[1] ?? `http ${status}`;
    return { outcome: status >= 500 || message === 'internal error' ? 'error' : 'fail', reason: message };
  }
  if (status === 200 || status === 204) return { outcome: 'ack', reason: String(status) };
  let message = '';
  try {
    message = String((JSON.parse(body) as { message?: unknown }).message ?? '');
  } catch {
    message = body.slice(0, 40);
  }
  return { outcome: status >= 500 ? 'error' : 'fail', reason: `${status} ${message}` };
}

/** Delivers one notify to the payNotify handler in this process. */
export async function deliver(app: App, delivery: Delivery): Promise<{ outcome: Outcome; reason: string }> {
  const result = (await app.handlers.notify(
    app.httpEvent({
      method: 'POST',
      path: '/wechat/notify',
      headers: delivery.headers,
      body: delivery.body,
      isBase64Encoded: delivery.isBase64Encoded,
    }),
    app.context,
  )) as APIGatewayProxyStructuredResultV2;
  return classify(delivery.version, result);
}

/** Tallies outcomes and failure reasons. */
export class Tally {
  ack = 0;
  fail = 0;
  error = 0;
  readonly reasons = new Map<string, number>();

  add(result: { outcome: Outcome; reason: string }): void {
    this[result.outcome]++;
    if (result.outcome !== 'ack') this.reasons.set(result.reason, (this.reasons.get(result.reason) ?? 0) + 1);
  }

  merge(other: { ack: number; fail: number; error: number; reasons: [string, number][] }): void {
    this.ack += other.ack;
    this.fail += other.fail;
    this.error += other.error;
    for (const [reason, count] of other.reasons)
      this.reasons.set(reason, (this.reasons.get(reason) ?? 0) + count);
  }

  toJSON(): { ack: number; fail: number; error: number; reasons: [string, number][] } {
    return { ack: this.ack, fail: this.fail, error: this.error, reasons: [...this.reasons] };
  }

  reasonsText(): string {
    return [...this.reasons].map(([reason, count]) => `${reason}×${count}`).join(', ');
  }
}
