import { DynamoDBDocumentClient, GetCommand, PutCommand, TransactWriteCommand } from '@aws-sdk/lib-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { handler } from '#functions/pay-notify';
import { resetConfigCache } from '#lib/config';
import { context, httpEvent } from '#local/fixtures/events';
import { v2NotifyXml } from '#local/fixtures/notify';

const ddb = mockClient(DynamoDBDocumentClient);

const order = {
  outTradeNo: 'M20261121080000abcdefABCDEF',
  userId: 'uAAAAAAAAAAAAAAAAAAAAAA',
  openid: 'oSandboxOpenid000000',
  planId: 'monthly',
  description: '会员-月度会员',
  totalFee: 1800,
  status: 'PENDING',
  payVersion: 'v2',
  clientIp: '203.0.113.7',
  createdAt: '2026-11-21T08:00:00.000Z',
  timeExpire: '2026-11-21T10:00:00.000Z',
};
const user = { id: order.userId, openid: order.openid, role: 0, version: 3 };

function notifyEvent(body: string) {
  return httpEvent({ method: 'POST', path: '/wechat/notify', body, headers: { 'content-type': 'text/xml' } });
}

const WRITES = ['PutCommand', 'UpdateCommand', 'DeleteCommand', 'TransactWriteCommand', 'BatchWriteCommand'];
const writes = () => ddb.calls().filter((call) => WRITES.includes(call.args[0].constructor.name));

describe('pay-notify handler (v2)', () => {
  beforeEach(() => {
    resetConfigCache();
    ddb.reset();
    ddb.on(GetCommand, { Key: { outTradeNo: order.outTradeNo } }).resolves({ Item: order });
    ddb.on(GetCommand, { Key: { id: user.id } }).resolves({ Item: user });
    ddb.on(TransactWriteCommand).resolves({});
  });
  afterEach(() => ddb.reset());

  it('credits a first notify with exactly one TransactWriteItems and nothing else written', async () => {
    // Act
    const result = await handler(
      notifyEvent(v2NotifyXml({ outTradeNo: order.outTradeNo, totalFee: 1800 })),
      context,
    );
    // Assess
    expect(result.body).toContain('<return_code><![CDATA[SUCCESS]]></return_code>');
    expect(writes()).toHaveLength(1);
    const transact = ddb.commandCalls(TransactWriteCommand);
    expect(transact).toHaveLength(1);
    const items = transact[0]?.args[0].input.TransactItems ?? [];
    expect(items).toHaveLength(2);
    expect(items[0]?.Update?.ConditionExpression).toBe('#s = :pending AND totalFee = :fee');
    expect(items[0]?.Update?.ExpressionAttributeValues?.[':fee']).toBe(1800);
    expect(items[1]?.Update?.Key).toEqual({ id: user.id });
    expect(items[1]?.Update?.ExpressionAttributeValues?.[':version']).toBe(3);
  });

  it('makes no DynamoDB call at all when the sign is wrong', async () => {
    // Act
    const result = await handler(
      notifyEvent(v2NotifyXml({ outTradeNo: order.outTradeNo, totalFee: 1800, key: 'x'.repeat(32) })),
      context,
    );
    // Assess
    expect(result.body).toContain('<return_code><![CDATA[FAIL]]></return_code>');
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
    expect(result.body).toContain('<return_code><![CDATA[SUCCESS]]></return_code>');
    expect(writes()).toHaveLength(1);
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
    expect(result.body).toContain('<return_code><![CDATA[FAIL]]></return_code>');
    expect(ddb.commandCalls(TransactWriteCommand)).toHaveLength(0);
  });

  it('decodes a base64-flagged body before verifying it', async () => {
    // Prepare
    const xml = v2NotifyXml({ outTradeNo: order.outTradeNo, totalFee: 1800 });
    const event = { ...notifyEvent(Buffer.from(xml).toString('base64')), isBase64Encoded: true };
    // Act
    const result = await handler(event, context);
    // Assess
    expect(result.body).toContain('<return_code><![CDATA[SUCCESS]]></return_code>');
    expect(ddb.commandCalls(TransactWriteCommand)).toHaveLength(1);
  });
});
