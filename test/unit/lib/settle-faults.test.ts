/**
 * Fault suite, configuration and clock (research/reliability.md §3.2 F17–F20), at the handler boundary:
 * SSM (through Powertools parameters) and DynamoDB are faked at the SDK with aws-sdk-client-mock, WeChat with a
 * stubbed fetch. Invariants: a failed cold start writes nothing, signs no token and acknowledges no notify; the
 * next invocation reads SSM again; a config error names the parameter, never its value (INV-6 via test/setup.ts).
 */
import { clearCaches } from '@aws-lambda-powertools/parameters';
import { GetParametersCommand, SSMClient } from '@aws-sdk/client-ssm';
import { DynamoDBDocumentClient, GetCommand, PutCommand, TransactWriteCommand } from '@aws-sdk/lib-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, beforeEach, describe, expect, it, type Mock, vi } from 'vitest';
import { handler as meHandler } from '#functions/me';
import { handler as notifyHandler } from '#functions/pay-notify';
import { handler as signInHandler } from '#functions/sign-in';
import { issueSessionToken, verifySessionToken } from '#lib/auth';
import { loadConfig, resetConfigCache } from '#lib/config';
import { UnauthorizedError } from '#lib/errors';
import { logger } from '#lib/logger';
import { type SecretName, ssmParameterName } from '#lib/secrets';
import { readSettings } from '#lib/settings';
import { userIdForOpenid } from '#lib/users';
import { context, envelope, httpEvent } from '#local/fixtures/events';
import { v2NotifyXml } from '#local/fixtures/notify';

const ssm = mockClient(SSMClient);
const ddb = mockClient(DynamoDBDocumentClient);

const OPENID = 'oFaultSuiteOpenid00001';
const USER_ID = userIdForOpenid(OPENID);
const SUCCESS = '<return_code><![CDATA[SUCCESS]]></return_code>';
const order = {
  outTradeNo: 'M20261121080000faultsFAULTS',
  userId: USER_ID,
  openid: OPENID,
  planId: 'monthly',
  description: '会员-月度会员',
  totalFee: 1800,
  status: 'PENDING',
  payVersion: 'v2',
  clientIp: '203.0.113.7',
  createdAt: '2026-11-21T08:00:00.000Z',
  timeExpire: '2099-11-21T10:00:00.000Z',
};
const user = {
  id: USER_ID,
  openid: OPENID,
  nickname: '微信用户abcdef',
  avatar: '',
  sex: 2,
  role: 0,
  company: '',
  introduce: '',
  version: 0,
  createdAt: '2026-11-21T08:00:00.000Z',
  updatedAt: '2026-11-21T08:00:00.000Z',
};

const WRITES = ['PutCommand', 'UpdateCommand', 'DeleteCommand', 'TransactWriteCommand', 'BatchWriteCommand'];
const writes = () => ddb.calls().filter((call) => WRITES.includes(call.args[0].constructor.name));

/** The SSM answer for the v2 secrets (the same values the test environment uses, so notifies verify). */
function ssmAnswer(overrides: Partial<Record<SecretName, string>> = {}) {
  const settings = readSettings();
  const names: SecretName[] =
    settings.payVersion === 'v2'
      ? ['WECHAT_SECRET', 'JWT_SECRET', 'WECHAT_MCH_KEY']
      : [
          'WECHAT_SECRET',
          'JWT_SECRET',
          'WECHAT_APIV3_KEY',
          'WECHAT_MCH_PRIVATE_KEY',
          'WECHAT_PAY_PUBLIC_KEY',
        ];
  return {
    Parameters: names.map((name) => ({
      Name: ssmParameterName(settings, name),
      Type: 'SecureString' as const,
      Value: overrides[name] ?? (process.env[name] as string),
    })),
    InvalidParameters:
      settings.payVersion === 'v3' ? [ssmParameterName(settings, 'WECHAT_PAY_PLATFORM_CERTS')] : [],
  };
}

function sdkError(name: string): Error {
  return Object.assign(new Error(`${name} (injected)`), { name, $metadata: { httpStatusCode: 400 } });
}

function signInEvent() {
  return httpEvent({ method: 'POST', path: '/wechat/sign_in', body: { code: 'fault-suite-code_01' } });
}

function notifyEvent() {
  return httpEvent({
    method: 'POST',
    path: '/wechat/notify',
    body: v2NotifyXml({ outTradeNo: order.outTradeNo, totalFee: order.totalFee }),
    headers: { 'content-type': 'text/xml' },
  });
}

/** Everything the logger.error spy saw, as one string. */
function errorLogs(spy: Mock): string {
  return JSON.stringify(spy.mock.calls);
}

let fetchMock: Mock<typeof fetch>;
const savedEnv = { ...process.env };

beforeEach(() => {
  process.env.SECRETS_SOURCE = 'ssm';
  resetConfigCache();
  clearCaches();
  ssm.reset();
  ddb.reset();
  ddb.on(GetCommand, { Key: { outTradeNo: order.outTradeNo } }).resolves({ Item: order });
  ddb.on(GetCommand, { Key: { id: USER_ID } }).resolves({ Item: user });
  ddb.on(PutCommand).resolves({});
  ddb.on(TransactWriteCommand).resolves({});
  fetchMock = vi.fn<typeof fetch>(
    async () =>
      new Response(JSON.stringify({ openid: OPENID, session_key: 'tiihtNczf5v6AKRyjwEUhQ==' }), {
        status: 200,
        headers: { 'content-type': 'text/plain' },
      }),
  );
  vi.stubGlobal('fetch', fetchMock);
});

afterEach(() => {
  for (const name of ['SECRETS_SOURCE', 'WECHAT_PAY_VERSION', 'SECRET_NAMES']) {
    if (savedEnv[name] === undefined) delete process.env[name];
    else process.env[name] = savedEnv[name];
  }
  vi.unstubAllGlobals();
  vi.restoreAllMocks();
  resetConfigCache();
  clearCaches();
  ssm.reset();
  ddb.reset();
});

describe('F17 SSM fails during a cold start', () => {
  it.each(['ThrottlingException', 'TimeoutError', 'AccessDeniedException'])(
    'answers the notify 500 FAIL with 0 DynamoDB calls on %s, and the next invocation reads SSM again and credits',
    async (name) => {
      // Prepare
      ssm.on(GetParametersCommand).rejectsOnce(sdkError(name)).resolves(ssmAnswer());
      // Act
      const failed = await notifyHandler(notifyEvent(), context);
      // Assess: WeChat retries; nothing was read or written
      expect(failed.statusCode).toBe(500);
      expect(failed.body).toContain('FAIL');
      expect(failed.body).not.toContain(SUCCESS);
      expect(ddb.calls()).toHaveLength(0);
      // Act: WeChat's redelivery lands on the same (warm) container
      const retried = await notifyHandler(notifyEvent(), context);
      // Assess
      expect(retried.statusCode).toBe(200);
      expect(retried.body).toContain(SUCCESS);
      expect(ssm.commandCalls(GetParametersCommand)).toHaveLength(2);
      expect(writes().map((call) => call.args[0].constructor.name)).toEqual(['TransactWriteCommand']);
    },
  );

  it.each(['ThrottlingException', 'TimeoutError', 'AccessDeniedException'])(
    'answers sign-in 500 without a token, a WeChat call or a write on %s, and the next invocation signs in',
    async (name) => {
      // Prepare
      ssm.on(GetParametersCommand).rejectsOnce(sdkError(name)).resolves(ssmAnswer());
      // Act
      const failed = await signInHandler(signInEvent(), context);
      // Assess
      expect(failed.statusCode).toBe(500);
      expect(envelope(failed)).toMatchObject({ success: false, code: 'INTERNAL_ERROR' });
      expect(envelope(failed).data).toBeUndefined();
      expect(fetchMock).not.toHaveBeenCalled();
      expect(ddb.calls()).toHaveLength(0);
      // Act
      const retried = await signInHandler(signInEvent(), context);
      // Assess
      expect(retried.statusCode).toBe(200);
      expect(envelope(retried).data?.token).toEqual(expect.any(String));
      expect(ssm.commandCalls(GetParametersCommand)).toHaveLength(2);
    },
  );
});

describe('F18 SSM returns a malformed secret', () => {
  const cases: [string, 'v2' | 'v3', SecretName, string][] = [
    ['a JWT key of 31 bytes', 'v2', 'JWT_SECRET', 'jwt-key-that-is-31-bytes-long!!'],
    ['a v2 key of 31 chars', 'v2', 'WECHAT_MCH_KEY', 'shortMchKey00000000000000000000'],
    ['a v2 key of 33 chars', 'v2', 'WECHAT_MCH_KEY', 'longMchKey0000000000000000000000000'.slice(0, 33)],
    ['a v2 key of 32 chars with a symbol', 'v2', 'WECHAT_MCH_KEY', 'symbolMchKey000000000000000000-0'],
    ['an APIv3 key of 31 bytes', 'v3', 'WECHAT_APIV3_KEY', 'shortApiV3Key000000000000000000'],
    ['an unparsable merchant PEM', 'v3', 'WECHAT_MCH_PRIVATE_KEY', 'not-a-pem-private-key-value'],
  ];

  it.each(cases)(
    'fails closed on %s (%s): notify 500 FAIL, sign-in 500 without a token, the error names %s but not the value',
    async (_name, version, parameter, value) => {
      // Prepare
      process.env.WECHAT_PAY_VERSION = version;
      ssm.on(GetParametersCommand).resolves(ssmAnswer({ [parameter]: value }));
      const logged = vi.spyOn(logger, 'error');
      // Act
      const notified = await notifyHandler(notifyEvent(), context);
      const signedIn = await signInHandler(signInEvent(), context);
      // Assess: nothing acknowledged, nothing signed, nothing written, WeChat never called
      expect(value.length).toBeGreaterThan(0);
      expect(notified.statusCode).toBe(500);
      expect(notified.body).not.toContain(SUCCESS);
      expect(signedIn.statusCode).toBe(500);
      expect(envelope(signedIn).data).toBeUndefined();
      expect(ddb.calls()).toHaveLength(0);
      expect(fetchMock).not.toHaveBeenCalled();
      // The logs name the parameter; neither logs nor responses carry the value
      expect(errorLogs(logged)).toContain(parameter);
      expect(errorLogs(logged)).not.toContain(value);
      expect(`${notified.body}${signedIn.body}`).not.toContain(value);
    },
  );
});

describe('F19 session tokens and key rotation', () => {
  // Rotation of JWT_SECRET is not supported with an overlap: one key verifies. Rotating means a redeploy
  // with the new SSM value, after which every session signed with the old key must sign in again.
  beforeEach(() => {
    process.env.SECRETS_SOURCE = 'env';
  });

  it.each([
    ['a previous key', 'previous-jwt-secret-of-at-least-32-bytes-0000'],
    ['a key sharing a prefix', `${process.env.JWT_SECRET}-rotated`],
  ])(
    'refuses a token signed with %s (401 INVALID_TOKEN) and accepts one signed with the current key',
    async (_name, other) => {
      // Prepare
      const config = await loadConfig();
      const foreign = await issueSessionToken(USER_ID, {
        ...config,
        jwtSecret: new TextEncoder().encode(other),
      });
      const current = await issueSessionToken(USER_ID, config);
      // Act
      const refused = await meHandler(httpEvent({ path: '/wechat/me', token: foreign }), context);
      const accepted = await meHandler(httpEvent({ path: '/wechat/me', token: current }), context);
      // Assess
      expect(refused.statusCode).toBe(401);
      expect(envelope(refused).code).toBe('INVALID_TOKEN');
      expect(accepted.statusCode).toBe(200);
      expect(envelope(accepted).data?.user.id).toBe(USER_ID);
    },
  );
});

describe('F20 clock skew on session tokens (30 s tolerance, verifySessionToken’s now)', () => {
  const ISSUED = new Date('2026-11-21T08:00:00.000Z');
  const at = (seconds: number) => new Date(ISSUED.getTime() + seconds * 1000);

  beforeEach(() => {
    process.env.SECRETS_SOURCE = 'env';
  });

  it.each<[string, 'accepted' | 'TOKEN_EXPIRED', number]>([
    ['1 s before expiry', 'accepted', -1],
    ['at expiry', 'accepted', 0],
    ['29 s after expiry', 'accepted', 29],
    ['30 s after expiry', 'TOKEN_EXPIRED', 30],
    ['31 s after expiry', 'TOKEN_EXPIRED', 31],
    ['6 min after expiry', 'TOKEN_EXPIRED', 360],
  ])('a token checked %s is %s', async (_name, outcome, afterExpiry) => {
    // Prepare
    const config = await loadConfig();
    const token = await issueSessionToken(USER_ID, config, ISSUED);
    // Act
    const result = await verifySessionToken(token, config, at(config.jwtTtlSeconds + afterExpiry)).catch(
      (error: unknown) => error,
    );
    // Assess
    if (outcome === 'accepted') expect(result).toBe(USER_ID);
    else {
      expect(result).toBeInstanceOf(UnauthorizedError);
      expect((result as UnauthorizedError).code).toBe(outcome);
    }
  });

  it.each<[string, 'accepted' | 'refused', number]>([
    ['29 s ahead of the verifier', 'accepted', 29],
    ['31 s ahead of the verifier', 'refused', 31],
    ['4 min ahead of the verifier', 'refused', 240],
  ])('a token from an issuer whose clock runs %s is %s', async (_name, outcome, skew) => {
    // Prepare: signed by an instance whose clock is ahead
    const config = await loadConfig();
    const token = await issueSessionToken(USER_ID, config, at(skew));
    // Act
    const result = await verifySessionToken(token, config, ISSUED).catch((error: unknown) => error);
    // Assess
    if (outcome === 'accepted') expect(result).toBe(USER_ID);
    else expect(result).toBeInstanceOf(UnauthorizedError);
  });
});
