import {
  DynamoDBDocumentClient,
  QueryCommand,
  TransactWriteCommand,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { deleteAccount, deleteAccountForAdmin, signOut } from '#lib/account';
import { type Config, loadConfig } from '#lib/config';
import { ConflictError, NotFoundError, UnauthorizedError } from '#lib/errors';
import { anOrder, aUser, sessionOf } from '#test/helpers/builders';
import { conditionFailed, storeItems, transactionCanceled, writesTo } from '#test/helpers/dynamo';
import { FakePaymentProvider } from '#test/helpers/fake-payment-provider';

const ddb = mockClient(DynamoDBDocumentClient);
const user = aUser();
const paid = anOrder({ userId: user.id, outTradeNo: 'T20261121080000000000001', status: 'PAID' });
const pending = anOrder({ userId: user.id, outTradeNo: 'T20261121080000000000002' });
let config: Config;
let provider: FakePaymentProvider;

beforeAll(async () => {
  config = await loadConfig();
});

beforeEach(() => {
  ddb.reset();
  provider = new FakePaymentProvider('v2');
  storeItems(ddb, { orders: [paid, pending], users: [user] });
  ddb.on(QueryCommand).resolves({ Items: [pending, paid] });
  ddb.on(UpdateCommand).resolves({ Attributes: { ...pending, status: 'CLOSED' } });
  ddb.on(TransactWriteCommand).resolves({});
});

/** The out_trade_nos whose openid and payer IP were removed. */
function pseudonymised(): unknown[] {
  return ddb
    .commandCalls(UpdateCommand)
    .map((call) => call.args[0].input)
    .filter((input) => input.UpdateExpression === 'REMOVE openid, clientIp')
    .map((input) => input.Key?.outTradeNo);
}

describe('deleteAccount', () => {
  it('closes the PENDING order at WeChat, deletes user and link together, then pseudonymises every order', async () => {
    // Act
    await deleteAccount(config, [provider], user.id, 'user');

    // Assess
    expect(provider.closes).toEqual([pending.outTradeNo]);
    const [removal] = ddb.commandCalls(TransactWriteCommand).map((call) => call.args[0].input.TransactItems);
    expect(removal?.map((item) => item.Delete?.Key)).toEqual([
      { id: user.id },
      { id: `openid#${user.openid}` },
    ]);
    expect(removal?.[0]?.Delete?.ConditionExpression).toBe('version = :v');
    expect(pseudonymised()).toEqual([pending.outTradeNo, paid.outTradeNo]);
  });

  it('only pseudonymises the orders again when the user is already gone (a retry)', async () => {
    // Prepare
    storeItems(ddb, { orders: [paid] });

    // Act
    await deleteAccount(config, [provider], user.id, 'operator');

    // Assess
    expect(provider.closes).toEqual([]);
    expect(ddb.commandCalls(TransactWriteCommand)).toHaveLength(0);
    expect(pseudonymised()).toEqual([pending.outTradeNo, paid.outTradeNo]);
  });

  it('answers 409 ORDER_JUST_PAID and deletes nothing when a payment was credited meanwhile', async () => {
    // Prepare: the user's version moved between the read and the delete
    ddb.on(TransactWriteCommand).rejects(transactionCanceled('ConditionalCheckFailed', 'None'));

    // Act
    const error = await deleteAccount(config, [provider], user.id, 'user').catch((caught: unknown) => caught);

    // Assess
    expect(error).toBeInstanceOf(ConflictError);
    expect(error).toMatchObject({ status: 409, code: 'ORDER_JUST_PAID' });
    expect(pseudonymised()).toEqual([]);
  });

  it('answers 409 ORDER_JUST_PAID without deleting when WeChat says the PENDING order was paid', async () => {
    // Prepare: closing finds the order settled first (the conditional CLOSED write returns it PAID)
    ddb.on(UpdateCommand).rejects(conditionFailed({ ...pending, status: 'PAID' }));

    // Act
    const error = await deleteAccount(config, [provider], user.id, 'user').catch((caught: unknown) => caught);

    // Assess
    expect(error).toMatchObject({ status: 409, code: 'ORDER_JUST_PAID' });
    expect(ddb.commandCalls(TransactWriteCommand)).toHaveLength(0);
    expect(writesTo(ddb)).toEqual(['UpdateCommand']);
  });
});

describe('deleteAccountForAdmin', () => {
  it('refuses an id that is not a user id (an identity link key) with 404, reading nothing', async () => {
    // Act
    const error = await deleteAccountForAdmin(config, [provider], `openid#${user.openid}`).catch(
      (caught: unknown) => caught,
    );

    // Assess
    expect(error).toBeInstanceOf(NotFoundError);
    expect(ddb.calls()).toHaveLength(0);
  });
});

describe('signOut', () => {
  it('moves the user to the next session generation, conditioned on the caller’s', async () => {
    // Act
    await signOut(config, sessionOf({ ...user, sessionVersion: 2 }));

    // Assess
    expect(ddb.commandCalls(UpdateCommand)[0]?.args[0].input).toMatchObject({
      Key: { id: user.id },
      UpdateExpression: 'SET sessionVersion = :next',
      ExpressionAttributeValues: { ':sv': 2, ':next': 3 },
    });
  });

  it('answers 401 SESSION_REVOKED when the session already ended', async () => {
    // Prepare
    ddb.on(UpdateCommand).rejects(conditionFailed());

    // Act
    const error = await signOut(config, sessionOf(user)).catch((caught: unknown) => caught);

    // Assess
    expect(error).toBeInstanceOf(UnauthorizedError);
    expect(error).toMatchObject({ code: 'SESSION_REVOKED' });
  });
});
