import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { RetryableError } from '#lib/clients/retry';
import {
  orderStateConflict,
  PAY_ATTEMPT_TIMEOUT_MS,
  payExchange,
  payUnavailable,
  payUpstream,
  withPayRetry,
} from '#lib/clients/wechat-pay-shared';
import { ConflictError, ServiceUnavailableError, UpstreamError } from '#lib/errors';
import { type ScriptedServer, startScripted } from '#test/helpers/scripted-server';

describe('payExchange', () => {
  let upstream: ScriptedServer;

  beforeAll(async () => {
    upstream = await startScripted();
  });
  afterAll(() => upstream.close());
  afterEach(() => {
    upstream.requests.length = 0;
    vi.restoreAllMocks();
  });

  const exchange = (path = '/pay/orderquery') =>
    payExchange(`${upstream.url}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'text/xml' },
      body: '<xml/>',
    });

  it.each([200, 204, 400, 404, 429])('answers a %s with its status, headers and text', async (status) => {
    // Prepare
    upstream.next(status, status === 204 ? '' : 'answer text', { 'x-answer': 'yes' });
    // Act
    const answer = await exchange();
    // Assess
    expect(answer.status).toBe(status);
    expect(answer.headers.get('x-answer')).toBe('yes');
    expect(answer.text).toBe(status === 204 ? '' : 'answer text');
    expect(upstream.requests).toMatchObject([{ method: 'POST', url: '/pay/orderquery', body: '<xml/>' }]);
  });

  it('answers a redirect as it is, without following it', async () => {
    // Prepare
    upstream.next(302, '', { location: `${upstream.url}/elsewhere` });
    // Act
    const answer = await exchange();
    // Assess
    expect(answer.status).toBe(302);
    expect(upstream.requests).toHaveLength(1);
  });

  it.each([500, 502, 503])('throws RetryableError on a %s', async (status) => {
    // Prepare
    upstream.next(status, 'gateway says no');
    // Act / Assess
    await expect(exchange()).rejects.toEqual(new RetryableError(`http ${status}`));
  });

  it('throws RetryableError on a network failure', async () => {
    // Act
    const error = await payExchange('http://127.0.0.1:1/pay/orderquery', { method: 'POST' }).catch(
      (caught: unknown) => caught,
    );
    // Assess
    expect(error).toBeInstanceOf(RetryableError);
    expect((error as Error).message).toMatch(/^network: /);
  });

  it('gives each attempt PAY_ATTEMPT_TIMEOUT_MS and throws RetryableError when it runs out', async () => {
    // Prepare: the attempt's deadline is shortened; the server never answers in time
    const timeout = AbortSignal.timeout.bind(AbortSignal);
    const deadline = vi.spyOn(AbortSignal, 'timeout').mockImplementation(() => timeout(50));
    upstream.hang();
    // Act
    const error = await exchange().catch((caught: unknown) => caught);
    // Assess
    expect(deadline).toHaveBeenCalledWith(PAY_ATTEMPT_TIMEOUT_MS);
    expect(error).toBeInstanceOf(RetryableError);
  });
});

describe('withPayRetry', () => {
  afterEach(() => vi.useRealTimers());

  it('turns a second RetryableError into 503 WECHAT_PAY_UNAVAILABLE naming the path and reason', async () => {
    // Prepare
    vi.useFakeTimers();
    const call = vi.fn(async () => {
      throw new RetryableError('http 503');
    });
    // Act
    const outcome = withPayRetry('v2', '/pay/unifiedorder', call).catch((error: unknown) => error);
    await vi.runAllTimersAsync();
    const error = await outcome;
    // Assess
    expect(call).toHaveBeenCalledTimes(2);
    expect(error).toBeInstanceOf(ServiceUnavailableError);
    expect(error).toMatchObject({
      status: 503,
      code: 'WECHAT_PAY_UNAVAILABLE',
      detail: '/pay/unifiedorder: http 503',
    });
  });
});

describe('payUnavailable and payUpstream', () => {
  it('build the 503 and 502 the clients answer', () => {
    // Act
    const busy = payUnavailable('/v3/pay: 429');
    const broken = payUpstream('微信支付下单失败', 'unifiedorder PARAM_ERROR');
    const forged = payUpstream('微信支付响应签名无效', 'bad sign', 'WECHAT_PAY_BAD_SIGNATURE');
    // Assess
    expect(busy).toBeInstanceOf(ServiceUnavailableError);
    expect(busy).toMatchObject({ status: 503, code: 'WECHAT_PAY_UNAVAILABLE', detail: '/v3/pay: 429' });
    expect(broken).toBeInstanceOf(UpstreamError);
    expect(broken).toMatchObject({ status: 502, code: 'WECHAT_PAY_ERROR', message: '微信支付下单失败' });
    expect(forged).toMatchObject({ status: 502, code: 'WECHAT_PAY_BAD_SIGNATURE', detail: 'bad sign' });
  });
});

describe('orderStateConflict', () => {
  it.each([
    ['ORDERPAID', 'ORDER_PAID'],
    ['ORDER_PAID', 'ORDER_PAID'],
    ['ORDERCLOSED', 'ORDER_CLOSED'],
    ['ORDER_CLOSED', 'ORDER_CLOSED'],
  ])('maps WeChat’s %s to 409 %s', (wechatCode, code) => {
    // Act
    const conflict = orderStateConflict(wechatCode);
    // Assess
    expect(conflict).toBeInstanceOf(ConflictError);
    expect(conflict).toMatchObject({ status: 409, code, detail: wechatCode });
  });

  it.each(['SYSTEMERROR', 'PARAM_ERROR', 'OUT_TRADE_NO_USED', ''])('answers undefined for %s', (code) => {
    // Assess
    expect(orderStateConflict(code)).toBeUndefined();
  });
});
