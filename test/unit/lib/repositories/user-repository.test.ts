import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, GetCommand, PutCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createUserIfAbsent, getUser, setUnionId, updateProfile } from '#lib/repositories/user-repository';
import { aUser } from '#test/helpers/builders';
import { conditionFailed } from '#test/helpers/dynamo';

const TABLE = 'wechat-miniprogram-backend-test-users';
const NOW = '2026-11-21T08:00:00.000Z';

describe('user-repository', () => {
  const ddb = mockClient(DynamoDBDocumentClient);

  beforeEach(() => ddb.reset());
  afterEach(() => ddb.reset());

  describe('createUserIfAbsent', () => {
    it('sends one conditional PutCommand returning ALL_OLD and reports created when the id is new', async () => {
      // Prepare
      const fresh = aUser();
      ddb.on(PutCommand).resolves({});

      // Act
      const result = await createUserIfAbsent(TABLE, fresh);

      // Assess
      expect(result).toEqual({ user: fresh, created: true });
      expect(ddb).toReceiveCommandWith(PutCommand, {
        TableName: TABLE,
        Item: fresh,
        ConditionExpression: 'attribute_not_exists(id)',
        ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
      });
      expect(ddb.calls()).toHaveLength(1);
    });

    it('returns the stored user with created false and sends nothing else when the id exists', async () => {
      // Prepare
      const stored = aUser({
        nickname: '老用户',
        role: 1,
        membershipExpiredAt: '2027-01-01T00:00:00.000Z',
        unionid: 'oUnionUnitTest000000001',
        version: 4,
        createdAt: '2025-01-01T00:00:00.000Z',
      });
      ddb.on(PutCommand).rejects(conditionFailed(stored));

      // Act
      const result = await createUserIfAbsent(TABLE, aUser());

      // Assess
      expect(result).toEqual({ user: stored, created: false });
      expect(ddb).toHaveReceivedCommandTimes(PutCommand, 1);
      expect(ddb.calls()).toHaveLength(1);
    });

    it('rethrows when the condition fails without the old item', async () => {
      // Prepare
      ddb.on(PutCommand).rejects(conditionFailed());

      // Act
      const error = await createUserIfAbsent(TABLE, aUser()).catch((caught: unknown) => caught);

      // Assess
      expect(error).toBeInstanceOf(ConditionalCheckFailedException);
    });

    it('rethrows other DynamoDB errors unchanged', async () => {
      // Prepare
      const throttled = Object.assign(new Error('Rate exceeded'), {
        name: 'ProvisionedThroughputExceededException',
      });
      ddb.on(PutCommand).rejects(throttled);

      // Act
      const error = await createUserIfAbsent(TABLE, aUser()).catch((caught: unknown) => caught);

      // Assess
      expect(error).toBe(throttled);
    });
  });

  describe('getUser', () => {
    it('reads by id with ConsistentRead and returns the item when it exists', async () => {
      // Prepare
      const stored = aUser();
      ddb.on(GetCommand).resolves({ Item: stored });

      // Act
      const result = await getUser(TABLE, stored.id);

      // Assess
      expect(result).toEqual(stored);
      expect(ddb).toReceiveCommandWith(GetCommand, {
        TableName: TABLE,
        Key: { id: stored.id },
        ConsistentRead: true,
      });
    });

    it('returns undefined when the user does not exist', async () => {
      // Prepare
      ddb.on(GetCommand).resolves({});

      // Act
      const result = await getUser(TABLE, 'uMissing0000000000000000');

      // Assess
      expect(result).toBeUndefined();
    });
  });

  describe('updateProfile', () => {
    it('sets only placeholders in the expression and conditions on attribute_exists(id)', async () => {
      // Prepare
      const updated = aUser({ nickname: '新昵称', company: 'ACME' });
      ddb.on(UpdateCommand).resolves({ Attributes: updated });

      // Act
      const result = await updateProfile(TABLE, updated.id, { nickname: '新昵称', company: 'ACME' }, NOW);

      // Assess
      expect(result).toEqual(updated);
      expect(ddb).toHaveReceivedCommandWith(UpdateCommand, {
        TableName: TABLE,
        Key: { id: updated.id },
        UpdateExpression: 'SET #f0 = :v0, #f1 = :v1, #f2 = :v2',
        ExpressionAttributeNames: { '#f0': 'nickname', '#f1': 'company', '#f2': 'updatedAt' },
        ExpressionAttributeValues: { ':v0': '新昵称', ':v1': 'ACME', ':v2': NOW },
        ConditionExpression: 'attribute_exists(id)',
        ReturnValues: 'ALL_NEW',
      });
    });

    it('keeps every field name out of the expression when all profile fields change', async () => {
      // Prepare
      const changes = {
        nickname: 'n',
        avatar: 'https://example.com/a.png',
        sex: 1 as const,
        company: 'c',
        introduce: 'i',
      };
      ddb.on(UpdateCommand).resolves({ Attributes: aUser(changes) });

      // Act
      await updateProfile(TABLE, 'uAbCdEfGhIjKlMnOpQrStUv', changes, NOW);

      // Assess
      const input = ddb.commandCalls(UpdateCommand)[0]?.args[0].input;
      expect(input?.UpdateExpression).toMatch(/^SET #f\d+ = :v\d+(, #f\d+ = :v\d+)*$/);
      for (const name of [...Object.keys(changes), 'updatedAt']) {
        expect(input?.UpdateExpression).not.toContain(name);
      }
      expect(Object.values(input?.ExpressionAttributeNames ?? {}).sort()).toEqual(
        [...Object.keys(changes), 'updatedAt'].sort(),
      );
      expect(input?.ConditionExpression).toBe('attribute_exists(id)');
    });

    it('skips undefined fields when a change is undefined', async () => {
      // Prepare
      ddb.on(UpdateCommand).resolves({ Attributes: aUser() });

      // Act
      await updateProfile(TABLE, 'uAbCdEfGhIjKlMnOpQrStUv', { nickname: 'n', avatar: undefined }, NOW);

      // Assess
      const input = ddb.commandCalls(UpdateCommand)[0]?.args[0].input;
      expect(input?.ExpressionAttributeNames).toEqual({ '#f0': 'nickname', '#f1': 'updatedAt' });
    });

    it('returns undefined when the user no longer exists', async () => {
      // Prepare
      ddb.on(UpdateCommand).rejects(conditionFailed());

      // Act
      const result = await updateProfile(TABLE, 'uGone00000000000000000', { nickname: 'n' }, NOW);

      // Assess
      expect(result).toBeUndefined();
    });
  });

  describe('setUnionId', () => {
    it('sets the unionid on an existing user only', async () => {
      // Prepare
      ddb.on(UpdateCommand).resolves({});

      // Act
      await setUnionId(TABLE, 'uAbCdEfGhIjKlMnOpQrStUv', 'oUnionUnitTest000000001');

      // Assess
      expect(ddb).toReceiveCommandWith(UpdateCommand, {
        TableName: TABLE,
        Key: { id: 'uAbCdEfGhIjKlMnOpQrStUv' },
        UpdateExpression: 'SET unionid = :u',
        ConditionExpression: 'attribute_exists(id)',
        ExpressionAttributeValues: { ':u': 'oUnionUnitTest000000001' },
      });
    });
  });
});
