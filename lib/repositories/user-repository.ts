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
