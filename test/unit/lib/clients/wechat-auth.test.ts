import { afterEach, beforeEach, describe, expect, it, type Mock, vi } from 'vitest';
import { code2Session } from '#lib/clients/wechat-auth';
import {
  AppError,
  BadRequestError,
  ForbiddenError,
  ServiceUnavailableError,
  TooManyRequestsError,
  UpstreamError,
} from '#lib/errors';

const config = {
  appId: 'wx0123456789abcdef',
  wechatSecret: 'unit-test-app-secret',
  apiBase: 'https://api.weixin.example',
};
const OPENID = 'oUnitTestOpenid0000001';
const SESSION_KEY = 'tiihtNczf5v6AKRyjwEUhQ==';

/** WeChat answers JSON labelled text/plain; each call gets a fresh Response (a body reads once). */
function wechat(body: unknown, status = 200): () => Promise<Response> {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  return async () => new Response(text, { status, headers: { 'content-type': 'text/plain' } });
}

function networkError(name: 'AbortError' | 'TimeoutError'): () => Promise<Response> {
  return async () => {
    throw new DOMException('The operation was aborted due to timeout', name);
  };
}

/** Runs code2Session and returns the AppError it must reject with. */
async function failureOf(code = 'valid-code'): Promise<AppError> {
  const error = await code2Session(config, code).catch((caught: unknown) => caught);
  expect(error).toBeInstanceOf(AppError);
  return error as AppError;
}

describe('code2Session', () => {
  let fetchMock: Mock<typeof fetch>;

  beforeEach(() => {
    fetchMock = vi.fn<typeof fetch>();
    vi.stubGlobal('fetch', fetchMock);
  });
  afterEach(() => {
    vi.unstubAllGlobals();
  });

  it('returns only the openid when WeChat answers without errcode', async () => {
    // Prepare
    fetchMock.mockImplementation(wechat({ openid: OPENID, session_key: SESSION_KEY }));

    // Act
    const identity = await code2Session(config, 'valid-code');

    // Assess
    expect(identity).toEqual({ openid: OPENID });
    expect(JSON.stringify(identity)).not.toContain(SESSION_KEY);
    expect(fetchMock).toHaveBeenCalledTimes(1);
  });

  it('returns the openid when WeChat answers errcode 0', async () => {
    // Prepare
    fetchMock.mockImplementation(
      wechat({ openid: OPENID, session_key: SESSION_KEY, errcode: 0, errmsg: 'ok' }),
    );

    // Act
    const identity = await code2Session(config, 'valid-code');

    // Assess
    expect(identity).toEqual({ openid: OPENID });
  });

  it('keeps the unionid when WeChat sends one', async () => {
    // Prepare
    const unionid = 'oUnionUnitTest000000001';
    fetchMock.mockImplementation(wechat({ openid: OPENID, unionid, session_key: SESSION_KEY }));

    // Act
    const identity = await code2Session(config, 'valid-code');

    // Assess
    expect(identity).toEqual({ openid: OPENID, unionid });
  });

  it('calls jscode2session with appid, secret, js_code and grant_type', async () => {
    // Prepare
    fetchMock.mockImplementation(wechat({ openid: OPENID, session_key: SESSION_KEY }));

    // Act
    await code2Session(config, 'valid-code');

    // Assess
    const url = new URL(String(fetchMock.mock.calls[0]?.[0]));
    expect(`${url.origin}${url.pathname}`).toBe('https://api.weixin.example/sns/jscode2session');
    expect(Object.fromEntries(url.searchParams)).toEqual({
      appid: config.appId,
      secret: config.wechatSecret,
      js_code: 'valid-code',
      grant_type: 'authorization_code',
    });
  });

  it('URL-encodes js_code when the code holds & and =', async () => {
    // Prepare
    fetchMock.mockImplementation(wechat({ openid: OPENID, session_key: SESSION_KEY }));

    // Act
    await code2Session(config, 'a&appid=evil&secret=x');

    // Assess
    const raw = String(fetchMock.mock.calls[0]?.[0]);
    const url = new URL(raw);
    expect(raw).toContain('js_code=a%26appid%3Devil%26secret%3Dx');
    expect(url.searchParams.getAll('appid')).toEqual([config.appId]);
    expect(url.searchParams.getAll('secret')).toEqual([config.wechatSecret]);
    expect(url.searchParams.get('js_code')).toBe('a&appid=evil&secret=x');
    expect([...url.searchParams.keys()]).toHaveLength(4);
  });

  it.each([40029, 40163])(
    'throws BadRequestError INVALID_CODE when WeChat answers errcode %i',
    async (errcode) => {
      // Prepare
      fetchMock.mockImplementation(wechat({ errcode, errmsg: 'invalid code' }));

      // Act
      const error = await failureOf();

      // Assess
      expect(error).toBeInstanceOf(BadRequestError);
      expect(error.status).toBe(400);
      expect(error.code).toBe('INVALID_CODE');
      expect(fetchMock).toHaveBeenCalledTimes(1);
    },
  );

  it('throws 429 with retryAfterSeconds 60 and does not retry when WeChat answers 45011', async () => {
    // Prepare
    fetchMock.mockImplementation(wechat({ errcode: 45011, errmsg: 'api minute-quota reach limit' }));

    // Act
    const error = await failureOf();

    // Assess
    expect(error).toBeInstanceOf(TooManyRequestsError);
    expect(error.status).toBe(429);
    expect((error as TooManyRequestsError).retryAfterSeconds).toBe(60);
    expect(fetchMock).toHaveBeenCalledTimes(1);
  });

  it('throws 403 when WeChat answers 40226 (risky user)', async () => {
    // Prepare
    fetchMock.mockImplementation(wechat({ errcode: 40226, errmsg: 'code blocked' }));

    // Act
    const error = await failureOf();

    // Assess
    expect(error).toBeInstanceOf(ForbiddenError);
    expect(error.status).toBe(403);
    expect(fetchMock).toHaveBeenCalledTimes(1);
  });

  it('throws 502 when WeChat answers an unknown errcode', async () => {
    // Prepare
    fetchMock.mockImplementation(wechat({ errcode: 40013, errmsg: 'invalid appid' }));

    // Act
    const error = await failureOf();

    // Assess
    expect(error).toBeInstanceOf(UpstreamError);
    expect(error.status).toBe(502);
    expect(fetchMock).toHaveBeenCalledTimes(1);
  });

  it('throws 503 after exactly 2 calls when WeChat is busy (-1) twice', async () => {
    // Prepare
    fetchMock.mockImplementation(wechat({ errcode: -1, errmsg: 'system error' }));

    // Act
    const error = await failureOf();

    // Assess
    expect(error).toBeInstanceOf(ServiceUnavailableError);
    expect(error.status).toBe(503);
    expect(fetchMock).toHaveBeenCalledTimes(2);
  });

  it('succeeds after 2 calls when WeChat is busy (-1) once', async () => {
    // Prepare
    fetchMock
      .mockImplementationOnce(wechat({ errcode: -1, errmsg: 'system error' }))
      .mockImplementation(wechat({ openid: OPENID, session_key: SESSION_KEY }));

    // Act
    const identity = await code2Session(config, 'valid-code');

    // Assess
    expect(identity).toEqual({ openid: OPENID });
    expect(fetchMock).toHaveBeenCalledTimes(2);
  });

  it('succeeds after 2 calls when WeChat answers 5xx once', async () => {
    // Prepare
    fetchMock
      .mockImplementationOnce(wechat('<html>502 Bad Gateway</html>', 502))
      .mockImplementation(wechat({ openid: OPENID, session_key: SESSION_KEY }));

    // Act
    const identity = await code2Session(config, 'valid-code');

    // Assess
    expect(identity).toEqual({ openid: OPENID });
    expect(fetchMock).toHaveBeenCalledTimes(2);
  });

  it('throws 503 after exactly 2 calls when WeChat answers 5xx twice', async () => {
    // Prepare
    fetchMock.mockImplementation(wechat('Service Unavailable', 503));

    // Act
    const error = await failureOf();

    // Assess
    expect(error.status).toBe(503);
    expect(fetchMock).toHaveBeenCalledTimes(2);
  });

  it.each(['AbortError', 'TimeoutError'] as const)(
    'throws 503 after exactly 2 calls when fetch rejects with %s twice',
    async (name) => {
      // Prepare
      fetchMock.mockImplementation(networkError(name));

      // Act
      const error = await failureOf();

      // Assess
      expect(error).toBeInstanceOf(ServiceUnavailableError);
      expect(error.status).toBe(503);
      expect(fetchMock).toHaveBeenCalledTimes(2);
    },
  );

  it('succeeds after 2 calls when fetch times out once', async () => {
    // Prepare
    fetchMock
      .mockImplementationOnce(networkError('TimeoutError'))
      .mockImplementation(wechat({ openid: OPENID, session_key: SESSION_KEY }));

    // Act
    const identity = await code2Session(config, 'valid-code');

    // Assess
    expect(identity).toEqual({ openid: OPENID });
    expect(fetchMock).toHaveBeenCalledTimes(2);
  });

  it('passes an abort signal to fetch so a hung call times out', async () => {
    // Prepare
    fetchMock.mockImplementation(wechat({ openid: OPENID, session_key: SESSION_KEY }));

    // Act
    await code2Session(config, 'valid-code');

    // Assess
    expect(fetchMock.mock.calls[0]?.[1]?.signal).toBeInstanceOf(AbortSignal);
  });

  it.each([
    ['an HTML page', '<!DOCTYPE html><html><body>gateway</body></html>'],
    ['an empty body', ''],
    ['a JSON array', '[]'],
    ['a JSON string', '"openid"'],
    ['JSON null', 'null'],
  ])('throws 502 after exactly 1 call when WeChat answers 200 with %s', async (_label, body) => {
    // Prepare
    fetchMock.mockImplementation(wechat(body));

    // Act
    const error = await failureOf();

    // Assess
    expect(error).toBeInstanceOf(UpstreamError);
    expect(error.status).toBe(502);
    expect(fetchMock).toHaveBeenCalledTimes(1);
  });

  it('throws 502 without retrying when WeChat answers a 4xx status', async () => {
    // Prepare
    fetchMock.mockImplementation(wechat('Forbidden', 403));

    // Act
    const error = await failureOf();

    // Assess
    expect(error.status).toBe(502);
    expect(fetchMock).toHaveBeenCalledTimes(1);
  });

  it.each([
    ['openid is missing', { session_key: SESSION_KEY }],
    ['openid is a number', { openid: 1234567890, session_key: SESSION_KEY }],
    ['openid contains #', { openid: 'oUnit#Test0000001', session_key: SESSION_KEY }],
    ['openid contains whitespace', { openid: 'oUnit Test0000001', session_key: SESSION_KEY }],
    ['openid ends with a newline', { openid: 'oUnitTest0000001\n', session_key: SESSION_KEY }],
    ['openid is longer than 64 chars', { openid: `o${'A'.repeat(64)}`, session_key: SESSION_KEY }],
    ['openid is shorter than 6 chars', { openid: 'oAbc', session_key: SESSION_KEY }],
    ['unionid contains #', { openid: OPENID, unionid: 'oUnion#000001', session_key: SESSION_KEY }],
    ['unionid is not a string', { openid: OPENID, unionid: ['x'], session_key: SESSION_KEY }],
  ])('throws 502 when %s', async (_label, body) => {
    // Prepare
    fetchMock.mockImplementation(wechat(body));

    // Act
    const error = await failureOf();

    // Assess
    expect(error).toBeInstanceOf(UpstreamError);
    expect(error.status).toBe(502);
    expect(`${error.message} ${error.detail}`).not.toContain(SESSION_KEY);
  });
});
