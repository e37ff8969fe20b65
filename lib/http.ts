import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import middy, { type MiddlewareObj } from '@middy/core';
import httpHeaderNormalizer from '@middy/http-header-normalizer';
import httpJsonBodyParser from '@middy/http-json-body-parser';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2, Context } from 'aws-lambda';
import { AppError, PayloadTooLargeError, TooManyRequestsError } from './errors';
import { logger } from './logger';

export type HttpEvent = Omit<APIGatewayProxyEventV2, 'body'> & { body?: unknown };
export type HttpResult = APIGatewayProxyStructuredResultV2;
type Route = (event: HttpEvent, context: Context) => Promise<HttpResult>;

const JSON_HEADERS = { 'content-type': 'application/json; charset=utf-8' };

/** A success envelope `{success: true, message, data}` (seeds/000 contract). */
export function ok(data: Record<string, unknown>, message = '操作成功', statusCode = 200): HttpResult {
  return { statusCode, headers: JSON_HEADERS, body: JSON.stringify({ success: true, message, data }) };
}

/** A failure envelope `{success: false, message, code}`. */
export function failure(
  statusCode: number,
  code: string,
  message: string,
  headers: Record<string, string> = {},
): HttpResult {
  return {
    statusCode,
    headers: { ...JSON_HEADERS, ...headers },
    body: JSON.stringify({ success: false, message, code }),
  };
}

/** Maps any thrown error to the envelope: typed errors keep their status; everything else is a logged 500. */
export function errorToResponse(error: unknown): HttpResult {
  if (error instanceof AppError) {
    const log = error.status >= 500 ? logger.error.bind(logger) : logger.warn.bind(logger);
    log('request failed', { code: error.code, status: error.status, detail: error.detail });
    if (error.status >= 500 && error.code === 'CONFIG_ERROR') {
      return failure(500, 'INTERNAL_ERROR', '服务器内部错误');
    }
    const headers: Record<string, string> =
      error instanceof TooManyRequestsError ? { 'retry-after': String(error.retryAfterSeconds) } : {};
    return failure(error.status, error.code, error.message, headers);
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

/** The one middy wrapper for API routes: logging context, header normalisation, size cap, JSON body, envelope errors. */
export function httpHandler(route: Route, options: RouteOptions = {}) {
  const handler = middy<HttpEvent, HttpResult>()
    .use(injectLambdaContext(logger))
    .use(httpHeaderNormalizer())
    .use(envelopeErrors())
    .use(bodySizeCap(options.maxBodyBytes ?? 4096));
  if (options.jsonBody) handler.use(httpJsonBodyParser());
  return handler.handler(route);
}

/** The caller's IP address as API Gateway saw it (for spbill_create_ip / payer_client_ip). */
export function clientIp(event: HttpEvent): string {
  return event.requestContext?.http?.sourceIp ?? '127.0.0.1';
}
