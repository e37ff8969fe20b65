import { ConditionalCheckFailedException, TransactionCanceledException } from '@aws-sdk/client-dynamodb';
import {
  GetCommand,
  PutCommand,
  TransactWriteCommand,
  type TransactWriteCommandInput,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
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
  /** Session generation: tokens carry the one they were issued under; sign-out increments it (absent = 0). */
  sessionVersion?: number;
  /** The bound phone number without country code (getuserphonenumber's purePhoneNumber); personal data, never logged. */
  phoneNumber?: string;
  /** Its country code, digits (e.g. '86'). */
  countryCode?: string;
  createdAt: string;
  updatedAt: string;
}

export type ProfileChanges = Partial<
  Pick<UserRecord, 'nickname' | 'avatar' | 'sex' | 'company' | 'introduce'>
>;

/** A phone number to bind (POST /wechat/phone). */
export type PhoneChanges = Required<Pick<UserRecord, 'phoneNumber' | 'countryCode'>>;

/**
 * The identity link: the users-table item that maps a WeChat openid to our user id. Deleting the account
 * deletes it with the user, so the same WeChat user later signs up anew.
 */
const linkKey = (openid: string) => ({ id: `openid#${openid}` });

/** The user an openid is linked to (two strongly consistent GetItems); undefined when none is. */
export async function findUserByOpenid(table: string, openid: string): Promise<UserRecord | undefined> {
  const { Item } = await dynamo().send(
    new GetCommand({ TableName: table, Key: linkKey(openid), ConsistentRead: true }),
  );
  return Item ? getUser(table, Item.userId as string) : undefined;
}

/**
 * A user stored before identity links existed, under `legacyId`: links the openid to it (a conditional
 * PutItem, so a concurrent sign-in links it once) and returns it; undefined when there is none (or it
 * belongs to another openid). A deleted user has no item, so a later sign-in gets a new account.
 */
export async function linkLegacyUser(
  table: string,
  openid: string,
  legacyId: string,
): Promise<UserRecord | undefined> {
  const user = await getUser(table, legacyId);
  if (!user || user.openid !== openid) return undefined;
  try {
    await dynamo().send(
      new PutCommand({
        TableName: table,
        Item: { ...linkKey(openid), userId: user.id },
        ConditionExpression: 'attribute_not_exists(id)',
      }),
    );
  } catch (error) {
    if (!(error instanceof ConditionalCheckFailedException)) throw error;
  }
  return user;
}

/**
 * Creates a user and its openid link in one transaction, unless the openid is already linked (a concurrent
 * first sign-in won): false then, nothing written.
 */
export function createLinkedUser(table: string, user: UserRecord): Promise<boolean> {
  return transactIf([
    {
      Put: {
        TableName: table,
        Item: { ...linkKey(user.openid), userId: user.id },
        ConditionExpression: 'attribute_not_exists(id)',
      },
    },
    { Put: { TableName: table, Item: user, ConditionExpression: 'attribute_not_exists(id)' } },
  ]);
}

/**
 * Deletes a user and its openid link in one transaction, conditioned on the user's `version` (a membership
 * change meanwhile, i.e. a payment credited, makes it false and deletes nothing).
 */
export function deleteUserAndLink(table: string, user: UserRecord): Promise<boolean> {
  return transactIf([
    {
      Delete: {
        TableName: table,
        Key: { id: user.id },
        ConditionExpression: 'version = :v',
        ExpressionAttributeValues: { ':v': user.version },
      },
    },
    { Delete: { TableName: table, Key: linkKey(user.openid) } },
  ]);
}

/** Runs one write transaction; false (nothing written) when a condition in it fails. */
async function transactIf(items: TransactWriteCommandInput['TransactItems']): Promise<boolean> {
  try {
    await dynamo().send(new TransactWriteCommand({ TransactItems: items }));
    return true;
  } catch (error) {
    if (error instanceof TransactionCanceledException) return false;
    throw error;
  }
}

/** The condition that the user exists and is still on session generation `sessionVersion`. */
function liveSession(sessionVersion: number) {
  return {
    condition: `attribute_exists(id) AND (sessionVersion = :sv${sessionVersion === 0 ? ' OR attribute_not_exists(sessionVersion)' : ''})`,
    values: { ':sv': sessionVersion },
  };
}

/** Ends every session of the user (session generation + 1); false when the user or the session is gone. */
export async function revokeSessions(table: string, id: string, sessionVersion: number): Promise<boolean> {
  const live = liveSession(sessionVersion);
  try {
    await dynamo().send(
      new UpdateCommand({
        TableName: table,
        Key: { id },
        UpdateExpression: 'SET sessionVersion = :next',
        ConditionExpression: live.condition,
        ExpressionAttributeValues: { ...live.values, ':next': sessionVersion + 1 },
      }),
    );
    return true;
  } catch (error) {
    if (error instanceof ConditionalCheckFailedException) return false;
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

/**
 * Sets the given profile fields on an existing user whose session generation is still `sessionVersion`;
 * returns the updated user, undefined if the user or the session is gone (a deleted user is never recreated).
 */
export function updateProfile(
  table: string,
  id: string,
  changes: ProfileChanges,
  now: string,
  sessionVersion: number,
): Promise<UserRecord | undefined> {
  return updateLiveUser(table, id, changes, now, sessionVersion);
}

/**
 * Binds a phone number to an existing user whose session generation is still `sessionVersion` (one conditional
 * UpdateItem, like updateProfile); returns the updated user, undefined if the user or the session is gone.
 */
export function setPhone(
  table: string,
  id: string,
  phone: PhoneChanges,
  now: string,
  sessionVersion: number,
): Promise<UserRecord | undefined> {
  return updateLiveUser(table, id, phone, now, sessionVersion);
}

async function updateLiveUser(
  table: string,
  id: string,
  changes: ProfileChanges | PhoneChanges,
  now: string,
  sessionVersion: number,
): Promise<UserRecord | undefined> {
  const live = liveSession(sessionVersion);
  const fields = Object.entries({ ...changes, updatedAt: now }).filter(([, value]) => value !== undefined);
  try {
    const { Attributes } = await dynamo().send(
      new UpdateCommand({
        TableName: table,
        Key: { id },
        UpdateExpression: `SET ${fields.map((_, i) => `#f${i} = :v${i}`).join(', ')}`,
        ExpressionAttributeNames: Object.fromEntries(fields.map(([name], i) => [`#f${i}`, name])),
        ExpressionAttributeValues: {
          ...Object.fromEntries(fields.map(([, value], i) => [`:v${i}`, value])),
          ...live.values,
        },
        ConditionExpression: live.condition,
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
  /** The user is gone, or the caller's session was revoked. */
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
    /** The caller's session generation: a revoked session claims nothing ('no_user'). */
    sessionVersion: number;
  },
): Promise<ClaimResult> {
  const live = liveSession(input.sessionVersion);
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
          ConditionExpression: `${live.condition} AND ${slot} AND ${
            sameWindow
              ? 'orderWindow = :w AND orderCount < :cap'
              : '(attribute_not_exists(orderWindow) OR orderWindow <> :w)'
          }`,
          ExpressionAttributeNames: { '#c': claimAttribute(input.planId) },
          ExpressionAttributeValues: {
            ':claim': input.claim,
            ':w': input.window,
            ':one': 1,
            ...live.values,
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
      if (Number(old.sessionVersion ?? 0) !== input.sessionVersion) return { kind: 'no_user' };
      const held = old[claimAttribute(input.planId)] as OrderClaim | undefined;
      if (input.replacing ? held?.outTradeNo !== input.replacing.outTradeNo : held)
        return { kind: 'held', claim: held };
      if (old.orderWindow === input.window && Number(old.orderCount) >= input.cap) return { kind: 'capped' };
      if (old.orderWindow !== input.window) return { kind: 'held', claim: held };
    }
  }
  return { kind: 'held', claim: undefined };
}
