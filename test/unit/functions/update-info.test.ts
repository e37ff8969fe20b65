import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { handler } from '#functions/update-info';
import { issueSessionToken } from '#lib/auth';
import { loadConfig, resetConfigCache } from '#lib/config';
import { context, envelope, httpEvent } from '#local/fixtures/events';
import { aUser, testUserId } from '#test/helpers/builders';

const OPENID = 'oUnitTestOpenid0000001';
const USER_ID = testUserId(OPENID);

function infoEvent(token: string | undefined, body?: string | object, headers?: Record<string, string>) {
  return httpEvent({ method: 'PUT', path: '/wechat/info', token, body, headers });
}

async function validToken(): Promise<string> {
  return issueSessionToken(USER_ID, await loadConfig());
}

describe('update-info handler', () => {
  const ddb = mockClient(DynamoDBDocumentClient);
  const stored = aUser({ openid: OPENID });

  beforeEach(() => {
    resetConfigCache();
    ddb.reset();
  });
  afterEach(() => ddb.reset());

  it('updates the allowed fields and returns the public user when the body is valid', async () => {
    // Prepare
    ddb.on(UpdateCommand).resolves({ Attributes: { ...stored, nickname: '小明', sex: 0 } });

    // Act
    const result = await handler(infoEvent(await validToken(), { nickname: '小明', sex: 0 }), context);

    // Assess
    expect(result.statusCode).toBe(200);
    expect(envelope(result)).toMatchObject({
      success: true,
      message: '更新用户信息成功',
      data: { user: { id: USER_ID, nickname: '小明', sex: 0, role: 0 } },
    });
    expect(result.body).not.toContain(OPENID);
    const input = ddb.commandCalls(UpdateCommand)[0]?.args[0].input;
    expect(input?.Key).toEqual({ id: USER_ID });
    expect(input?.ConditionExpression).toBe(
      'attribute_exists(id) AND (sessionVersion = :sv OR attribute_not_exists(sessionVersion))',
    );
  });

  it('never writes role when the body tries to set it next to a nickname', async () => {
    // Prepare
    ddb.on(UpdateCommand).resolves({ Attributes: { ...stored, nickname: 'x' } });

    // Act
    const result = await handler(
      infoEvent(await validToken(), {
        role: 1,
        nickname: 'x',
        membershipExpiredAt: '2099-01-01T00:00:00.000Z',
        id: 'uSomeoneElse0000000000',
        openid: 'oEvil000000',
      }),
      context,
    );

    // Assess
    expect(result.statusCode).toBe(200);
    expect(ddb.commandCalls(UpdateCommand)).toHaveLength(1);
    const input = ddb.commandCalls(UpdateCommand)[0]?.args[0].input;
    const values = Object.values(input?.ExpressionAttributeValues ?? {});
    const names = Object.values(input?.ExpressionAttributeNames ?? {});
    expect(values).not.toContain(1);
    expect(values).not.toContain('2099-01-01T00:00:00.000Z');
    expect(names.sort()).toEqual(['nickname', 'updatedAt']);
    expect(input?.Key).toEqual({ id: USER_ID });
    expect(envelope(result).data?.user.role).toBe(0);
  });

  it.each([
    ['nickname empty', { nickname: '' }, 400],
    ['nickname of 33 chars', { nickname: 'n'.repeat(33) }, 400],
    ['nickname a number', { nickname: 1 }, 400],
    ['nickname with U+202E', { nickname: 'a\u202Eb' }, 400],
    ['nickname zero-width only', { nickname: '\u200b' }, 400],
    ['avatar javascript:', { avatar: 'javascript:alert(1)' }, 400],
    ['avatar http:', { avatar: 'http://169.254.169.254/latest/meta-data' }, 400],
    ['sex "1"', { sex: '1' }, 400],
    ['only unknown fields', { role: 1 }, 400],
    ['{}', {}, 400],
    ['a JSON array', '[]', 400],
    ['a JSON string', '"nickname"', 400],
    ['JSON null', 'null', 400],
    ['non-JSON', 'nickname=x', 400],
    ['a __proto__ key', '{"nickname":"x","__proto__":{"isAdmin":true}}', 400],
    ['a body over 16 KB', { introduce: 'i'.repeat(17 * 1024) }, 413],
  ])('answers %s with an error envelope and no DynamoDB call', async (_label, body, status) => {
    // Prepare
    const token = await validToken();

    // Act
    const result = await handler(infoEvent(token, body), context);

    // Assess
    const reply = envelope(result);
    expect(result.statusCode).toBe(status);
    expect(reply.success).toBe(false);
    expect(reply.code).toMatch(/^[A-Z_]+$/);
    expect(ddb.calls()).toHaveLength(0);
    expect(({} as Record<string, unknown>).isAdmin).toBeUndefined();
  });

  it('answers 401 and writes nothing when there is no token', async () => {
    // Act
    const result = await handler(infoEvent(undefined, { nickname: 'x' }), context);

    // Assess
    expect(result.statusCode).toBe(401);
    expect(envelope(result)).toMatchObject({ success: false, code: 'UNAUTHORIZED' });
    expect(ddb.calls()).toHaveLength(0);
  });

  it('answers 401 USER_NOT_FOUND when the user no longer exists', async () => {
    // Prepare
    ddb
      .on(UpdateCommand)
      .rejects(
        new ConditionalCheckFailedException({ message: 'The conditional request failed', $metadata: {} }),
      );

    // Act
    const result = await handler(infoEvent(await validToken(), { nickname: 'x' }), context);

    // Assess
    expect(result.statusCode).toBe(401);
    expect(envelope(result)).toMatchObject({ success: false, code: 'USER_NOT_FOUND' });
  });

  it('answers 500 with the fixed message and hides the error when DynamoDB fails unexpectedly', async () => {
    // Prepare
    ddb.on(UpdateCommand).rejects(new Error('boom secret'));

    // Act
    const result = await handler(infoEvent(await validToken(), { nickname: 'x' }), context);

    // Assess
    expect(result.statusCode).toBe(500);
    expect(envelope(result)).toEqual({ success: false, message: '服务器内部错误', code: 'INTERNAL_ERROR' });
    expect(result.body).not.toContain('boom');
  });
});
