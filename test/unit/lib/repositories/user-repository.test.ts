import {
  BatchGetCommand,
  DynamoDBDocumentClient,
  GetCommand,
  TransactWriteCommand,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  claimOpenOrder,
  createLinkedUser,
  findUserByLinkExpecting,
  getUser,
  linkIdentity,
  updateProfile,
} from '#lib/repositories/user-repository';
import { aUser } from '#test/helpers/builders';
import { conditionFailed, transactionCanceled } from '#test/helpers/dynamo';

const TABLE = 'wechat-miniprogram-backend-test-users';
const NOW = '2026-11-21T08:00:00.000Z';
/** The condition of a write by a session of generation 0: the user exists and never signed out. */
const LIVE_SESSION_0 =
  'attribute_exists(id) AND (sessionVersion = :sv OR attribute_not_exists(sessionVersion))';

describe('user-repository', () => {
  const ddb = mockClient(DynamoDBDocumentClient);

  beforeEach(() => ddb.reset());
  afterEach(() => ddb.reset());

  describe('claimOpenOrder', () => {
    const user = aUser();
    const claim = { outTradeNo: 'M20261121080000claimCLAIM01', claimedAt: '2026-11-21T08:00:00.000Z' };
    const input = {
      userId: user.id,
      planId: 'monthly',
      claim,
      window: '2026-11-21T08',
      cap: 20,
      endedBefore: '2026-11-21T06:10:00.000Z',
      sessionVersion: 0,
    };
    /** 2026-11-21T08 is hour 493,640 since the epoch: slot 493640 mod 97 = 3. */
    const SLOT = 'orders3';
    const sent = (n: number) => ddb.commandCalls(UpdateCommand)[n]?.args[0].input;

    it('claims and counts in ONE UpdateItem, in or out of the window: the hour slot counts from 0, the others go', async () => {
      // Prepare
      ddb.on(UpdateCommand).resolves({ Attributes: { ...user, [SLOT]: 1 } });
      // Act
      const result = await claimOpenOrder(TABLE, input);
      // Assess
      expect(result.kind).toBe('claimed');
      expect(ddb.calls()).toHaveLength(1);
      const update = sent(0);
      expect(update?.ExpressionAttributeNames).toEqual({ '#c': 'openOrder_monthly', '#n': SLOT });
      expect(update?.UpdateExpression).toMatch(
        /^SET #c = :claim, orderWindow = :w, #n = if_not_exists\(#n, :zero\) \+ :one REMOVE /,
      );
      const removed = (update?.UpdateExpression ?? '').split('REMOVE ')[1]?.split(', ') ?? [];
      expect(removed).toHaveLength(97);
      expect(removed).toContain('orders0');
      expect(removed).toContain('orderCount');
      expect(removed).not.toContain(SLOT);
      expect(update?.ConditionExpression).toContain(
        '(attribute_not_exists(#n) OR (orderWindow = :w AND #n < :cap))',
      );
    });

    it('restarts a slot that still counts a window 97 hours back in a second UpdateItem', async () => {
      // Prepare
      ddb
        .on(UpdateCommand)
        .rejectsOnce(conditionFailed({ ...user, orderWindow: '2026-11-17T07', [SLOT]: 20 }))
        .resolves({ Attributes: { ...user, [SLOT]: 1 } });
      // Act
      const result = await claimOpenOrder(TABLE, input);
      // Assess
      expect(result.kind).toBe('claimed');
      expect(sent(1)?.UpdateExpression).toMatch(/^SET #c = :claim, orderWindow = :w, #n = :one REMOVE /);
      expect(sent(1)?.ConditionExpression).toContain('orderWindow <> :w');
    });

    it('answers capped, in one request, once the hour slot holds the cap', async () => {
      // Prepare
      ddb.on(UpdateCommand).rejects(conditionFailed({ ...user, orderWindow: '2026-11-21T08', [SLOT]: 20 }));
      // Act / Assess
      expect(await claimOpenOrder(TABLE, input)).toEqual({ kind: 'capped' });
      expect(ddb.calls()).toHaveLength(1);
    });
  });

  describe('findUserByLinkExpecting', () => {
    const user = aUser();
    const link = { id: `openid#${user.openid}`, userId: user.id };

    it('reads the link and the expected user in ONE strongly consistent BatchGetItem', async () => {
      // Prepare: the stored end is epoch ms
      ddb
        .on(BatchGetCommand)
        .resolves({ Responses: { [TABLE]: [{ ...user, membershipEndMs: 1_800_000_000_000 }, link] } });
      // Act
      const found = await findUserByLinkExpecting(TABLE, 'openid', user.openid as string, user.id);
      // Assess
      expect(found).toEqual({ ...user, membershipExpiredAt: new Date(1_800_000_000_000).toISOString() });
      expect(ddb.calls()).toHaveLength(1);
      expect(ddb).toReceiveCommandWith(BatchGetCommand, {
        RequestItems: { [TABLE]: { Keys: [{ id: link.id }, { id: user.id }], ConsistentRead: true } },
      });
    });

    it('reads the user the link names when it is not the expected one', async () => {
      // Prepare
      const other = aUser({ id: 'uOtherUser0001' });
      ddb.on(BatchGetCommand).resolves({ Responses: { [TABLE]: [link, other] } });
      ddb.on(GetCommand, { Key: { id: user.id } }).resolves({ Item: user });
      // Act
      const found = await findUserByLinkExpecting(TABLE, 'openid', user.openid as string, other.id);
      // Assess
      expect(found).toEqual(user);
      expect(ddb.calls()).toHaveLength(2);
    });

    it('finds nobody when the identity is linked to nobody (the expected user is not taken)', async () => {
      // Prepare
      ddb.on(BatchGetCommand).resolves({ Responses: { [TABLE]: [user] } });
      // Act / Assess
      expect(await findUserByLinkExpecting(TABLE, 'openid', 'oNobody', user.id)).toBeUndefined();
    });

    it('falls back to the two reads when DynamoDB leaves keys unprocessed', async () => {
      // Prepare
      ddb.on(BatchGetCommand).resolves({ UnprocessedKeys: { [TABLE]: { Keys: [{ id: user.id }] } } });
      ddb.on(GetCommand, { Key: { id: link.id } }).resolves({ Item: link });
      ddb.on(GetCommand, { Key: { id: user.id } }).resolves({ Item: user });
      // Act / Assess
      expect(await findUserByLinkExpecting(TABLE, 'openid', user.openid as string, user.id)).toEqual(user);
    });
  });

  describe('createLinkedUser', () => {
    it('writes the openid link and the user in one transaction, each only if absent', async () => {
      // Prepare
      const fresh = aUser();
      ddb.on(TransactWriteCommand).resolves({});

      // Act
      const created = await createLinkedUser(TABLE, fresh);

      // Assess
      expect(created).toBe(true);
      expect(ddb).toReceiveCommandWith(TransactWriteCommand, {
        TransactItems: [
          {
            Put: {
              TableName: TABLE,
              Item: { id: `openid#${fresh.openid}`, userId: fresh.id },
              ConditionExpression: 'attribute_not_exists(id)',
            },
          },
          { Put: { TableName: TABLE, Item: fresh, ConditionExpression: 'attribute_not_exists(id)' } },
        ],
      });
    });

    it('reports false when the openid is already linked (a concurrent first sign-in won)', async () => {
      // Prepare
      ddb.on(TransactWriteCommand).rejects(transactionCanceled('ConditionalCheckFailed', 'None'));

      // Act
      const created = await createLinkedUser(TABLE, aUser());

      // Assess
      expect(created).toBe(false);
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
    it('sets only placeholders in the expression and conditions on the user and its session generation', async () => {
      // Prepare
      const updated = aUser({ nickname: '新昵称', company: 'ACME' });
      ddb.on(UpdateCommand).resolves({ Attributes: updated });

      // Act
      const result = await updateProfile(TABLE, updated.id, { nickname: '新昵称', company: 'ACME' }, NOW, 0);

      // Assess
      expect(result).toEqual(updated);
      expect(ddb).toHaveReceivedCommandWith(UpdateCommand, {
        TableName: TABLE,
        Key: { id: updated.id },
        UpdateExpression: 'SET #f0 = :v0, #f1 = :v1, #f2 = :v2',
        ExpressionAttributeNames: { '#f0': 'nickname', '#f1': 'company', '#f2': 'updatedAt' },
        ExpressionAttributeValues: { ':v0': '新昵称', ':v1': 'ACME', ':v2': NOW, ':sv': 0 },
        ConditionExpression: LIVE_SESSION_0,
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
      await updateProfile(TABLE, 'uAbCdEfGhIjKlMnOpQrStUv', changes, NOW, 0);

      // Assess
      const input = ddb.commandCalls(UpdateCommand)[0]?.args[0].input;
      expect(input?.UpdateExpression).toMatch(/^SET #f\d+ = :v\d+(, #f\d+ = :v\d+)*$/);
      for (const name of [...Object.keys(changes), 'updatedAt']) {
        expect(input?.UpdateExpression).not.toContain(name);
      }
      expect(Object.values(input?.ExpressionAttributeNames ?? {}).sort()).toEqual(
        [...Object.keys(changes), 'updatedAt'].sort(),
      );
      expect(input?.ConditionExpression).toBe(LIVE_SESSION_0);
    });

    it('skips undefined fields when a change is undefined', async () => {
      // Prepare
      ddb.on(UpdateCommand).resolves({ Attributes: aUser() });

      // Act
      await updateProfile(TABLE, 'uAbCdEfGhIjKlMnOpQrStUv', { nickname: 'n', avatar: undefined }, NOW, 0);

      // Assess
      const input = ddb.commandCalls(UpdateCommand)[0]?.args[0].input;
      expect(input?.ExpressionAttributeNames).toEqual({ '#f0': 'nickname', '#f1': 'updatedAt' });
    });

    it('returns undefined when the user no longer exists', async () => {
      // Prepare
      ddb.on(UpdateCommand).rejects(conditionFailed());

      // Act
      const result = await updateProfile(TABLE, 'uGone00000000000000000', { nickname: 'n' }, NOW, 0);

      // Assess
      expect(result).toBeUndefined();
    });
  });

  describe('linkIdentity', () => {
    it('writes the link only if absent and sets the openid only on an existing user without one', async () => {
      // Prepare
      ddb.on(TransactWriteCommand).resolves({});

      // Act
      const linked = await linkIdentity(TABLE, 'uAbCdEfGhIjKlMnOpQrStUv', 'mpopenid', 'oMpUnitTest000000001');

      // Assess
      expect(linked).toBe(true);
      expect(ddb).toReceiveCommandWith(TransactWriteCommand, {
        TransactItems: [
          {
            Put: {
              TableName: TABLE,
              Item: { id: 'mpopenid#oMpUnitTest000000001', userId: 'uAbCdEfGhIjKlMnOpQrStUv' },
              ConditionExpression: 'attribute_not_exists(id)',
            },
          },
          {
            Update: {
              TableName: TABLE,
              Key: { id: 'uAbCdEfGhIjKlMnOpQrStUv' },
              UpdateExpression: 'SET #f = :v',
              ConditionExpression: 'attribute_exists(id) AND attribute_not_exists(#f)',
              ExpressionAttributeNames: { '#f': 'mpOpenid' },
              ExpressionAttributeValues: { ':v': 'oMpUnitTest000000001' },
            },
          },
        ],
      });
    });

    it('reports false when the identity is linked already (nothing written)', async () => {
      // Prepare
      ddb.on(TransactWriteCommand).rejects(transactionCanceled('ConditionalCheckFailed', 'None'));

      // Act
      const linked = await linkIdentity(
        TABLE,
        'uAbCdEfGhIjKlMnOpQrStUv',
        'unionid',
        'oUnionUnitTest000000001',
      );

      // Assess
      expect(linked).toBe(false);
    });
  });

  describe('createLinkedUser with a unionid', () => {
    it('writes the openid link, the unionid link and the user, each only if absent', async () => {
      // Prepare
      const fresh = aUser({ unionid: 'oUnionUnitTest000000001', unionidLinked: true });
      ddb.on(TransactWriteCommand).resolves({});

      // Act
      await createLinkedUser(TABLE, fresh);

      // Assess
      const [items] = ddb.commandCalls(TransactWriteCommand).map((call) => call.args[0].input.TransactItems);
      expect(items?.map((item) => [item.Put?.Item?.id, item.Put?.ConditionExpression])).toEqual([
        [`openid#${fresh.openid}`, 'attribute_not_exists(id)'],
        ['unionid#oUnionUnitTest000000001', 'attribute_not_exists(id)'],
        [fresh.id, 'attribute_not_exists(id)'],
      ]);
    });
  });
});
