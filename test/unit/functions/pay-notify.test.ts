import { GetParametersCommand } from '@aws-sdk/client-ssm';
import { DynamoDBDocumentClient, PutCommand, TransactWriteCommand } from '@aws-sdk/lib-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, beforeEach, describe, expect, it, type Mock, vi } from 'vitest';
import { handler } from '#functions/pay-notify';
import { resetConfigCache } from '#lib/config';
import { context, httpEvent } from '#local/fixtures/events';
import { v2NotifyXml } from '#local/fixtures/notify';
import { anOrder, aUser } from '#test/helpers/builders';
import { storeItems, writesTo } from '#test/helpers/dynamo';
import {
  expectNamedNotShown,
  MALFORMED_SECRETS,
  SSM_FAILURES,
  sdkError,
  secretsFromFakeSsm,
  serveMalformedSecret,
  ssmAnswer,
} from '#test/helpers/ssm-answers';

const ddb = mockClient(DynamoDBDocumentClient);

const SUCCESS = '<return_code><![CDATA[SUCCESS]]></return_code>';
const FAIL = '<return_code><![CDATA[FAIL]]></return_code>';
const user = aUser({ version: 3 });
const order = anOrder({ userId: user.id });

function notifyEvent(body = v2NotifyXml({ outTradeNo: order.outTradeNo, totalFee: order.totalFee })) {
  return httpEvent({ method: 'POST', path: '/wechat/notify', body, headers: { 'content-type': 'text/xml' } });
}

beforeEach(() => {
  resetConfigCache();
  ddb.reset();
  storeItems(ddb, { orders: [order], users: [user] });
  ddb.on(TransactWriteCommand).resolves({});
});
afterEach(() => ddb.reset());

describe('pay-notify handler (v2)', () => {
  it('credits a first notify with exactly one TransactWriteItems and nothing else written', async () => {
    // Act
    const result = await handler(notifyEvent(), context);
    // Assess (the transaction's exact shape: test/unit/lib/repositories/order-repository.test.ts)
    expect(result.body).toContain(SUCCESS);
    expect(writesTo(ddb)).toEqual(['TransactWriteCommand']);
    const items = ddb.commandCalls(TransactWriteCommand)[0]?.args[0].input.TransactItems ?? [];
    expect(items).toHaveLength(2);
  });

  it('makes no DynamoDB call at all when the sign is wrong', async () => {
    // Act
    const result = await handler(
      notifyEvent(v2NotifyXml({ outTradeNo: order.outTradeNo, totalFee: 1800, key: 'x'.repeat(32) })),
      context,
    );
    // Assess
    expect(result.body).toContain(FAIL);
    expect(ddb.calls()).toHaveLength(0);
  });

  it('credits nothing when the amount differs, and acknowledges once the exception is stored', async () => {
    // Prepare
    ddb.on(PutCommand).resolves({});
    // Act
    const result = await handler(
      notifyEvent(v2NotifyXml({ outTradeNo: order.outTradeNo, totalFee: 1 })),
      context,
    );
    // Assess: one conditional PutItem of the exception, no transaction
    expect(result.body).toContain(SUCCESS);
    expect(writesTo(ddb)).toEqual(['PutCommand']);
    const put = ddb.commandCalls(PutCommand)[0]?.args[0].input;
    expect(put?.ConditionExpression).toBe('attribute_not_exists(outTradeNo)');
    expect(put?.Item).toMatchObject({
      outTradeNo: `EXCEPTION#${order.outTradeNo}#${put?.Item?.transactionId}`,
      reason: 'amount_mismatch',
      orderFee: 1800,
      reportedFee: 1,
      source: 'notify-v2',
    });
  });

  it('answers FAIL (WeChat retries) when the exception cannot be stored', async () => {
    // Prepare
    ddb.on(PutCommand).rejects(new Error('DynamoDB unavailable'));
    // Act
    const result = await handler(
      notifyEvent(v2NotifyXml({ outTradeNo: order.outTradeNo, totalFee: 1 })),
      context,
    );
    // Assess
    expect(result.body).toContain(FAIL);
    expect(ddb.commandCalls(TransactWriteCommand)).toHaveLength(0);
  });

  it('decodes a base64-flagged body before verifying it', async () => {
    // Prepare
    const xml = v2NotifyXml({ outTradeNo: order.outTradeNo, totalFee: 1800 });
    const event = { ...notifyEvent(Buffer.from(xml).toString('base64')), isBase64Encoded: true };
    // Act
    const result = await handler(event, context);
    // Assess
    expect(result.body).toContain(SUCCESS);
    expect(ddb.commandCalls(TransactWriteCommand)).toHaveLength(1);
  });
});

describe('pay-notify handler when its configuration fails (research/reliability.md §3.2 F17, F18)', () => {
  const ssm = secretsFromFakeSsm();
  let fetchMock: Mock<typeof fetch>;

  beforeEach(() => {
    fetchMock = vi.fn<typeof fetch>(async () => new Response('unexpected', { status: 500 }));
    vi.stubGlobal('fetch', fetchMock);
  });
  afterEach(() => {
    vi.unstubAllGlobals();
    vi.restoreAllMocks();
  });

  it.each(SSM_FAILURES)(
    'answers the notify 500 FAIL with 0 DynamoDB calls on %s, and the next invocation reads SSM again and credits',
    async (name) => {
      // Prepare
      ssm.on(GetParametersCommand).rejectsOnce(sdkError(name)).resolves(ssmAnswer());
      // Act
      const failed = await handler(notifyEvent(), context);
      // Assess: WeChat retries; nothing was read or written
      expect(failed.statusCode).toBe(500);
      expect(failed.body).toContain('FAIL');
      expect(failed.body).not.toContain(SUCCESS);
      expect(ddb.calls()).toHaveLength(0);
      // Act: WeChat's redelivery lands on the same (warm) container
      const retried = await handler(notifyEvent(), context);
      // Assess
      expect(retried.statusCode).toBe(200);
      expect(retried.body).toContain(SUCCESS);
      expect(ssm.commandCalls(GetParametersCommand)).toHaveLength(2);
      expect(writesTo(ddb)).toEqual(['TransactWriteCommand']);
    },
  );

  it.each(MALFORMED_SECRETS)(
    'fails closed on %s (%s): notify 500 FAIL, nothing written, the error names %s but not the value',
    async (_name, version, parameter, value) => {
      // Prepare
      const logged = serveMalformedSecret(ssm, version, parameter, value);
      // Act
      const notified = await handler(notifyEvent(), context);
      // Assess: nothing acknowledged, nothing written, WeChat never called
      expect(notified.statusCode).toBe(500);
      expect(notified.body).not.toContain(SUCCESS);
      expect(ddb.calls()).toHaveLength(0);
      expect(fetchMock).not.toHaveBeenCalled();
      expectNamedNotShown(logged, parameter, value, notified.body);
    },
  );
});
