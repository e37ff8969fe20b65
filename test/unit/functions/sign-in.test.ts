import { GetParametersCommand } from '@aws-sdk/client-ssm';
import {
  DynamoDBDocumentClient,
  GetCommand,
  TransactWriteCommand,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, beforeEach, describe, expect, it, type Mock, vi } from 'vitest';
import { handler } from '#functions/sign-in';
import { verifySessionToken } from '#lib/auth';
import { loadConfig, resetConfigCache } from '#lib/config';
import { context, envelope, httpEvent } from '#local/fixtures/events';
import { aUser } from '#test/helpers/builders';
import {
  apiAnswerToSsmFailure,
  expectNamedNotShown,
  MALFORMED_SECRETS,
  SSM_FAILURES,
  sdkError,
  secretsFromFakeSsm,
  serveMalformedSecret,
  ssmAnswer,
} from '#test/helpers/ssm-answers';

const OPENID = 'oUnitTestOpenid0000001';
const SESSION_KEY = 'tiihtNczf5v6AKRyjwEUhQ==';

function signInEvent(body?: string | object, headers?: Record<string, string>) {
  return httpEvent({ method: 'POST', path: '/wechat/sign_in', body, headers });
}

function wechat(body: unknown): () => Promise<Response> {
  return async () =>
    new Response(JSON.stringify(body), { status: 200, headers: { 'content-type': 'text/plain' } });
}

describe('sign-in handler', () => {
  const ddb = mockClient(DynamoDBDocumentClient);
  let fetchMock: Mock<typeof fetch>;

  beforeEach(() => {
    resetConfigCache();
    ddb.reset();
    fetchMock = vi.fn<typeof fetch>(wechat({ openid: OPENID, session_key: SESSION_KEY }));
    vi.stubGlobal('fetch', fetchMock);
  });
  afterEach(() => {
    vi.unstubAllGlobals();
    ddb.reset();
  });

  /** The stored link and user of a returning user. */
  function storedUser(existing: ReturnType<typeof aUser>) {
    ddb.on(GetCommand, { Key: { id: `openid#${OPENID}` } }).resolves({ Item: { userId: existing.id } });
    ddb.on(GetCommand, { Key: { id: existing.id } }).resolves({ Item: existing });
  }

  it('returns a token and the new user without session_key when a new user signs in', async () => {
    // Prepare
    ddb.on(GetCommand).resolves({});
    ddb.on(TransactWriteCommand).resolves({});

    // Act
    const result = await handler(signInEvent({ code: 'valid-code_01' }), context);

    // Assess
    const body = envelope(result);
    expect(result.statusCode).toBe(200);
    expect(body).toEqual({
      success: true,
      message: '登录成功',
      data: { token: expect.any(String), user: expect.any(Object) },
    });
    const [link, user] = ddb.commandCalls(TransactWriteCommand)[0]?.args[0].input.TransactItems ?? [];
    expect(link?.Put?.Item).toEqual({ id: `openid#${OPENID}`, userId: user?.Put?.Item?.id });
    expect(body.data?.user).toMatchObject({
      id: user?.Put?.Item?.id,
      nickname: expect.stringMatching(/^微信用户[0-9a-f]{6}$/),
      sex: 2,
      role: 0,
      membershipExpiredAt: null,
    });
    expect(result.body).not.toContain('session_key');
    expect(result.body).not.toContain(SESSION_KEY);
    expect(result.body).not.toContain(OPENID);
    const config = await loadConfig();
    expect(await verifySessionToken(body.data?.token, config)).toEqual({
      userId: body.data?.user.id,
      sessionVersion: 0,
    });
    expect(ddb.commandCalls(TransactWriteCommand)).toHaveLength(1);
    expect(fetchMock).toHaveBeenCalledTimes(1);
  });

  it('costs two reads (the openid link, then the user) and no write when a returning user signs in', async () => {
    // Prepare
    storedUser(aUser({ openid: OPENID, nickname: '老朋友', sessionVersion: 3 }));

    // Act
    const result = await handler(signInEvent({ code: 'valid-code_02' }), context);

    // Assess
    expect(result.statusCode).toBe(200);
    expect(envelope(result).data?.user.nickname).toBe('老朋友');
    expect(ddb.calls().map((call) => call.args[0].constructor.name)).toEqual(['GetCommand', 'GetCommand']);
    const config = await loadConfig();
    expect((await verifySessionToken(envelope(result).data?.token, config)).sessionVersion).toBe(3);
  });

  it('records the unionid when a returning user first brings one', async () => {
    // Prepare
    const unionid = 'oUnionUnitTest000000001';
    fetchMock.mockImplementation(wechat({ openid: OPENID, unionid, session_key: SESSION_KEY }));
    storedUser(aUser({ openid: OPENID, createdAt: '2025-01-01T00:00:00.000Z' }));
    ddb.on(UpdateCommand).resolves({});

    // Act
    const result = await handler(signInEvent({ code: 'valid-code_03' }), context);

    // Assess
    expect(result.statusCode).toBe(200);
    expect(ddb.commandCalls(UpdateCommand)[0]?.args[0].input.ExpressionAttributeValues).toEqual({
      ':u': unionid,
    });
    expect(result.body).not.toContain(unionid);
  });

  it.each([
    ['{}', {}, 400],
    ['an empty code', { code: '' }, 400],
    ['a numeric code', { code: 123 }, 400],
    ['a null code', { code: null }, 400],
    ['an array code', { code: ['a'] }, 400],
    ['an operator object code', { code: { $ne: '' } }, 400],
    ['a 129-char code', { code: 'a'.repeat(129) }, 400],
    ['a code with &appid=', { code: 'abc&appid=evil' }, 400],
    ['a code with CRLF', { code: 'abc%0d%0a' }, 400],
    ['a code with a space', { code: 'abc def' }, 400],
    ['a non-ASCII code', { code: '登录码' }, 400],
    ['non-JSON', 'code=abc', 400],
    ['a JSON array', '[{"code":"abc"}]', 400],
    ['a __proto__ key', '{"code":"abc","__proto__":{"x":1}}', 400],
    ['a body over 1 KB', { code: 'a'.repeat(1100) }, 413],
  ])(
    'answers %s with an error envelope and calls neither DynamoDB nor WeChat',
    async (_label, body, status) => {
      // Act
      const result = await handler(signInEvent(body), context);

      // Assess
      const reply = envelope(result);
      expect(result.statusCode).toBe(status);
      expect(reply.success).toBe(false);
      expect(reply.code).toMatch(/^[A-Z_]+$/);
      expect(reply.message).toBeTruthy();
      expect(ddb.calls()).toHaveLength(0);
      expect(fetchMock).not.toHaveBeenCalled();
    },
  );

  it('answers 400 and calls nothing when a JSON request has no body', async () => {
    // Act
    const result = await handler(signInEvent(undefined, { 'content-type': 'application/json' }), context);

    // Assess
    expect(result.statusCode).toBe(400);
    expect(envelope(result)).toMatchObject({ success: false, code: 'INVALID_JSON' });
    expect(ddb.calls()).toHaveLength(0);
    expect(fetchMock).not.toHaveBeenCalled();
  });

  it('answers 415 and calls nothing when there is no body and no content-type', async () => {
    // Act
    const result = await handler(signInEvent(), context);

    // Assess
    expect(result.statusCode).toBe(415);
    expect(envelope(result)).toMatchObject({ success: false, code: 'UNSUPPORTED_MEDIA_TYPE' });
    expect(ddb.calls()).toHaveLength(0);
    expect(fetchMock).not.toHaveBeenCalled();
  });

  it('answers 400 INVALID_CODE and writes nothing when WeChat rejects the code', async () => {
    // Prepare
    fetchMock.mockImplementation(wechat({ errcode: 40029, errmsg: 'invalid code' }));

    // Act
    const result = await handler(signInEvent({ code: 'used-code' }), context);

    // Assess
    expect(result.statusCode).toBe(400);
    expect(envelope(result)).toMatchObject({ success: false, code: 'INVALID_CODE' });
    expect(ddb.calls()).toHaveLength(0);
  });

  it('answers 429 with Retry-After and writes nothing when WeChat rate-limits', async () => {
    // Prepare
    fetchMock.mockImplementation(wechat({ errcode: 45011, errmsg: 'quota' }));

    // Act
    const result = await handler(signInEvent({ code: 'valid-code' }), context);

    // Assess
    expect(result.statusCode).toBe(429);
    expect(result.headers?.['retry-after']).toBe('60');
    expect(ddb.calls()).toHaveLength(0);
  });

  it('answers 500 with the fixed message and hides the error when DynamoDB fails unexpectedly', async () => {
    // Prepare
    ddb.on(GetCommand).rejects(new Error('boom secret'));

    // Act
    const result = await handler(signInEvent({ code: 'valid-code' }), context);

    // Assess
    expect(result.statusCode).toBe(500);
    expect(envelope(result)).toEqual({ success: false, message: '服务器内部错误', code: 'INTERNAL_ERROR' });
    expect(result.body).not.toContain('boom');
  });

  describe('when its configuration fails (research/reliability.md §3.2 F17, F18)', () => {
    const ssm = secretsFromFakeSsm();
    const faultEvent = () => signInEvent({ code: 'fault-suite-code_01' });

    beforeEach(() => {
      ddb.on(GetCommand).resolves({});
      ddb.on(TransactWriteCommand).resolves({});
    });
    afterEach(() => vi.restoreAllMocks());

    it.each(SSM_FAILURES)(
      'answers 503 (transient) or 500 without a token, a WeChat call or a write on %s, and the next invocation signs in',
      async (name) => {
        // Prepare
        ssm.on(GetParametersCommand).rejectsOnce(sdkError(name)).resolves(ssmAnswer());
        const expected = apiAnswerToSsmFailure(name);
        // Act
        const failed = await handler(faultEvent(), context);
        // Assess
        expect(failed.statusCode).toBe(expected.status);
        expect(envelope(failed)).toMatchObject({ success: false, code: expected.code });
        expect(failed.headers?.['retry-after']).toBe(expected.status === 503 ? '1' : undefined);
        expect(envelope(failed).data).toBeUndefined();
        expect(fetchMock).not.toHaveBeenCalled();
        expect(ddb.calls()).toHaveLength(0);
        // Act
        const retried = await handler(faultEvent(), context);
        // Assess
        expect(retried.statusCode).toBe(200);
        expect(envelope(retried).data?.token).toEqual(expect.any(String));
        expect(ssm.commandCalls(GetParametersCommand)).toHaveLength(2);
      },
    );

    it.each(MALFORMED_SECRETS)(
      'fails closed on %s (%s): 500 without a token, the error names %s but not the value',
      async (_name, version, parameter, value) => {
        // Prepare
        const logged = serveMalformedSecret(ssm, version, parameter, value);
        // Act
        const signedIn = await handler(faultEvent(), context);
        // Assess: nothing signed, nothing written, WeChat never called
        expect(signedIn.statusCode).toBe(500);
        expect(envelope(signedIn).data).toBeUndefined();
        expect(ddb.calls()).toHaveLength(0);
        expect(fetchMock).not.toHaveBeenCalled();
        expectNamedNotShown(logged, parameter, value, signedIn.body);
      },
    );
  });
});
