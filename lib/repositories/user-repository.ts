import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import { GetCommand, PutCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { unmarshall } from '@aws-sdk/util-dynamodb';
import { dynamo } from '#lib/clients/dynamodb';

/** A user item as stored. `version` increments on every membership change (optimistic locking). */
export interface UserRecord {
  id: string;
  openid: string;
  unionid?: string;
  nickname: string;
  avatar: string;
  sex: 0 | 1 | 2;
  role: 0 | 1;
  company: string;
  introduce: string;
  /** ISO 8601 UTC, absent when never a member. */
  membershipExpiredAt?: string;
  version: number;
  createdAt: string;
  updatedAt: string;
}

export type ProfileChanges = Partial<
  Pick<UserRecord, 'nickname' | 'avatar' | 'sex' | 'company' | 'introduce'>
>;

/** Creates the user unless one with this id exists (one conditional PutItem); returns the stored user either way. */
export async function createUserIfAbsent(
  table: string,
  user: UserRecord,
): Promise<{ user: UserRecord; created: boolean }> {
  try {
    await dynamo().send(
      new PutCommand({
        TableName: table,
        Item: user,
        ConditionExpression: 'attribute_not_exists(id)',
        ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
      }),
    );
    return { user, created: true };
  } catch (error) {
    if (error instanceof ConditionalCheckFailedException && error.Item) {
      return { user: unmarshall(error.Item) as UserRecord, created: false };
    }
    throw error;
  }
}

/** Reads a user by id (strongly consistent); undefined when absent. */
export async function getUser(table: string, id: string): Promise<UserRecord | undefined> {
  const { Item } = await dynamo().send(
    new GetCommand({ TableName: table, Key: { id }, ConsistentRead: true }),
  );
  return Item as UserRecord | undefined;
}

/** Sets the given profile fields on an existing user; returns the updated user, undefined if the user is gone. */
export async function updateProfile(
  table: string,
  id: string,
  changes: ProfileChanges,
  now: string,
): Promise<UserRecord | undefined> {
  const fields = Object.entries({ ...changes, updatedAt: now }).filter(([, value]) => value !== undefined);
  try {
    const { Attributes } = await dynamo().send(
      new UpdateCommand({
        TableName: table,
        Key: { id },
        UpdateExpression: `SET ${fields.map((_, i) => `#f${i} = :v${i}`).join(', ')}`,
        ExpressionAttributeNames: Object.fromEntries(fields.map(([name], i) => [`#f${i}`, name])),
        ExpressionAttributeValues: Object.fromEntries(fields.map(([, value], i) => [`:v${i}`, value])),
        ConditionExpression: 'attribute_exists(id)',
        ReturnValues: 'ALL_NEW',
      }),
    );
    return Attributes as UserRecord;
  } catch (error) {
    if (error instanceof ConditionalCheckFailedException) return undefined;
    throw error;
  }
}

/** Records a unionid learnt on a later sign-in (WeChat sends it once the app joins an Open Platform account). */
export async function setUnionId(table: string, id: string, unionid: string): Promise<void> {
  await dynamo().send(
    new UpdateCommand({
      TableName: table,
      Key: { id },
      UpdateExpression: 'SET unionid = :u',
      ConditionExpression: 'attribute_exists(id)',
      ExpressionAttributeValues: { ':u': unionid },
    }),
  );
}

/** A user's hold on one plan's open order: the out_trade_no being opened or open, and since when (ISO UTC). */
export interface OrderClaim {
  outTradeNo: string;
  claimedAt: string;
}

export type ClaimResult =
  /** The claim is written; `user` is the user as now stored. */
  | { kind: 'claimed'; user: UserRecord }
  /** Another claim holds the plan (or the one to replace changed meanwhile): look at its order. */
  | { kind: 'held'; claim?: OrderClaim }
  /** The user already created `cap` orders in this hour window. */
  | { kind: 'capped' }
  | { kind: 'no_user' };

const claimAttribute = (planId: string) => `openOrder_${planId}`;

/**
 * Claims the user's open-order slot for a plan in one strongly consistent conditional UpdateItem, and counts
 * the order against the hourly cap (`window` names the hour, e.g. '2026-11-30T02'): succeeds only while no
 * claim holds the plan (or the held claim is exactly `replacing`, a stale one the caller takes over) and
 * fewer than `cap` orders were created in `window`. Concurrent callers: exactly one is 'claimed'.
 * A first order in a new window costs one request, later ones in the same window two.
 */
export async function claimOpenOrder(
  table: string,
  input: {
    userId: string;
    planId: string;
    claim: OrderClaim;
    replacing?: OrderClaim;
    window: string;
    cap: number;
  },
): Promise<ClaimResult> {
  const slot = input.replacing ? '#c.outTradeNo = :held' : 'attribute_not_exists(#c)';
  for (const sameWindow of [false, true]) {
    try {
      const { Attributes } = await dynamo().send(
        new UpdateCommand({
          TableName: table,
          Key: { id: input.userId },
          UpdateExpression: sameWindow
            ? 'SET #c = :claim, orderCount = orderCount + :one'
            : 'SET #c = :claim, orderWindow = :w, orderCount = :one',
          ConditionExpression: `attribute_exists(id) AND ${slot} AND ${
            sameWindow
              ? 'orderWindow = :w AND orderCount < :cap'
              : '(attribute_not_exists(orderWindow) OR orderWindow <> :w)'
          }`,
          ExpressionAttributeNames: { '#c': claimAttribute(input.planId) },
          ExpressionAttributeValues: {
            ':claim': input.claim,
            ':w': input.window,
            ':one': 1,
            ...(sameWindow ? { ':cap': input.cap } : {}),
            ...(input.replacing ? { ':held': input.replacing.outTradeNo } : {}),
          },
          ReturnValues: 'ALL_NEW',
          ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
        }),
      );
      return { kind: 'claimed', user: Attributes as UserRecord };
    } catch (error) {
      if (!(error instanceof ConditionalCheckFailedException)) throw error;
      if (!error.Item) return { kind: 'no_user' };
      const old = unmarshall(error.Item) as Record<string, unknown>;
      const held = old[claimAttribute(input.planId)] as OrderClaim | undefined;
      if (input.replacing ? held?.outTradeNo !== input.replacing.outTradeNo : held)
        return { kind: 'held', claim: held };
      if (old.orderWindow === input.window && Number(old.orderCount) >= input.cap) return { kind: 'capped' };
      if (old.orderWindow !== input.window) return { kind: 'held', claim: held };
    }
  }
  return { kind: 'held', claim: undefined };
}
