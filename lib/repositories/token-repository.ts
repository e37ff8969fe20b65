import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import { GetCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { dynamo } from '#lib/clients/dynamodb';

/**
 * The shared WeChat credentials (one access_token per AppID, one jsapi_ticket per official account), kept in the
 * users table under `id = "access_token#<appid>"` / `"jsapi_ticket#<appid>"` so that every Lambda uses the same
 * one. An item holds the value, when to refresh and when it expires, a revision (+1 per stored value), and the
 * refresh lease (owner, until when). Times are epoch milliseconds (UTC).
 */

export type CredentialKind = 'access_token' | 'jsapi_ticket';

/** A credential item as stored; `value` is absent until the first refresh stores one. */
export interface StoredCredential {
  value?: string;
  /** Refresh from here on (ahead of expiry), epoch ms. */
  refreshAt?: number;
  /** WeChat stops accepting it here, epoch ms. */
  expiresAt?: number;
  /** Increments with every stored value; absent before the first. */
  rev?: number;
  leaseOwner?: string;
  /** The refresh lease ends here, epoch ms (a crashed holder blocks nobody past it). */
  leaseUntil?: number;
}

const key = (kind: CredentialKind, appId: string) => ({ id: `${kind}#${appId}` });

/** The stored credential (strongly consistent read); undefined before anyone stored or leased one. */
export async function readCredential(
  table: string,
  kind: CredentialKind,
  appId: string,
): Promise<StoredCredential | undefined> {
  const { Item } = await dynamo().send(
    new GetCommand({ TableName: table, Key: key(kind, appId), ConsistentRead: true }),
  );
  if (!Item) return undefined;
  const { value, refreshAt, expiresAt, rev, leaseOwner, leaseUntil } = Item;
  return { value, refreshAt, expiresAt, rev, leaseOwner, leaseUntil } as StoredCredential;
}

/**
 * Takes the refresh lease until `until` in one conditional UpdateItem: only while no live lease is held (none,
 * or one that ended before `now`) and the stored revision is still `seenRev` (undefined: nothing stored yet), so a
 * caller that read before someone else refreshed does not refresh again. True when taken.
 */
export async function acquireLease(
  table: string,
  kind: CredentialKind,
  appId: string,
  input: { owner: string; seenRev: number | undefined; now: number; until: number },
): Promise<boolean> {
  const revision = input.seenRev === undefined ? 'attribute_not_exists(rev)' : 'rev = :rev';
  try {
    await dynamo().send(
      new UpdateCommand({
        TableName: table,
        Key: key(kind, appId),
        UpdateExpression: 'SET leaseOwner = :owner, leaseUntil = :until',
        ConditionExpression: `${revision} AND (attribute_not_exists(leaseUntil) OR leaseUntil < :now)`,
        ExpressionAttributeValues: {
          ':owner': input.owner,
          ':until': input.until,
          ':now': input.now,
          ...(input.seenRev === undefined ? {} : { ':rev': input.seenRev }),
        },
      }),
    );
    return true;
  } catch (error) {
    if (error instanceof ConditionalCheckFailedException) return false;
    throw error;
  }
}

/**
 * Stores a fresh value and ends the lease, while `owner` still holds it (false otherwise: the lease ran out and
 * someone else took it; nothing written).
 */
export async function storeCredential(
  table: string,
  kind: CredentialKind,
  appId: string,
  input: { owner: string; value: string; refreshAt: number; expiresAt: number },
): Promise<boolean> {
  try {
    await dynamo().send(
      new UpdateCommand({
        TableName: table,
        Key: key(kind, appId),
        UpdateExpression:
          'SET #v = :value, refreshAt = :refreshAt, expiresAt = :expiresAt, rev = if_not_exists(rev, :zero) + :one ' +
          'REMOVE leaseOwner, leaseUntil',
        ConditionExpression: 'leaseOwner = :owner',
        ExpressionAttributeNames: { '#v': 'value' },
        ExpressionAttributeValues: {
          ':owner': input.owner,
          ':value': input.value,
          ':refreshAt': input.refreshAt,
          ':expiresAt': input.expiresAt,
          ':zero': 0,
          ':one': 1,
        },
      }),
    );
    return true;
  } catch (error) {
    if (error instanceof ConditionalCheckFailedException) return false;
    throw error;
  }
}

/** Gives the lease up early (the refresh failed) if `owner` still holds it; otherwise does nothing. */
export async function releaseLease(
  table: string,
  kind: CredentialKind,
  appId: string,
  owner: string,
): Promise<void> {
  try {
    await dynamo().send(
      new UpdateCommand({
        TableName: table,
        Key: key(kind, appId),
        UpdateExpression: 'REMOVE leaseOwner, leaseUntil',
        ConditionExpression: 'leaseOwner = :owner',
        ExpressionAttributeValues: { ':owner': owner },
      }),
    );
  } catch (error) {
    if (!(error instanceof ConditionalCheckFailedException)) throw error;
  }
}
