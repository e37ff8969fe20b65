import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import middy, { type MiddlewareObj } from '@middy/core';
import httpHeaderNormalizer from '@middy/http-header-normalizer';
import httpJsonBodyParser from '@middy/http-json-body-parser';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2, Context } from 'aws-lambda';
import type { NotifyReply, NotifyRequest, PaymentProvider } from '#lib/clients/payment-provider';
import { paymentProviders } from '#lib/clients/wechat-pay';
import { type Config, loadConfig } from '#lib/config';
import { ANSWER_MARGIN_MS, DeadlineExceededError, withDeadline } from '#lib/deadline';
import {
  AppError,
  type FieldError,
  NotifyRejectedError,
  PayloadTooLargeError,
  PaymentRejectedError,
  type PaymentRejection,
  TooManyRequestsError,
  ValidationError,
} from '#lib/errors';
import { logger } from '#lib/logger';

export type HttpEvent = Omit<APIGatewayProxyEventV2, 'body'> & { body?: unknown };
export type HttpResult = APIGatewayProxyStructuredResultV2;
type Route = (event: HttpEvent, context: Context) => Promise<HttpResult>;

const JSON_HEADERS = { 'content-type': 'application/json; charset=utf-8' };

/** A success envelope `{success: true, message, data}` (seeds/000 contract). */
export function ok(data: Record<string, unknown>, message = '操作成功', statusCode = 200): HttpResult {
  return { statusCode, headers: JSON_HEADERS, body: JSON.stringify({ success: true, message, data }) };
}

/** An empty 204 answer (sign-out). */
export function noContent(): HttpResult {
  return { statusCode: 204 };
}

/** A failure envelope `{success: false, message, code}`, plus `errors: [{field, code}]` for a validation failure. */
export function failure(
  statusCode: number,
  code: string,
  message: string,
  headers: Record<string, string> = {},
  errors?: FieldError[],
): HttpResult {
  return {
    statusCode,
    headers: { ...JSON_HEADERS, ...headers },
    body: JSON.stringify({ success: false, message, code, ...(errors ? { errors } : {}) }),
  };
}

/**
 * True for a dependency that did not answer before its timeout or the invocation's deadline: the SDK's
 * TimeoutError (requestTimeout) and AbortError (deadline signal), DeadlineExceededError, middy's early
 * TimeoutError.
 */
function isTimeout(error: unknown): boolean {
  const name = (error as { name?: unknown })?.name;
  return error instanceof DeadlineExceededError || name === 'TimeoutError' || name === 'AbortError';
}

/**
 * Maps any thrown error to the envelope: typed errors keep their status; a dependency that did not answer in
 * time is a 503 SERVICE_UNAVAILABLE with retry-after (as is every typed 503); everything else is a logged 500.
 */
export function errorToResponse(error: unknown): HttpResult {
  if (isTimeout(error)) {
    logger.error('a dependency did not answer in time', { error: error as Error });
    return failure(503, 'SERVICE_UNAVAILABLE', '服务繁忙，请稍后再试', { 'retry-after': '1' });
  }
  if (error instanceof AppError) {
    const log = error.status >= 500 ? logger.error.bind(logger) : logger.warn.bind(logger);
    log('request failed', { code: error.code, status: error.status, detail: error.detail });
    if (error.status >= 500 && error.code === 'CONFIG_ERROR') {
      return failure(500, 'INTERNAL_ERROR', '服务器内部错误');
    }
    const headers: Record<string, string> =
      error instanceof TooManyRequestsError
        ? { 'retry-after': String(error.retryAfterSeconds) }
        : error.status === 503
          ? { 'retry-after': '1' }
          : {};
    const errors = error instanceof ValidationError ? error.errors : undefined;
    return failure(error.status, error.code, error.message, headers, errors);
  }
  // middy's own http errors (json body parser): 415 unsupported media type, 422 malformed JSON.
  const status = (error as { statusCode?: unknown })?.statusCode;
  if (status === 415) return failure(415, 'UNSUPPORTED_MEDIA_TYPE', '请使用 application/json 提交');
  if (status === 422 || status === 400) return failure(400, 'INVALID_JSON', '请求体不是合法的 JSON');
  logger.error('unhandled error', { error: error as Error });
  return failure(500, 'INTERNAL_ERROR', '服务器内部错误');
}

function bodySizeCap(maxBytes: number): MiddlewareObj<HttpEvent> {
  return {
    before: ({ event }) => {
      const body = typeof event.body === 'string' ? event.body : '';
      const bytes = event.isBase64Encoded ? Math.floor((body.length * 3) / 4) : Buffer.byteLength(body);
      if (bytes > maxBytes) throw new PayloadTooLargeError();
    },
  };
}

function envelopeErrors(): MiddlewareObj<HttpEvent, HttpResult> {
  return {
    onError: (request) => {
      request.response = errorToResponse(request.error);
    },
  };
}

export interface RouteOptions {
  /** Parse a JSON body (POST/PUT). */
  jsonBody?: boolean;
  /** Body size cap in bytes, checked before parsing. */
  maxBodyBytes?: number;
}

/**
 * Middy's own early timeout, a backstop behind the invocation's deadline (lib/deadline), which ends every
 * dependency call ANSWER_MARGIN_MS before the Lambda's timeout: should the route still run this close to
 * it, middy answers `respond()` rather than letting the Lambda time out without an answer.
 */
function earlyTimeout(respond: () => unknown) {
  return { timeoutEarlyInMillis: Math.floor(ANSWER_MARGIN_MS / 2), timeoutEarlyResponse: respond };
}

/**
 * The one middy wrapper for API routes: logging context, header normalisation, size cap, JSON body,
 * envelope errors; the route runs under the invocation's deadline, and a route still running at middy's
 * early timeout answers 503 SERVICE_UNAVAILABLE.
 */
export function httpHandler(route: Route, options: RouteOptions = {}) {
  const handler = middy<HttpEvent, HttpResult>(
    earlyTimeout(() => {
      throw new DeadlineExceededError('route');
    }),
  )
    .use(injectLambdaContext(logger))
    .use(httpHeaderNormalizer())
    .use(envelopeErrors())
    .use(bodySizeCap(options.maxBodyBytes ?? 4096));
  if (options.jsonBody) handler.use(httpJsonBodyParser());
  return handler.handler((event, context) => withDeadline(context, () => route(event, context)));
}

/** The caller's IP address as API Gateway saw it (for spbill_create_ip / payer_client_ip). */
export function clientIp(event: HttpEvent): string {
  return event.requestContext?.http?.sourceIp ?? '127.0.0.1';
}

/** Notify bodies above this are refused before any parsing, bytes (a real one is about 1–2 KB). */
export const MAX_NOTIFY_BYTES = 64 * 1024;

/** The notify reply status for each reason the payments domain refuses to credit a payment. */
const REJECTION_STATUS: Record<PaymentRejection, number> = {
  merchant_mismatch: 400,
  currency_mismatch: 400,
  amount_mismatch: 400,
  unknown_order: 404,
  paid_by_other: 409,
  not_pending: 409,
  owner_missing: 409,
  refund_mismatch: 409,
  refund_abnormal: 409,
};

/** What a notify route works with: the loaded config and the WeChat Pay client of the notify's version. */
export interface NotifyContext {
  config: Config;
  provider: PaymentProvider;
}

/** What the transport loads: the config and its clients (the current version's first). */
export interface NotifyClients {
  config: Config;
  providers: readonly PaymentProvider[];
}

/** A notify route: returns when WeChat may be acknowledged; throws to make WeChat deliver again. */
export type NotifyRoute = (request: NotifyRequest, context: NotifyContext) => Promise<void>;

/** The raw body as WeChat signed it (base64-decoded when API Gateway flagged it), size-capped. */
function notifyRequest(event: APIGatewayProxyEventV2): NotifyRequest {
  const body = event.body ?? '';
  if (body.length > MAX_NOTIFY_BYTES * 2) throw new NotifyRejectedError('body too large', 413);
  const text = event.isBase64Encoded ? Buffer.from(body, 'base64').toString('utf8') : body;
  // A UTF-16 unit is at most 3 UTF-8 bytes, so only a body over a third of the cap needs counting.
  if (text.length * 3 > MAX_NOTIFY_BYTES && Buffer.byteLength(text) > MAX_NOTIFY_BYTES) {
    throw new NotifyRejectedError('body too large', 413);
  }
  return { headers: event.headers ?? {}, body: text };
}

/** Maps a notify failure to WeChat's FAIL reply of the configured version; every refusal is logged. */
function notifyFailure(provider: PaymentProvider, error: unknown): NotifyReply {
  if (error instanceof NotifyRejectedError) {
    logger.error('notify refused', { reason: error.message, detail: error.detail });
    return provider.notifyFail(error.status, error.message);
  }
  if (error instanceof PaymentRejectedError) {
    logger.error('notify refused', { reason: error.message, rejection: error.reason, detail: error.detail });
    return provider.notifyFail(REJECTION_STATUS[error.reason], error.message);
  }
  logger.error('notify failed', { error: error as Error });
  return provider.notifyFail(500, 'internal error');
}

async function loadNotifyClients(): Promise<NotifyClients> {
  const config = await loadConfig();
  return { config, providers: paymentProviders(config) };
}

/**
 * The transport of WeChat Pay notifies, as `httpHandler` is for API routes: loads the config (a failure
 * answers 500 so WeChat retries), caps and decodes the raw body, picks the client whose format it is (v2 XML
 * or v3 JSON; during a migration window both are configured), runs the route, and answers WeChat's own
 * success reply, or its FAIL reply (which WeChat retries) with the status this module maps the error to.
 * `load` is replaceable for tests that pin a config or clients.
 */
export function notifyHandler(route: NotifyRoute, load: () => Promise<NotifyClients> = loadNotifyClients) {
  return middy<APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2>(
    earlyTimeout(() => {
      logger.error('notify ran into the early timeout');
      return bareFail('timeout');
    }),
  )
    .use(injectLambdaContext(logger))
    .handler((event, context) => withDeadline(context, () => notify(route, load, event)));
}

/** A FAIL reply before any client is known (WeChat retries a 5xx whatever its body). */
function bareFail(message: string): APIGatewayProxyStructuredResultV2 {
  return {
    statusCode: 500,
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ code: 'FAIL', message }),
  };
}

async function notify(
  route: NotifyRoute,
  load: () => Promise<NotifyClients>,
  event: APIGatewayProxyEventV2,
): Promise<APIGatewayProxyStructuredResultV2> {
  let clients: NotifyClients;
  try {
    clients = await load();
  } catch (error) {
    logger.error('notify config failed', {
      detail: error instanceof AppError ? error.detail : undefined,
    });
    return bareFail('config');
  }
  let provider = clients.providers[0] as PaymentProvider;
  try {
    const request = notifyRequest(event);
    provider = clients.providers.find((candidate) => candidate.accepts(request)) ?? provider;
    await route(request, { config: clients.config, provider });
    return provider.notifyAck();
  } catch (error) {
    return notifyFailure(provider, error);
  }
}
