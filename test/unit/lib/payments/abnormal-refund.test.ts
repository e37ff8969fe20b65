import { ConditionalCheckFailedException, TransactionCanceledException } from '@aws-sdk/client-dynamodb';
import {
  DynamoDBDocumentClient,
  GetCommand,
  TransactWriteCommand,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import { marshall } from '@aws-sdk/util-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { WechatPayV2 } from '#lib/clients/wechat-pay-v2';
import { type Config, loadConfig } from '#lib/config';
import { type ConflictError, NotFoundError, UpstreamError, ValidationError } from '#lib/errors';
import { AbnormalRefundBody, applyAbnormalRefund } from '#lib/payments/abnormal-refund';
import { applyRefundReport } from '#lib/payments/refunds';
import { type RefundRecord, refundKey } from '#lib/repositories/refund-repository';
import { validate } from '#lib/validation';
import { anOrder, aUser } from '#test/helpers/builders';
import { FakePaymentProvider } from '#test/helpers/fake-payment-provider';
import { forbidInLogs } from '#test/helpers/log-sink';
import { rejection, thrown } from '#test/helpers/outcomes';

const ddb = mockClient(DynamoDBDocumentClient);
const AT = new Date('2026-11-21T08:05:00.000Z');
const LATER = new Date('2026-11-22T09:00:00.000Z');
const user = aUser({ version: 4, role: 1, membershipExpiredAt: '2027-01-21T08:05:00.000Z' });
const paid = anOrder({ userId: user.id, status: 'PAID', transactionId: '4200000215201811190261405420' });
const ACCOUNT = '6222020200112233445';
const NAME = '张三';
const USER_CARD = {
  type: 'USER_BANK_CARD',
  bankType: 'ICBC_DEBIT',
  bankAccount: ACCOUNT,
  realName: NAME,
} as const;
let config: Config;

function aRefund(overrides: Partial<RefundRecord> = {}): RefundRecord {
  return {
    outTradeNo: refundKey('R1'),
    kind: 'refund',
    outRefundNo: 'R1',
    refundOf: paid.outTradeNo,
    amount: 600,
    totalFee: 1800,
    status: 'ABNORMAL',
    refundId: '50300908092018010222000000000',
    payVersion: 'v3',
    createdAt: AT.toISOString(),
    endedAt: AT.toISOString(),
    reconcileAt: AT.toISOString(),
    ...overrides,
  };
}

/** Answers reads of the order, the user and `refund` by key. */
function store(refund?: RefundRecord): void {
  ddb.on(GetCommand).resolves({});
  ddb.on(GetCommand, { Key: { outTradeNo: paid.outTradeNo } }).resolves({ Item: paid });
  ddb.on(GetCommand, { Key: { id: user.id } }).resolves({ Item: user });
  if (refund) ddb.on(GetCommand, { Key: { outTradeNo: refund.outTradeNo } }).resolves({ Item: refund });
}

const writes = () => [...ddb.commandCalls(UpdateCommand), ...ddb.commandCalls(TransactWriteCommand)];

beforeAll(async () => {
  config = await loadConfig();
});

beforeEach(() => ddb.reset());

describe('AbnormalRefundBody', () => {
  it('accepts MERCHANT_BANK_CARD alone and USER_BANK_CARD with its three fields (the name trimmed)', () => {
    // Act
    const merchant = validate(AbnormalRefundBody, { type: 'MERCHANT_BANK_CARD' });
    const userCard = validate(AbnormalRefundBody, { ...USER_CARD, realName: ` ${NAME} ` });
    // Assess
    expect(merchant).toEqual({ type: 'MERCHANT_BANK_CARD' });
    expect(userCard).toEqual(USER_CARD);
  });

  it('refuses a missing or unknown type, missing bank fields and malformed ones, naming the field', () => {
    // Prepare
    const cases: [unknown, string, string][] = [
      [{}, 'type', 'REQUIRED'],
      [{ type: 'CASH' }, 'type', 'INVALID_VALUE'],
      [[], 'type', 'REQUIRED'],
      [{ type: 'USER_BANK_CARD' }, 'bankType', 'REQUIRED'],
      [{ ...USER_CARD, bankType: 'icbc debit' }, 'bankType', 'INVALID_FORMAT'],
      [{ ...USER_CARD, bankAccount: '6222-0202' }, 'bankAccount', 'INVALID_FORMAT'],
      [{ ...USER_CARD, bankAccount: 62220202 }, 'bankAccount', 'INVALID_TYPE'],
      [{ ...USER_CARD, realName: '   ' }, 'realName', 'TOO_SHORT'],
      [{ ...USER_CARD, realName: 'x'.repeat(65) }, 'realName', 'TOO_LONG'],
      [{ ...USER_CARD, realName: '张\n三' }, 'realName', 'INVALID_VALUE'],
    ];
    // Act
    const refused = cases.map(
      ([body]) => thrown(() => validate(AbnormalRefundBody, body)) as ValidationError,
    );
    // Assess
    refused.forEach((error, index) => {
      const [, field, code] = cases[index] as [unknown, string, string];
      expect(error).toBeInstanceOf(ValidationError);
      expect(error.errors[0]).toEqual({ field, code });
    });
  });
});

describe('applyAbnormalRefund', () => {
  it('re-applies at WeChat by refund_id, then moves ABNORMAL → PROCESSING conditioned, recording when and which type only', async () => {
    // Prepare
    forbidInLogs(ACCOUNT, NAME);
    store(aRefund());
    ddb.on(UpdateCommand).resolves({});
    const provider = new FakePaymentProvider('v3');
    // Act
    const view = await applyAbnormalRefund(config, provider, 'R1', USER_CARD, () => LATER);
    // Assess
    expect(provider.abnormalRefunds).toEqual([
      {
        refundId: '50300908092018010222000000000',
        outRefundNo: 'R1',
        type: 'USER_BANK_CARD',
        bankType: 'ICBC_DEBIT',
        bankAccount: ACCOUNT,
        realName: NAME,
      },
    ]);
    const [update] = ddb.commandCalls(UpdateCommand);
    const input = update?.args[0].input;
    expect(input?.Key).toEqual({ outTradeNo: 'REFUND#R1' });
    expect(input?.ConditionExpression).toBe('#s = :abnormal');
    expect(input?.ExpressionAttributeValues).toMatchObject({
      ':processing': 'PROCESSING',
      ':abnormal': 'ABNORMAL',
      ':one': [{ at: LATER.toISOString(), type: 'USER_BANK_CARD' }],
      ':shard': 'REFUND',
      ':recheck': '2026-11-22T09:01:00.000Z',
    });
    const everything = JSON.stringify(ddb.calls().map((call) => call.args[0].input));
    expect(everything).not.toContain(ACCOUNT);
    expect(everything).not.toContain(NAME);
    expect(view).toEqual({
      outRefundNo: 'R1',
      outTradeNo: paid.outTradeNo,
      amount: 600,
      status: 'PROCESSING',
      reapplications: [{ at: LATER.toISOString(), type: 'USER_BANK_CARD' }],
    });
  });

  it('sends MERCHANT_BANK_CARD without bank fields and appends to earlier re-applications', async () => {
    // Prepare
    const earlier = { at: AT.toISOString(), type: 'USER_BANK_CARD' as const };
    store(aRefund({ reapplications: [earlier] }));
    ddb.on(UpdateCommand).resolves({});
    const provider = new FakePaymentProvider('v3');
    // Act
    const view = await applyAbnormalRefund(
      config,
      provider,
      'R1',
      { type: 'MERCHANT_BANK_CARD' },
      () => LATER,
    );
    // Assess
    expect(provider.abnormalRefunds).toEqual([
      { refundId: '50300908092018010222000000000', outRefundNo: 'R1', type: 'MERCHANT_BANK_CARD' },
    ]);
    expect(view.reapplications).toEqual([earlier, { at: LATER.toISOString(), type: 'MERCHANT_BANK_CARD' }]);
  });

  it('404 for an unknown or malformed out_refund_no; 409 for any status but ABNORMAL or without refund_id: no WeChat call, no write', async () => {
    // Prepare
    const provider = new FakePaymentProvider('v3');
    const attempts: [RefundRecord | undefined, string][] = [
      [undefined, 'R1'],
      [undefined, 'R 1'],
      [aRefund({ status: 'PROCESSING' }), 'R1'],
      [aRefund({ status: 'SUCCESS' }), 'R1'],
      [aRefund({ status: 'CLOSED' }), 'R1'],
      [aRefund({ refundId: '' }), 'R1'],
    ];
    // Act
    const errors: unknown[] = [];
    for (const [refund, outRefundNo] of attempts) {
      ddb.reset();
      store(refund);
      errors.push(await rejection(applyAbnormalRefund(config, provider, outRefundNo, USER_CARD)));
      expect(writes()).toHaveLength(0);
    }
    // Assess
    expect(errors.map((error) => [(error as ConflictError).status, (error as ConflictError).code])).toEqual([
      [404, 'REFUND_NOT_FOUND'],
      [404, 'REFUND_NOT_FOUND'],
      [409, 'REFUND_NOT_ABNORMAL'],
      [409, 'REFUND_NOT_ABNORMAL'],
      [409, 'REFUND_NOT_ABNORMAL'],
      [409, 'REFUND_ID_UNKNOWN'],
    ]);
    expect(errors[0]).toBeInstanceOf(NotFoundError);
    expect(provider.abnormalRefunds).toEqual([]);
  });

  it('a v2 refund gets 409 ABNORMAL_REFUND_V3_ONLY from the v2 client: no WeChat call, no write', async () => {
    // Prepare
    store(aRefund({ payVersion: 'v2' }));
    const v2 = new WechatPayV2({
      appId: 'wx5a1d0c0ffee0d0e1',
      mchId: '1900000109',
      mchKey: 'k'.repeat(32),
      payApiBase: 'http://127.0.0.1:1',
      notifyUrl: 'https://merchant.example.com/wechat/notify',
      v2SignType: 'MD5',
    });
    // Act
    const error = await rejection(applyAbnormalRefund(config, v2, 'R1', { type: 'MERCHANT_BANK_CARD' }));
    ddb.reset();
    store(aRefund({ payVersion: 'v2', refundId: undefined }));
    const withoutId = await rejection(applyAbnormalRefund(config, v2, 'R1', { type: 'MERCHANT_BANK_CARD' }));
    // Assess
    expect(error).toMatchObject({ status: 409, code: 'ABNORMAL_REFUND_V3_ONLY' });
    expect(withoutId).toMatchObject({ status: 409, code: 'ABNORMAL_REFUND_V3_ONLY' });
    expect(writes()).toHaveLength(0);
  });

  it('writes nothing when WeChat refuses the re-application', async () => {
    // Prepare
    store(aRefund());
    const refusal = new UpstreamError(
      '微信支付拒绝重新发起退款（INVALID_REQUEST）',
      'ABNORMAL_REFUND_REFUSED',
    );
    const provider = new FakePaymentProvider('v3').answerAbnormalRefund(refusal);
    // Act
    const error = await rejection(
      applyAbnormalRefund(config, provider, 'R1', { type: 'MERCHANT_BANK_CARD' }),
    );
    // Assess
    expect(error).toBe(refusal);
    expect(writes()).toHaveLength(0);
  });
});

/**
 * A stateful DynamoDB behind the SDK mock for the race: the refund, order and user items, with the conditions the
 * re-application and the SUCCESS transaction are written with (the refund's status read, the order's refundedFee).
 * `hooks.beforeTransact` runs before each SUCCESS transaction is judged, `hooks.afterUpdate` after the re-application.
 */
function statefulTable(
  refund: RefundRecord,
  hooks: { beforeTransact?: () => Promise<void>; afterUpdate?: () => void } = {},
) {
  const items = new Map<string, Record<string, unknown>>([
    [refund.outTradeNo, { ...refund, reconcileShard: 'REFUND' }],
    [paid.outTradeNo, { ...paid }],
    [user.id, { ...user }],
  ]);
  let revocations = 0;
  const keyOf = (key: Record<string, unknown>) => String(key.outTradeNo ?? key.id);
  const stored = (key: Record<string, unknown>) => items.get(keyOf(key)) as Record<string, unknown>;
  const current = (item: Record<string, unknown>) => marshall(item, { removeUndefinedValues: true });
  ddb.on(GetCommand).callsFake(async (input) => {
    const item = items.get(keyOf(input.Key));
    return { Item: item ? structuredClone(item) : undefined };
  });
  ddb.on(UpdateCommand).callsFake(async (input) => {
    const values = input.ExpressionAttributeValues;
    const item = stored(input.Key);
    // The condition as the repository wrote it: a write without it would go through here too.
    if (input.ConditionExpression === '#s = :abnormal' && item.status !== values[':abnormal']) {
      throw new ConditionalCheckFailedException({
        message: 'The conditional request failed',
        $metadata: {},
        Item: current(item),
      });
    }
    item.status = values[':processing'];
    item.reapplications = [...((item.reapplications as unknown[]) ?? []), ...values[':one']];
    item.reconcileAt = values[':recheck'];
    hooks.afterUpdate?.();
  });
  ddb.on(TransactWriteCommand).callsFake(async (input) => {
    await hooks.beforeTransact?.();
    // biome-ignore lint/suspicious/noExplicitAny: the transaction items as the repository built them.
    const [refundItem, orderItem, userItem] = input.TransactItems.map((entry: any) => entry.Update);
    const storedRefund = stored(refundItem.Key);
    const storedOrder = stored(orderItem.Key);
    const refundOk =
      refundItem.ConditionExpression !== '#s = :from' ||
      storedRefund.status === refundItem.ExpressionAttributeValues[':from'];
    const orderOk = (storedOrder.refundedFee ?? 0) === orderItem.ExpressionAttributeValues[':old'];
    if (!refundOk || !orderOk) {
      throw new TransactionCanceledException({
        message: 'Transaction cancelled',
        $metadata: {},
        CancellationReasons: [
          refundOk ? { Code: 'None' } : { Code: 'ConditionalCheckFailed', Item: current(storedRefund) },
          { Code: orderOk ? 'None' : 'ConditionalCheckFailed' },
          { Code: 'None' },
        ],
      });
    }
    storedRefund.status = refundItem.ExpressionAttributeValues[':final'];
    storedOrder.refundedFee = orderItem.ExpressionAttributeValues[':fee'];
    storedOrder.revokedDays = orderItem.ExpressionAttributeValues[':days'];
    if (userItem) revocations++;
  });
  return { items, revocations: () => revocations };
}

/** A gate: `open()` lets every `wait()` through. */
function gate() {
  let open: () => void = () => {};
  const opened = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { open, wait: () => opened };
}

describe('a SUCCESS notify racing the re-application', () => {
  const success = {
    outRefundNo: 'R1',
    outTradeNo: paid.outTradeNo,
    status: 'SUCCESS' as const,
    refundId: '50300908092018010222000000000',
    refundFee: 600,
    successAt: LATER.toISOString(),
    via: 'notify-v3' as const,
  };

  it('revokes exactly once when the re-application commits between the notify’s read and its transaction', async () => {
    // Prepare: the notify's first transaction lets WeChat answer the re-application, then waits for its commit
    const notifyRead = gate();
    const moved = gate();
    let first = true;
    const table = statefulTable(aRefund(), {
      beforeTransact: async () => {
        if (!first) return;
        first = false;
        notifyRead.open();
        await moved.wait();
      },
      afterUpdate: moved.open,
    });
    const provider = new FakePaymentProvider('v3');
    const answer = provider.applyAbnormalRefund.bind(provider);
    provider.applyAbnormalRefund = async (request) => {
      await notifyRead.wait();
      return answer(request);
    };
    // Act
    const [outcome, view] = await Promise.all([
      applyRefundReport(config, success, () => LATER),
      applyAbnormalRefund(config, provider, 'R1', { type: 'MERCHANT_BANK_CARD' }, () => LATER),
    ]);
    // Assess: the SUCCESS conditioned on ABNORMAL was refused, its retry conditioned on PROCESSING committed
    const conditions = ddb
      .commandCalls(TransactWriteCommand)
      .map((call) => call.args[0].input.TransactItems?.[0]?.Update?.ExpressionAttributeValues?.[':from']);
    expect(conditions).toEqual(['ABNORMAL', 'PROCESSING']);
    expect(outcome).toBe('applied');
    expect(view.status).toBe('PROCESSING');
    expect(table.revocations()).toBe(1);
    expect(table.items.get('REFUND#R1')).toMatchObject({
      status: 'SUCCESS',
      reapplications: [{ at: LATER.toISOString(), type: 'MERCHANT_BANK_CARD' }],
    });
    expect(table.items.get(paid.outTradeNo)).toMatchObject({ refundedFee: 600, revokedDays: 10 });
  });

  it('revokes exactly once when the SUCCESS commits first: the re-application then finds it SUCCESS and moves nothing', async () => {
    // Prepare: WeChat answers the re-application only after the notify was applied
    const table = statefulTable(aRefund());
    const applied = gate();
    const provider = new FakePaymentProvider('v3');
    const answer = provider.applyAbnormalRefund.bind(provider);
    provider.applyAbnormalRefund = async (request) => {
      await applied.wait();
      return answer(request);
    };
    // Act
    const [outcome, view] = await Promise.all([
      applyRefundReport(config, success, () => LATER).finally(applied.open),
      applyAbnormalRefund(config, provider, 'R1', { type: 'MERCHANT_BANK_CARD' }, () => LATER),
    ]);
    const duplicate = await applyRefundReport(config, success, () => LATER);
    // Assess
    expect(outcome).toBe('applied');
    expect(duplicate).toBe('duplicate');
    expect(table.revocations()).toBe(1);
    expect(view).toMatchObject({ status: 'SUCCESS', reapplications: [] });
    expect(table.items.get('REFUND#R1')).toMatchObject({ status: 'SUCCESS' });
    expect(table.items.get(paid.outTradeNo)).toMatchObject({ refundedFee: 600, revokedDays: 10 });
  });

  it('after the re-application a SUCCESS is applied from PROCESSING once, and again is a duplicate', async () => {
    // Prepare
    const table = statefulTable(aRefund());
    await applyAbnormalRefund(
      config,
      new FakePaymentProvider('v3'),
      'R1',
      { type: 'MERCHANT_BANK_CARD' },
      () => LATER,
    );
    // Act
    const outcomes = await Promise.all([
      applyRefundReport(config, success, () => LATER),
      applyRefundReport(config, { ...success, via: 'refundquery-v3' }, () => LATER),
    ]);
    // Assess
    expect(outcomes.sort()).toEqual(['applied', 'duplicate']);
    expect(table.revocations()).toBe(1);
    expect(table.items.get('REFUND#R1')).toMatchObject({
      status: 'SUCCESS',
      reapplications: [{ at: LATER.toISOString(), type: 'MERCHANT_BANK_CARD' }],
    });
  });
});
