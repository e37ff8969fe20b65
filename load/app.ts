/**
 * The app under load, plus what drives it: a DynamoDB call counter on the shared client, per-scenario tables,
 * seeding through the real code, signed v2/v3 notifies, and reply classification. Importing this module
 * evaluates the app's modules: the environment must be applied first (load/environment.ts; lib/logger reads
 * its level at import).
 */
import type { APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { handler as createPayment } from '#functions/create-payment';
import { handler as getOrder } from '#functions/get-order';
import { handler as me } from '#functions/me';
import { handler as notify } from '#functions/pay-notify';
import { handler as signIn } from '#functions/sign-in';
import { dynamo } from '#lib/clients/dynamodb';
import { loadConfig, resetConfigCache } from '#lib/config';
import { applyRefundReport, newOutRefundNo } from '#lib/payments/refunds';
import { extendMembership } from '#lib/payments/rules';
import { findPlan, PLANS, type Plan } from '#lib/plans';
import { createOrder, type OrderRecord } from '#lib/repositories/order-repository';
import { refundKey, reserveRefund } from '#lib/repositories/refund-repository';
import { findUserByOpenid, toUserRecord } from '#lib/repositories/user-repository';
import { context, httpEvent } from '#local/fixtures/events';
import { v2NotifyXml } from '#local/fixtures/notify';
import { type V3Keys, type V3NotifyOptions, v3Notify } from '#local/fixtures/v3';
import { createTables } from '#local/tables';

export type { OrderRecord, Plan };

/**
 * The handlers and app functions the harness drives; builds the shared DynamoDB client, which reads
 * DYNAMODB_ENDPOINT.
 */
export function createApp() {
  return {
    handlers: { notify, signIn, me, getOrder, createPayment },
    dynamo: dynamo(),
    loadConfig,
    resetConfigCache,
    extendMembership,
    /** A stored user item as the app reads it (membershipEndMs as membershipExpiredAt). */
    toUserRecord,
    PLANS,
    findPlan,
    createOrder,
    reserveRefund,
    refundKey,
    newOutRefundNo,
    applyRefundReport,
    /** The id of the user an openid is linked to (undefined when none is). */
    userIdOf: async (openid: string) => (await findUserByOpenid((await loadConfig()).usersTable, openid))?.id,
    v2NotifyXml,
    httpEvent,
    context,
  };
}

export type App = ReturnType<typeof createApp>;

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

  /**
   * Calls of one operation, whichever client sent it (the document client reports the low-level name, e.g.
   * GetItemCommand).
   */
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

/** A v3 notify for a paid order (see v3Notify), freshly signed every call. */
export function v3Delivery(keys: V3Keys, paid: PaidFacts, options: V3NotifyOptions = {}): Delivery {
  return { version: 'v3', outTradeNo: paid.outTradeNo, ...v3Notify(keys, paid, options), paid };
}

/** The same payment notified again, freshly signed (new nonce, new timestamp), as a WeChat retry is. */
export function resend(app: App, keys: V3Keys | undefined, delivery: Delivery): Delivery {
  if (!delivery.paid)
    throw new Error(`cannot resend a notify for ${delivery.outTradeNo} without its payment facts`);
  if (delivery.version === 'v3') {
    if (!keys) throw new Error('cannot resend a v3 notify without v3 keys');
    return v3Delivery(keys, delivery.paid);
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
