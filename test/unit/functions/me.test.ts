import { DynamoDBDocumentClient, GetCommand } from '@aws-sdk/lib-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import { SignJWT } from 'jose';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { handler } from '#functions/me';
import { issueSessionToken } from '#lib/auth';
import { loadConfig, resetConfigCache } from '#lib/config';
import { context, envelope, httpEvent } from '#local/fixtures/events';
import { aUser, testUserId } from '#test/helpers/builders';
import { storeItems } from '#test/helpers/dynamo';

const OPENID = 'oUnitTestOpenid0000001';
const USER_ID = testUserId(OPENID);

function meEvent(token?: string, headers?: Record<string, string>) {
  return httpEvent({ method: 'GET', path: '/wechat/me', token, headers });
}

async function validToken(userId = USER_ID): Promise<string> {
  return issueSessionToken(userId, await loadConfig());
}

describe('me handler', () => {
  const ddb = mockClient(DynamoDBDocumentClient);

  beforeEach(() => {
    resetConfigCache();
    ddb.reset();
  });
  afterEach(() => ddb.reset());

  it('returns the public user when the token is valid and the user exists', async () => {
    // Prepare
    const user = aUser({
      openid: OPENID,
      unionid: 'oUnionUnitTest000000001',
      role: 1,
      membershipExpiredAt: '2099-01-01T00:00:00.000Z',
    });
    ddb.on(GetCommand).resolves({ Item: user });

    // Act
    const result = await handler(meEvent(await validToken()), context);

    // Assess
    expect(result.statusCode).toBe(200);
    expect(envelope(result)).toEqual({
      success: true,
      message: '查询当前用户信息成功',
      data: {
        user: {
          id: USER_ID,
          nickname: user.nickname,
          avatar: '',
          sex: 2,
          role: 1,
          company: '',
          introduce: '',
          membershipExpiredAt: '2099-01-01T00:00:00.000Z',
        },
      },
    });
    expect(result.body).not.toContain(OPENID);
    expect(result.body).not.toContain('oUnionUnitTest000000001');
    const config = await loadConfig();
    expect(ddb.commandCalls(GetCommand)[0]?.args[0].input).toEqual({
      TableName: config.usersTable,
      Key: { id: USER_ID },
      ConsistentRead: true,
    });
  });

  it('accepts the token when the header is spelled Authorization', async () => {
    // Prepare
    ddb.on(GetCommand).resolves({ Item: aUser({ openid: OPENID }) });

    // Act
    const result = await handler(
      meEvent(undefined, { Authorization: `Bearer ${await validToken()}` }),
      context,
    );

    // Assess
    expect(result.statusCode).toBe(200);
    expect(envelope(result).data?.user.id).toBe(USER_ID);
  });

  it('answers 401 and reads nothing when there is no token', async () => {
    // Act
    const result = await handler(meEvent(), context);

    // Assess
    expect(result.statusCode).toBe(401);
    expect(envelope(result)).toMatchObject({ success: false, code: 'UNAUTHORIZED' });
    expect(ddb.calls()).toHaveLength(0);
  });

  it.each([
    ['a Basic header', { authorization: 'Basic dXNlcjpwYXNz' }],
    ['two joined Bearer headers', { authorization: 'Bearer a.b.c,Bearer a.b.c' }],
    ['a garbage token', { authorization: 'Bearer not-a-jwt' }],
  ])('answers 401 and reads nothing when the request has %s', async (_label, headers) => {
    // Act
    const result = await handler(meEvent(undefined, headers), context);

    // Assess
    expect(result.statusCode).toBe(401);
    expect(envelope(result).success).toBe(false);
    expect(ddb.calls()).toHaveLength(0);
  });

  it('answers 401 and reads nothing when the token is signed with another key', async () => {
    // Prepare
    const config = await loadConfig();
    const forged = await issueSessionToken(USER_ID, {
      ...config,
      jwtSecret: new TextEncoder().encode('an-attacker-jwt-secret-of-32-bytes-or-more'),
    });

    // Act
    const result = await handler(meEvent(forged), context);

    // Assess
    expect(result.statusCode).toBe(401);
    expect(envelope(result).code).toBe('INVALID_TOKEN');
    expect(ddb.calls()).toHaveLength(0);
  });

  it('answers 401 and reads nothing when the token has no exp', async () => {
    // Prepare
    const config = await loadConfig();
    const token = await new SignJWT({})
      .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
      .setSubject(USER_ID)
      .setIssuer(config.jwtIssuer)
      .setAudience(config.jwtAudience)
      .setIssuedAt()
      .sign(config.jwtSecret);

    // Act
    const result = await handler(meEvent(token), context);

    // Assess
    expect(result.statusCode).toBe(401);
    expect(ddb.calls()).toHaveLength(0);
  });

  it('answers 401 USER_NOT_FOUND when the token is valid but the user is missing', async () => {
    // Prepare
    ddb.on(GetCommand).resolves({});

    // Act
    const result = await handler(meEvent(await validToken()), context);

    // Assess
    expect(result.statusCode).toBe(401);
    expect(envelope(result)).toMatchObject({ success: false, code: 'USER_NOT_FOUND' });
  });

  it('answers 500 with the fixed message and hides the error when DynamoDB fails unexpectedly', async () => {
    // Prepare
    ddb.on(GetCommand).rejects(new Error('boom secret'));

    // Act
    const result = await handler(meEvent(await validToken()), context);

    // Assess
    expect(result.statusCode).toBe(500);
    expect(envelope(result)).toEqual({ success: false, message: '服务器内部错误', code: 'INTERNAL_ERROR' });
    expect(result.body).not.toContain('boom');
  });

  describe('after a JWT_SECRET rotation (research/reliability.md §3.2 F19)', () => {
    // Rotation of JWT_SECRET is not supported with an overlap: one key verifies. Rotating means a redeploy
    // with the new SSM value, after which every session signed with the old key must sign in again.
    beforeEach(() => storeItems(ddb, { users: [aUser()] }));

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
        const refused = await handler(meEvent(foreign), context);
        const accepted = await handler(meEvent(current), context);
        // Assess
        expect(refused.statusCode).toBe(401);
        expect(envelope(refused).code).toBe('INVALID_TOKEN');
        expect(accepted.statusCode).toBe(200);
        expect(envelope(accepted).data?.user.id).toBe(USER_ID);
      },
    );
  });
});
