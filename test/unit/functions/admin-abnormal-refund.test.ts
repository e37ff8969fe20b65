import { DynamoDBDocumentClient, GetCommand } from '@aws-sdk/lib-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { handler } from '#functions/admin-abnormal-refund';
import { resetConfigCache } from '#lib/config';
import { refundKey } from '#lib/repositories/refund-repository';
import { context, envelope, httpEvent } from '#local/fixtures/events';

const ddb = mockClient(DynamoDBDocumentClient);

function apply(outRefundNo: string, body: unknown) {
  return handler(
    httpEvent({
      method: 'POST',
      path: `/admin/refunds/${outRefundNo}/apply-abnormal`,
      pathParameters: { outRefundNo },
      body: body as object,
    }),
    context,
  );
}

describe('admin-abnormal-refund handler', () => {
  const fetchSpy = vi.spyOn(globalThis, 'fetch');

  beforeEach(() => {
    resetConfigCache();
    ddb.reset();
    fetchSpy.mockClear();
  });
  afterEach(() => ddb.reset());

  it('answers 400 VALIDATION_ERROR for a bad body, with no read, no write and no WeChat call', async () => {
    // Prepare
    const bodies = [
      {},
      { type: 'CASH' },
      { type: 'USER_BANK_CARD', bankType: 'ICBC_DEBIT', realName: '张三' },
      { type: 'USER_BANK_CARD', bankType: 'ICBC_DEBIT', bankAccount: 'abc', realName: '张三' },
      'not json',
    ];
    // Act
    const results = await Promise.all(bodies.map((body) => apply('R1', body)));
    // Assess
    for (const result of results) {
      expect(result.statusCode).toBe(400);
      expect(envelope(result)).toMatchObject({ success: false });
    }
    expect(results.slice(0, 4).map((result) => envelope(result).code)).toEqual([
      'VALIDATION_ERROR',
      'VALIDATION_ERROR',
      'VALIDATION_ERROR',
      'VALIDATION_ERROR',
    ]);
    expect(ddb.calls()).toHaveLength(0);
    expect(fetchSpy).not.toHaveBeenCalled();
  });

  it('answers 404 REFUND_NOT_FOUND for an unknown refund, and 409 ABNORMAL_REFUND_V3_ONLY for a v2 one', async () => {
    // Prepare
    ddb.on(GetCommand).resolves({});
    ddb.on(GetCommand, { Key: { outTradeNo: refundKey('R2') } }).resolves({
      Item: {
        outTradeNo: refundKey('R2'),
        kind: 'refund',
        outRefundNo: 'R2',
        refundOf: 'M20261121080000abcdefABCDEF',
        amount: 600,
        totalFee: 1800,
        status: 'ABNORMAL',
        refundId: '50300908092018010222000000000',
        payVersion: 'v2',
        createdAt: '2026-11-21T08:05:00.000Z',
      },
    });
    // Act
    const unknown = await apply('R1', { type: 'MERCHANT_BANK_CARD' });
    const v2 = await apply('R2', { type: 'MERCHANT_BANK_CARD' });
    // Assess
    expect(unknown.statusCode).toBe(404);
    expect(envelope(unknown)).toMatchObject({ success: false, code: 'REFUND_NOT_FOUND' });
    expect(v2.statusCode).toBe(409);
    expect(envelope(v2)).toMatchObject({ success: false, code: 'ABNORMAL_REFUND_V3_ONLY' });
    expect(envelope(v2).message).toContain('商户平台');
    expect(fetchSpy).not.toHaveBeenCalled();
  });
});
