import { ConditionalCheckFailedException, TransactionCanceledException } from '@aws-sdk/client-dynamodb';
import {
  BatchGetCommand,
  GetCommand,
  PutCommand,
  TransactWriteCommand,
  type TransactWriteCommandInput,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import { unmarshall } from '@aws-sdk/util-dynamodb';
import { dynamo } from '#lib/clients/dynamodb';

/**
 * A user as the app sees it. `version` increments on every membership change (optimistic locking). The item
 * stores the membership end as `membershipEndMs` (epoch milliseconds, UTC), a number a payment can extend in
 * place; `membershipExpiredAt` is read from it (items written before it existed hold the ISO string itself).
 */
export interface UserRecord {
  id: string;
  /** The mini-program openid (jscode2session); absent for a user who only ever signed in on H5. */
  openid?: string;
  /** The official-account openid (H5 web OAuth); absent until the user signs in on H5. */
  mpOpenid?: string;
  unionid?: string;
  /** True when `unionid` has its `unionid#` link item (users stored before unionid links have none yet). */
  unionidLinked?: boolean;
  nickname: string;
  avatar: string;
  sex: 0 | 1 | 2;
  role: 0 | 1;
  company: string;
  introduce: string;
  /** When the membership ends, ISO 8601 UTC; absent when never a member. */
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
 * The identity links: users-table items that map a WeChat identity to our user id: `openid#<openid>` (the
 * mini-program openid), `mpopenid#<openid>` (the official account's, from H5), `unionid#<unionid>` (the same
 * person across both, when WeChat gives one). Deleting the account deletes them with the user, so the same
 * WeChat user later signs up anew.
 */
export type LinkKind = 'openid' | 'mpopenid' | 'unionid';

/** The user attribute that holds each kind of identity. */
const LINK_FIELD = { openid: 'openid', mpopenid: 'mpOpenid', unionid: 'unionid' } as const;

const linkKey = (kind: LinkKind, value: string) => ({ id: `${kind}#${value}` });

/** The links a user item holds (the unionid only when its link was written with it). */
function linksOf(user: UserRecord): { kind: LinkKind; value: string }[] {
  const links: { kind: LinkKind; value: string }[] = [];
  if (user.openid) links.push({ kind: 'openid', value: user.openid });
  if (user.mpOpenid) links.push({ kind: 'mpopenid', value: user.mpOpenid });
  if (user.unionid && user.unionidLinked) links.push({ kind: 'unionid', value: user.unionid });
  return links;
}

/** The user an identity is linked to (two strongly consistent GetItems); undefined when none is. */
export async function findUserByLink(
  table: string,
  kind: LinkKind,
  value: string,
): Promise<UserRecord | undefined> {
  const { Item } = await dynamo().send(
    new GetCommand({ TableName: table, Key: linkKey(kind, value), ConsistentRead: true }),
  );
  return Item ? getUser(table, Item.userId as string) : undefined;
}

/**
 * The user an identity is linked to, reading the link and the user `likelyId` in ONE strongly consistent
 * BatchGetItem: one request when the link names that user (a returning sign-in that presented its previous
 * session), a GetItem more when it names another. Undefined when the identity is linked to nobody.
 */
export async function findUserByLinkExpecting(
  table: string,
  kind: LinkKind,
  value: string,
  likelyId: string,
): Promise<UserRecord | undefined> {
  const link = linkKey(kind, value);
  const { Responses = {}, UnprocessedKeys = {} } = await dynamo().send(
    new BatchGetCommand({
      RequestItems: { [table]: { Keys: [link, { id: likelyId }], ConsistentRead: true } },
    }),
  );
  if (Object.keys(UnprocessedKeys).length > 0) return findUserByLink(table, kind, value);
  const items = Responses[table] ?? [];
  const linked = items.find((item) => item.id === link.id)?.userId as string | undefined;
  if (!linked) return undefined;
  if (linked !== likelyId) return getUser(table, linked);
  return toUserRecord(items.find((item) => item.id === likelyId));
}

/** The user a mini-program openid is linked to (two strongly consistent GetItems); undefined when none is. */
export function findUserByOpenid(table: string, openid: string): Promise<UserRecord | undefined> {
  return findUserByLink(table, 'openid', openid);
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
        Item: { ...linkKey('openid', openid), userId: user.id },
        ConditionExpression: 'attribute_not_exists(id)',
      }),
    );
  } catch (error) {
    if (!(error instanceof ConditionalCheckFailedException)) throw error;
  }
  return user;
}

/**
 * Creates a user and its identity links (each openid it holds, and its unionid when `unionidLinked`) in one
 * transaction, every item only if absent: false, nothing written, when any is taken (a concurrent first
 * sign-in of the same openid, or of the same person on the other side, won).
 */
export function createLinkedUser(table: string, user: UserRecord): Promise<boolean> {
  return transactIf([
    ...linksOf(user).map((link) => ({
      Put: {
        TableName: table,
        Item: { ...linkKey(link.kind, link.value), userId: user.id },
        ConditionExpression: 'attribute_not_exists(id)',
      },
    })),
    { Put: { TableName: table, Item: user, ConditionExpression: 'attribute_not_exists(id)' } },
  ]);
}

/**
 * Links one more identity to an existing user, in one transaction: the link item (only if absent) and the
 * user's attribute (only while the user exists and holds no identity of that kind; a unionid is marked
 * `unionidLinked`). False, nothing written, when the identity is linked already (to anyone) or the user is
 * gone or holds another identity of that kind.
 */
export function linkIdentity(table: string, userId: string, kind: LinkKind, value: string): Promise<boolean> {
  const field = LINK_FIELD[kind];
  const unionid = kind === 'unionid';
  return transactIf([
    {
      Put: {
        TableName: table,
        Item: { ...linkKey(kind, value), userId },
        ConditionExpression: 'attribute_not_exists(id)',
      },
    },
    {
      Update: {
        TableName: table,
        Key: { id: userId },
        UpdateExpression: unionid ? 'SET #f = :v, unionidLinked = :t' : 'SET #f = :v',
        // A legacy unionid (stored before unionid links) is replaced by the linked one.
        ConditionExpression: unionid
          ? 'attribute_exists(id) AND (attribute_not_exists(unionidLinked) OR unionidLinked = :f)'
          : 'attribute_exists(id) AND attribute_not_exists(#f)',
        ExpressionAttributeNames: { '#f': field },
        ExpressionAttributeValues: { ':v': value, ...(unionid ? { ':t': true, ':f': false } : {}) },
      },
    },
  ]);
}

/**
 * Deletes a user and every identity link it holds in one transaction, conditioned on the user's `version` (a
 * membership change meanwhile, i.e. a payment credited, makes it false and deletes nothing).
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
    ...linksOf(user).map((link) => ({
      Delete: { TableName: table, Key: linkKey(link.kind, link.value) },
    })),
  ]);
}

/**
 * Sets profile defaults (from WeChat's user info) on fields the user has not set: each only while it still
 * holds the placeholder it was read with (one conditional UpdateItem; a user who edited meanwhile keeps
 * their value, and nothing is written). Returns the updated user, undefined when nothing was written.
 */
export async function fillProfileDefaults(
  table: string,
  id: string,
  defaults: {
    nickname?: { value: string; replacing: string };
    avatar?: { value: string; replacing: string };
  },
  now: string,
): Promise<UserRecord | undefined> {
  const fields = Object.entries(defaults).filter(([, change]) => change !== undefined) as [
    string,
    { value: string; replacing: string },
  ][];
  if (fields.length === 0) return undefined;
  try {
    const { Attributes } = await dynamo().send(
      new UpdateCommand({
        TableName: table,
        Key: { id },
        UpdateExpression: `SET ${fields.map((_, i) => `#f${i} = :v${i}`).join(', ')}, updatedAt = :now`,
        ConditionExpression: `attribute_exists(id) AND ${fields.map((_, i) => `#f${i} = :o${i}`).join(' AND ')}`,
        ExpressionAttributeNames: Object.fromEntries(fields.map(([name], i) => [`#f${i}`, name])),
        ExpressionAttributeValues: {
          ...Object.fromEntries(fields.map(([, change], i) => [`:v${i}`, change.value])),
          ...Object.fromEntries(fields.map(([, change], i) => [`:o${i}`, change.replacing])),
          ':now': now,
        },
        ReturnValues: 'ALL_NEW',
      }),
    );
    return toUserRecord(Attributes);
  } catch (error) {
    if (error instanceof ConditionalCheckFailedException) return undefined;
    throw error;
  }
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
  return toUserRecord(Item);
}

/**
 * A users-table item as a UserRecord: the stored `membershipEndMs` (epoch ms) becomes `membershipExpiredAt`
 * (ISO UTC); an item from before it existed keeps its ISO `membershipExpiredAt`. Undefined stays undefined.
 */
export function toUserRecord(item: Record<string, unknown> | undefined): UserRecord | undefined {
  if (!item || typeof item.membershipEndMs !== 'number') return item as UserRecord | undefined;
  const { membershipEndMs, ...user } = item;
  return { ...user, membershipExpiredAt: new Date(membershipEndMs).toISOString() } as UserRecord;
}

/**
 * How a transaction moves a user's membership (see membershipUpdate):
 * - `extend`: the stored end + `days`, in place, while the end is still after `now`; no version condition, so
 *   concurrent payments of one user commute instead of racing on the version;
 * - `set`: the end becomes `end` (ISO UTC) and the role `role`, conditioned on the user's `version`.
 * Both increment `version` and leave the end stored as `membershipEndMs`.
 */
export type MembershipChange =
  | { kind: 'extend'; days: number; now: Date }
  | { kind: 'set'; end: string; role: 0 | 1; version: number };

const DAY_MS = 86_400_000;

/**
 * The TransactWriteItems Update that applies a MembershipChange to user `userId` (role 1 for `extend`), with
 * `updatedAt` = `now` (ISO UTC) and the user as it was returned when its condition fails. Its condition
 * fails, writing nothing, when the user is gone, when an `extend` finds the end at or before its `now` (or
 * still in the ISO form of old items), or when a `set` finds another version.
 */
export function membershipUpdate(table: string, userId: string, change: MembershipChange, now: string) {
  const update = {
    TableName: table,
    Key: { id: userId },
    ExpressionAttributeNames: { '#r': 'role' },
    ReturnValuesOnConditionCheckFailure: 'ALL_OLD' as const,
  };
  if (change.kind === 'extend') {
    return {
      ...update,
      UpdateExpression:
        'SET membershipEndMs = membershipEndMs + :delta, #r = :role, updatedAt = :now ADD version :one',
      ConditionExpression: 'membershipEndMs > :at',
      ExpressionAttributeValues: {
        ':delta': change.days * DAY_MS,
        ':at': change.now.getTime(),
        ':role': 1,
        ':one': 1,
        ':now': now,
      },
    };
  }
  return {
    ...update,
    UpdateExpression:
      'SET membershipEndMs = :end, #r = :role, version = :next, updatedAt = :now REMOVE membershipExpiredAt',
    ConditionExpression: 'attribute_exists(id) AND version = :version',
    ExpressionAttributeValues: {
      ':end': Date.parse(change.end),
      ':role': change.role,
      ':version': change.version,
      ':next': change.version + 1,
      ':now': now,
    },
  };
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
    return toUserRecord(Attributes);
  } catch (error) {
    if (error instanceof ConditionalCheckFailedException) return undefined;
    throw error;
  }
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
 * The hourly order counters: the count of hour window W lives in attribute `orders<h mod ORDER_SLOTS>` (h: W's
 * hours since the epoch) and every claim removes the other slots, so the one slot a claim finds is either
 * its own window's count, absent (a new window: it counts from 0 in the same request), or, only when the
 * previous order was a multiple of ORDER_SLOTS hours earlier, a stale count that `orderWindow` exposes.
 * 97 hours: a prime, so daily or weekly habits do not collide.
 */
const ORDER_SLOTS = 97;
const slotOf = (window: string) => `orders${(Date.parse(`${window}:00:00.000Z`) / 3_600_000) % ORDER_SLOTS}`;
/** Every counter slot, and the legacy single counter (orderCount): what a claim removes, its own slot aside. */
const COUNTERS = [...Array.from({ length: ORDER_SLOTS }, (_, i) => `orders${i}`), 'orderCount'];

/**
 * Claims the user's open-order slot for a plan in one strongly consistent conditional UpdateItem, and counts
 * the order against the hourly cap (`window` names the hour, e.g. '2026-11-30T02'): succeeds only while no
 * live claim holds the plan (none, one made at or before `endedBefore` (ISO UTC), whose order can no longer
 * be continued, or exactly `replacing`, a stale one the caller takes over) and fewer than `cap` orders were
 * created in `window`. Concurrent callers: exactly one is 'claimed'.
 * One request, new window or not; two when the counter slot still holds a window ORDER_SLOTS hours back.
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
    /** Claims made at or before this time (ISO UTC) are ended: taken over like no claim. */
    endedBefore: string;
    /** The caller's session generation: a revoked session claims nothing ('no_user'). */
    sessionVersion: number;
  },
): Promise<ClaimResult> {
  const live = liveSession(input.sessionVersion);
  const slot = input.replacing
    ? '#c.outTradeNo = :held'
    : '(attribute_not_exists(#c) OR #c.claimedAt <= :ended)';
  const counter = slotOf(input.window);
  const remove = `REMOVE ${COUNTERS.filter((name) => name !== counter).join(', ')}`;
  for (const staleSlot of [false, true]) {
    try {
      const { Attributes } = await dynamo().send(
        new UpdateCommand({
          TableName: table,
          Key: { id: input.userId },
          UpdateExpression: staleSlot
            ? `SET #c = :claim, orderWindow = :w, #n = :one ${remove}`
            : `SET #c = :claim, orderWindow = :w, #n = if_not_exists(#n, :zero) + :one ${remove}`,
          ConditionExpression: `${live.condition} AND ${slot} AND ${
            staleSlot ? 'orderWindow <> :w' : '(attribute_not_exists(#n) OR (orderWindow = :w AND #n < :cap))'
          }`,
          ExpressionAttributeNames: { '#c': claimAttribute(input.planId), '#n': counter },
          ExpressionAttributeValues: {
            ':claim': input.claim,
            ':w': input.window,
            ':one': 1,
            ...live.values,
            ...(staleSlot ? {} : { ':cap': input.cap, ':zero': 0 }),
            ...(input.replacing ? { ':held': input.replacing.outTradeNo } : { ':ended': input.endedBefore }),
          },
          ReturnValues: 'ALL_NEW',
          ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
        }),
      );
      return { kind: 'claimed', user: toUserRecord(Attributes) as UserRecord };
    } catch (error) {
      if (!(error instanceof ConditionalCheckFailedException)) throw error;
      if (!error.Item) return { kind: 'no_user' };
      const old = unmarshall(error.Item) as Record<string, unknown>;
      if (Number(old.sessionVersion ?? 0) !== input.sessionVersion) return { kind: 'no_user' };
      const held = old[claimAttribute(input.planId)] as OrderClaim | undefined;
      const blocking = held !== undefined && held.claimedAt > input.endedBefore;
      if (input.replacing ? held?.outTradeNo !== input.replacing.outTradeNo : blocking) {
        return { kind: 'held', claim: held };
      }
      if (old.orderWindow === input.window && Number(old[counter] ?? 0) >= input.cap)
        return { kind: 'capped' };
      // Only a slot left by a window ORDER_SLOTS hours back is worth the second attempt.
      if (staleSlot || old.orderWindow === input.window || old[counter] === undefined) {
        return { kind: 'held', claim: held };
      }
    }
  }
  return { kind: 'held', claim: undefined };
}
