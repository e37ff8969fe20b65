import { ConditionalCheckFailedException, TransactionCanceledException } from '@aws-sdk/client-dynamodb';
import { BatchGetCommand, type DynamoDBDocumentClient, GetCommand } from '@aws-sdk/lib-dynamodb';
import { marshall } from '@aws-sdk/util-dynamodb';
import type { AwsClientStub } from 'aws-sdk-client-mock';
import type { OrderRecord } from '#lib/repositories/order-repository';
import type { UserRecord } from '#lib/repositories/user-repository';

/** The DocumentClient faked at the SDK boundary with aws-sdk-client-mock. */
export type DynamoMock = AwsClientStub<DynamoDBDocumentClient>;

const WRITES = ['PutCommand', 'UpdateCommand', 'DeleteCommand', 'TransactWriteCommand', 'BatchWriteCommand'];

/** The command names of every write the fake received, in order. */
export function writesTo(ddb: DynamoMock): string[] {
  return ddb
    .calls()
    .map((call) => (call.args[0] as object).constructor.name)
    .filter((name) => WRITES.includes(name));
}

/** Answers strongly consistent reads of these orders and users by key (anything else reads as absent). */
export function storeItems(ddb: DynamoMock, items: { orders?: OrderRecord[]; users?: UserRecord[] }): void {
  ddb.on(GetCommand).resolves({});
  // BatchGetItem (an order and its user in one request): every key found among the stored items.
  ddb
    .on(BatchGetCommand)
    .callsFake(({ RequestItems }: { RequestItems: Record<string, { Keys: object[] }> }) => {
      const stored: object[] = [...(items.orders ?? []), ...(items.users ?? [])];
      const found = (key: object) =>
        stored.find((item) =>
          Object.entries(key).every(([name, value]) => item[name as keyof typeof item] === value),
        );
      return {
        Responses: Object.fromEntries(
          Object.entries(RequestItems).map(([table, { Keys }]) => [table, Keys.map(found).filter(Boolean)]),
        ),
      };
    });
  for (const order of items.orders ?? []) {
    ddb.on(GetCommand, { Key: { outTradeNo: order.outTradeNo } }).resolves({ Item: order });
  }
  for (const user of items.users ?? []) ddb.on(GetCommand, { Key: { id: user.id } }).resolves({ Item: user });
}

/** A failed condition, with the item as it is now when the request asked for ALL_OLD. */
export function conditionFailed(item?: object): ConditionalCheckFailedException {
  return new ConditionalCheckFailedException({
    message: 'The conditional request failed',
    $metadata: {},
    ...(item ? { Item: marshall(item, { removeUndefinedValues: true }) } : {}),
  });
}

type CancellationCode = 'None' | 'ConditionalCheckFailed' | 'TransactionConflict';

/**
 * A cancelled TransactWriteItems of the money transaction (item 0 the order, item 1 the user), with the
 * order as it is now when its condition failed and `order` is given.
 */
export function transactionCanceled(
  orderCode: CancellationCode,
  userCode: CancellationCode,
  order?: OrderRecord,
  user?: Record<string, unknown>,
): TransactionCanceledException {
  return new TransactionCanceledException({
    message: 'Transaction cancelled, please refer cancellation reasons for specific reasons',
    $metadata: { httpStatusCode: 400 },
    CancellationReasons: [
      { Code: orderCode, ...(order ? { Item: marshall(order, { removeUndefinedValues: true }) } : {}) },
      { Code: userCode, ...(user ? { Item: marshall(user, { removeUndefinedValues: true }) } : {}) },
    ],
  });
}
