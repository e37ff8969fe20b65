import type { APIGatewayProxyEventV2 } from 'aws-lambda';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import type { NotifyRequest } from '#lib/clients/payment-provider';
import { type Config, loadConfig } from '#lib/config';
import { ANSWER_MARGIN_MS, DeadlineExceededError, timeLeft } from '#lib/deadline';
import {
  type AppError,
  BadRequestError,
  ConfigError,
  ConflictError,
  ForbiddenError,
  NotFoundError,
  NotifyRejectedError,
  PayloadTooLargeError,
  PaymentRejectedError,
  type PaymentRejection,
  ServiceUnavailableError,
  TooManyRequestsError,
  UnauthorizedError,
  UpstreamError,
} from '#lib/errors';
import {
  clientIp,
  errorToResponse,
  failure,
  httpHandler,
  MAX_NOTIFY_BYTES,
  type NotifyRoute,
  notifyHandler,
  ok,
} from '#lib/http';
import { logger } from '#lib/logger';
import { context, envelope, httpEvent, lambdaContext } from '#local/fixtures/events';
import { FakePaymentProvider } from '#test/helpers/fake-payment-provider';

const JSON_TYPE = 'application/json; charset=utf-8';

afterEach(() => {
  vi.restoreAllMocks();
  vi.unstubAllEnvs();
});

describe('ok and failure', () => {
  it('build the seed-000 envelopes with a JSON content type', () => {
    // Act
    const success = ok({ user: { id: 'u1' } });
    const created = ok({}, '创建成功', 201);
    const refused = failure(429, 'SLOW_DOWN', '请稍后', { 'retry-after': '5' });
    // Assess
    expect(success).toEqual({
      statusCode: 200,
      headers: { 'content-type': JSON_TYPE },
      body: JSON.stringify({ success: true, message: '操作成功', data: { user: { id: 'u1' } } }),
    });
    expect(created.statusCode).toBe(201);
    expect(envelope(created).message).toBe('创建成功');
    expect(refused).toEqual({
      statusCode: 429,
      headers: { 'content-type': JSON_TYPE, 'retry-after': '5' },
      body: JSON.stringify({ success: false, message: '请稍后', code: 'SLOW_DOWN' }),
    });
  });
});

describe('errorToResponse', () => {
  it.each<[string, AppError, number, string]>([
    ['BadRequestError', new BadRequestError('参数错误', 'INVALID_CODE'), 400, 'INVALID_CODE'],
    ['UnauthorizedError', new UnauthorizedError(), 401, 'UNAUTHORIZED'],
    ['ForbiddenError', new ForbiddenError('禁止'), 403, 'FORBIDDEN'],
    ['NotFoundError', new NotFoundError('订单不存在', 'ORDER_NOT_FOUND'), 404, 'ORDER_NOT_FOUND'],
    ['ConflictError', new ConflictError('订单已支付', 'ORDER_PAID'), 409, 'ORDER_PAID'],
    ['PayloadTooLargeError', new PayloadTooLargeError(), 413, 'PAYLOAD_TOO_LARGE'],
    ['UpstreamError', new UpstreamError(), 502, 'WECHAT_ERROR'],
    ['ServiceUnavailableError', new ServiceUnavailableError(), 503, 'WECHAT_UNAVAILABLE'],
    ['NotifyRejectedError', new NotifyRejectedError('签名失败'), 401, 'NOTIFY_REJECTED'],
  ])('keeps the status, code and message of a %s', (_name, error, status, code) => {
    // Act
    const result = errorToResponse(error);
    // Assess
    expect(result.statusCode).toBe(status);
    expect(result.headers).toEqual({
      'content-type': JSON_TYPE,
      ...(status === 503 ? { 'retry-after': '1' } : {}),
    });
    expect(envelope(result)).toEqual({ success: false, message: error.message, code });
  });

  it('adds retry-after in seconds to a TooManyRequestsError', () => {
    // Act
    const result = errorToResponse(new TooManyRequestsError('请求过于频繁', 17));
    // Assess
    expect(result.statusCode).toBe(429);
    expect(result.headers).toEqual({ 'content-type': JSON_TYPE, 'retry-after': '17' });
    expect(envelope(result).code).toBe('TOO_MANY_REQUESTS');
  });

  it('masks a ConfigError as 500 INTERNAL_ERROR and keeps its detail in the logs only', () => {
    // Prepare
    const logged = vi.spyOn(logger, 'error');
    // Act
    const result = errorToResponse(new ConfigError('WECHAT_MCH_KEY must be 32 characters'));
    // Assess
    expect(result.statusCode).toBe(500);
    expect(envelope(result)).toEqual({ success: false, message: '服务器内部错误', code: 'INTERNAL_ERROR' });
    expect(result.body).not.toContain('WECHAT_MCH_KEY');
    expect(JSON.stringify(logged.mock.calls)).toContain('WECHAT_MCH_KEY must be 32 characters');
  });

  it.each([
    [415, 415, 'UNSUPPORTED_MEDIA_TYPE'],
    [422, 400, 'INVALID_JSON'],
    [400, 400, 'INVALID_JSON'],
  ])('maps middy’s http error %s to %s %s', (middyStatus, status, code) => {
    // Act
    const result = errorToResponse(Object.assign(new Error('middy'), { statusCode: middyStatus }));
    // Assess
    expect(result.statusCode).toBe(status);
    expect(envelope(result).code).toBe(code);
  });

  it.each([
    ['an Error', new Error('boom with a secret')],
    ['a thrown string', 'boom with a secret'],
    ['undefined', undefined],
    ['an http error of another status', Object.assign(new Error('boom with a secret'), { statusCode: 404 })],
  ])('answers %s with the fixed 500 and logs it', (_name, error) => {
    // Prepare
    const logged = vi.spyOn(logger, 'error');
    // Act
    const result = errorToResponse(error);
    // Assess
    expect(result.statusCode).toBe(500);
    expect(envelope(result)).toEqual({ success: false, message: '服务器内部错误', code: 'INTERNAL_ERROR' });
    expect(logged).toHaveBeenCalledWith('unhandled error', { error });
  });
});

describe('httpHandler', () => {
  const echo = httpHandler(async (event) => ok({ body: event.body as Record<string, unknown> }), {
    jsonBody: true,
    maxBodyBytes: 64,
  });

  it('parses a JSON body and runs the route', async () => {
    // Act
    const result = await echo(httpEvent({ method: 'POST', body: { planId: 'monthly' } }), context);
    // Assess
    expect(result.statusCode).toBe(200);
    expect(envelope(result).data).toEqual({ body: { planId: 'monthly' } });
  });

  it('answers 413 before parsing a body over the cap, counting base64 as decoded bytes', async () => {
    // Prepare
    const big = JSON.stringify({ planId: 'x'.repeat(64) });
    const base64 = Buffer.from(big).toString('base64');
    // Act
    const plain = await echo(httpEvent({ method: 'POST', body: big }), context);
    const encoded = await echo(httpEvent({ method: 'POST', body: base64, isBase64Encoded: true }), context);
    // Assess
    for (const result of [plain, encoded]) {
      expect(result.statusCode).toBe(413);
      expect(envelope(result).code).toBe('PAYLOAD_TOO_LARGE');
    }
  });

  it('answers 415 without a JSON content type and 400 INVALID_JSON for a malformed body', async () => {
    // Act
    const text = await echo(
      httpEvent({ method: 'POST', body: 'a=1', headers: { 'content-type': 'text/plain' } }),
      context,
    );
    const broken = await echo(httpEvent({ method: 'POST', body: '{"planId":' }), context);
    // Assess
    expect(text.statusCode).toBe(415);
    expect(envelope(text).code).toBe('UNSUPPORTED_MEDIA_TYPE');
    expect(broken.statusCode).toBe(400);
    expect(envelope(broken).code).toBe('INVALID_JSON');
  });

  it('maps what the route throws through errorToResponse', async () => {
    // Prepare
    const route = httpHandler(async () => {
      throw new TooManyRequestsError('请求过于频繁', 5);
    });
    // Act
    const result = await route(httpEvent(), context);
    // Assess
    expect(result).toEqual(errorToResponse(new TooManyRequestsError('请求过于频繁', 5)));
  });
});

describe('clientIp', () => {
  it('reads API Gateway’s source IP and falls back to loopback', () => {
    // Assess
    expect(clientIp(httpEvent({ sourceIp: '198.51.100.9' }))).toBe('198.51.100.9');
    expect(clientIp({ ...httpEvent(), requestContext: undefined } as never)).toBe('127.0.0.1');
  });
});

describe('notifyHandler', () => {
  let config: Config;
  let provider: FakePaymentProvider;
  let received: NotifyRequest[];

  beforeAll(async () => {
    config = await loadConfig();
  });

  /** A notify Lambda over the fake provider whose route records its request and then runs `act`. */
  function notifyLambda(act: () => void | Promise<void> = () => {}) {
    provider = new FakePaymentProvider('v2');
    received = [];
    const route: NotifyRoute = async (request, loaded) => {
      expect(loaded).toEqual({ config, provider });
      received.push(request);
      await act();
    };
    return notifyHandler(route, async () => ({ config, providers: [provider] }));
  }

  const notifyEvent = (body: string, extra: Partial<APIGatewayProxyEventV2> = {}) => ({
    ...httpEvent({ method: 'POST', path: '/wechat/notify', body, headers: { 'content-type': 'text/xml' } }),
    ...extra,
  });

  it('hands the route the raw body and headers, then answers the provider’s ack', async () => {
    // Act
    const result = await notifyLambda()(notifyEvent('<xml>signed</xml>'), context);
    // Assess
    expect(result).toEqual(provider.notifyAck());
    expect(received).toEqual([{ headers: { 'content-type': 'text/xml' }, body: '<xml>signed</xml>' }]);
    expect(provider.fails).toEqual([]);
  });

  it('base64-decodes a flagged body before the route sees it', async () => {
    // Act
    await notifyLambda()(
      notifyEvent(Buffer.from('<xml>签名</xml>').toString('base64'), { isBase64Encoded: true }),
      context,
    );
    // Assess
    expect(received.map((request) => request.body)).toEqual(['<xml>签名</xml>']);
  });

  it('answers 500 FAIL JSON without running the route when the config fails to load', async () => {
    // Prepare
    const route = vi.fn<NotifyRoute>();
    const logged = vi.spyOn(logger, 'error');
    const lambda = notifyHandler(route, () => Promise.reject(new ConfigError('WECHAT_MCH_KEY is missing')));
    // Act
    const result = await lambda(notifyEvent('<xml/>'), context);
    // Assess
    expect(result).toEqual({
      statusCode: 500,
      headers: { 'content-type': 'application/json' },
      body: '{"code":"FAIL","message":"config"}',
    });
    expect(route).not.toHaveBeenCalled();
    expect(logged).toHaveBeenCalledWith('notify config failed', { detail: 'WECHAT_MCH_KEY is missing' });
  });

  it.each([
    ['a body over the cap', 'x'.repeat(MAX_NOTIFY_BYTES + 1), false],
    ['a multi-byte body over the cap in bytes', '签'.repeat(MAX_NOTIFY_BYTES / 3 + 1), false],
    [
      'a base64 body that decodes over the cap',
      Buffer.alloc(MAX_NOTIFY_BYTES + 1, 'x').toString('base64'),
      true,
    ],
    ['a base64 body too long to decode', 'A'.repeat(MAX_NOTIFY_BYTES * 2 + 4), true],
  ])('answers 413 for %s without running the route', async (_name, body, isBase64Encoded) => {
    // Act
    const result = await notifyLambda()(notifyEvent(body, { isBase64Encoded }), context);
    // Assess
    expect(result.statusCode).toBe(413);
    expect(provider.fails).toEqual([{ status: 413, message: 'body too large' }]);
    expect(received).toEqual([]);
  });

  it('accepts a body of exactly the cap', async () => {
    // Act
    const result = await notifyLambda()(notifyEvent('x'.repeat(MAX_NOTIFY_BYTES)), context);
    // Assess
    expect(result).toEqual(provider.notifyAck());
  });

  it('answers a NotifyRejectedError with its own status and reason', async () => {
    // Act
    const result = await notifyLambda(() => {
      throw new NotifyRejectedError('签名失败', 401);
    })(notifyEvent('<xml/>'), context);
    // Assess
    expect(result.statusCode).toBe(401);
    expect(provider.fails).toEqual([{ status: 401, message: '签名失败' }]);
  });

  it.each<[PaymentRejection, number]>([
    ['merchant_mismatch', 400],
    ['currency_mismatch', 400],
    ['amount_mismatch', 400],
    ['unknown_order', 404],
    ['paid_by_other', 409],
    ['not_pending', 409],
    ['owner_missing', 409],
  ])('answers a PaymentRejectedError %s with FAIL status %s', async (reason, status) => {
    // Prepare
    const logged = vi.spyOn(logger, 'error');
    // Act
    const result = await notifyLambda(() => {
      throw new PaymentRejectedError(reason, 'cannot credit', 'detail for the logs');
    })(notifyEvent('<xml/>'), context);
    // Assess
    expect(result.statusCode).toBe(status);
    expect(provider.fails).toEqual([{ status, message: 'cannot credit' }]);
    expect(logged).toHaveBeenCalledWith('notify refused', {
      reason: 'cannot credit',
      rejection: reason,
      detail: 'detail for the logs',
    });
  });

  it('answers any other error 500 internal error so WeChat delivers again', async () => {
    // Act
    const result = await notifyLambda(() => {
      throw new Error('DynamoDB unavailable');
    })(notifyEvent('<xml/>'), context);
    // Assess
    expect(result.statusCode).toBe(500);
    expect(provider.fails).toEqual([{ status: 500, message: 'internal error' }]);
    expect(result.body).not.toContain('DynamoDB');
  });

  it('answers 500 FAIL before the Lambda times out when the route is still running (middy’s early timeout)', async () => {
    // Act: the route never ends; the Lambda has 800 ms
    const started = Date.now();
    const result = await notifyLambda(() => new Promise<void>(() => {}))(
      notifyEvent('<xml/>'),
      lambdaContext(800),
    );
    // Assess
    expect(Date.now() - started).toBeLessThan(800);
    expect(result.statusCode).toBe(500);
    expect(JSON.parse(result.body ?? '{}')).toEqual({ code: 'FAIL', message: 'timeout' });
  });

  it('runs the route under the invocation deadline', async () => {
    // Prepare
    let left = 0;
    // Act
    await notifyLambda(() => {
      left = timeLeft();
    })(notifyEvent('<xml/>'), lambdaContext(4000));
    // Assess
    expect(left).toBeLessThanOrEqual(4000 - ANSWER_MARGIN_MS);
    expect(left).toBeGreaterThan(3000 - ANSWER_MARGIN_MS);
  });
});

describe('deadlines on API routes', () => {
  it.each([
    ['DeadlineExceededError', new DeadlineExceededError('DynamoDB')],
    ['the SDK’s request timeout', Object.assign(new Error('requestTimeout'), { name: 'TimeoutError' })],
    ['an aborted call', Object.assign(new Error('Request aborted'), { name: 'AbortError' })],
  ])('maps %s to 503 SERVICE_UNAVAILABLE with retry-after', (_what, error) => {
    // Act
    const result = errorToResponse(error);
    // Assess
    expect(result.statusCode).toBe(503);
    expect(result.headers).toMatchObject({ 'retry-after': '1' });
    expect(envelope(result)).toMatchObject({ success: false, code: 'SERVICE_UNAVAILABLE' });
  });

  it('answers the 503 envelope before the Lambda times out when the route is still running', async () => {
    // Prepare
    const route = httpHandler(() => new Promise(() => {}));
    // Act
    const started = Date.now();
    const result = await route(httpEvent(), lambdaContext(800));
    // Assess
    expect(Date.now() - started).toBeLessThan(800);
    expect(result.statusCode).toBe(503);
    expect(envelope(result)).toMatchObject({ success: false, code: 'SERVICE_UNAVAILABLE' });
  });

  it('runs the route without a deadline when the context has no remaining time (the test fixture)', async () => {
    // Prepare
    let left = 0;
    const route = httpHandler(async () => {
      left = timeLeft();
      return ok({});
    });
    // Act
    await route(httpEvent(), context);
    // Assess
    expect(left).toBe(Number.POSITIVE_INFINITY);
  });
});
