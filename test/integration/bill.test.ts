/**
 * Issue 11, the daily bill: WeChat's trade bill (the sandbox's, built from what it processed) against our ledger,
 * v2 (downloadbill, GZIP) and v3 (tradebill → unsigned download_url, SHA-1 checked). A lost notify is credited
 * once through the order query + settle; a hand-made amount mismatch and a refund the bill lacks become payment
 * exceptions, once however often the bill runs; an empty day and a day WeChat is still making are reported so.
 * Against DynamoDB Local and the sandbox.
 */
import { DeleteCommand, GetCommand, PutCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { handler as adminBillHandler } from '#functions/admin-bill';
import { handler as createPaymentHandler } from '#functions/create-payment';
import { handler as dailyBillHandler } from '#functions/daily-bill';
import { dynamo } from '#lib/clients/dynamodb';
import { paymentProvider } from '#lib/clients/wechat-pay';
import { loadConfig, resetConfigCache } from '#lib/config';
import { previousChinaDay } from '#lib/payments/bill';
import { settleReport } from '#lib/payments/settle';
import { type BillReport, getBillReport, saveBillReport } from '#lib/repositories/bill-repository';
import { chinaDay } from '#lib/wechat-pay/bill';
import { lambdaContext } from '#local/fixtures/events';
import { exceptionsFor, invoke, sandboxCallCount, sandboxUrl, signInUser, storedUser } from './helpers';

async function sandbox(path: string, body: unknown): Promise<Record<string, unknown>> {
  const response = await fetch(`${sandboxUrl}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  expect(response.status).toBe(200);
  return (await response.json()) as Record<string, unknown>;
}

/**
 * A signed-in user's new order, paid at WeChat with its notify lost; `credited`: then settled here (through the
 * order query and the same exactly-once settle a notify takes; no API listens for notifies in this suite).
 */
async function paidOrder(credited: boolean) {
  const { token, user } = await signInUser();
  const created = await invoke(createPaymentHandler, {
    method: 'POST',
    path: '/wechat/pay',
    body: { planId: 'monthly' },
    token,
  });
  expect(created.status).toBe(200);
  const outTradeNo = created.data?.order.outTradeNo as string;
  const paid = await sandbox('/sandbox/pay', { outTradeNo, deliver: false });
  if (credited) {
    const config = await loadConfig();
    const query = await paymentProvider(config).queryOrder(outTradeNo);
    expect('report' in query && (await settleReport(config, query.report))).toBe('credited');
  }
  return { userId: user.id, outTradeNo, transactionId: paid.transactionId as string };
}

async function storedOrder(outTradeNo: string): Promise<Record<string, unknown> | undefined> {
  const { ordersTable } = await loadConfig();
  const { Item } = await dynamo().send(
    new GetCommand({ TableName: ordersTable, Key: { outTradeNo }, ConsistentRead: true }),
  );
  return Item;
}

/** The hand-made mismatch: our stored order's total_fee edited behind the ledger's back. */
async function editTotalFee(outTradeNo: string, totalFee: number): Promise<void> {
  const { ordersTable } = await loadConfig();
  await dynamo().send(
    new UpdateCommand({
      TableName: ordersTable,
      Key: { outTradeNo },
      UpdateExpression: 'SET totalFee = :fee',
      ExpressionAttributeValues: { ':fee': totalFee },
    }),
  );
}

/** A refund item as the refunds work stores it (orders table, REFUND#<out_refund_no>), SUCCESS today. */
async function putSuccessfulRefund(outRefundNo: string, refundOf: string, amount: number): Promise<void> {
  const { ordersTable } = await loadConfig();
  const now = new Date().toISOString();
  await dynamo().send(
    new PutCommand({
      TableName: ordersTable,
      Item: {
        outTradeNo: `REFUND#${outRefundNo}`,
        kind: 'refund',
        outRefundNo,
        refundOf,
        amount,
        status: 'SUCCESS',
        refundId: `5030${Date.now()}`,
        createdAt: now,
        successAt: now,
        ledgerDay: chinaDay(now),
      },
    }),
  );
}

async function adminBill(date: string) {
  return invoke(
    adminBillHandler,
    { method: 'GET', path: '/admin/bill', queryStringParameters: { date } },
    lambdaContext(29_000),
  );
}

type Report = {
  status: string;
  matched: number;
  paidNotCredited: { outTradeNo: string; outcome?: string; ourStatus: string }[];
  creditedNotInBill: { outTradeNo: string }[];
  amountMismatch: { outTradeNo: string; billFee: number; ourFee: number; kind: string }[];
  refundsNotInBill: { outRefundNo: string }[];
  differences: number;
  totals: { lines: number; paymentFee: number };
};

const today = () => chinaDay(new Date());

/** A stored report with no line and no difference (its date and status set by the test). */
const EMPTY_REPORT: Omit<BillReport, 'date' | 'status'> = {
  version: 'v2',
  checkedAt: '2026-11-30T03:00:00.000Z',
  matched: 0,
  otherApps: 0,
  paidNotCredited: [],
  creditedNotInBill: [],
  amountMismatch: [],
  refundsNotRecorded: [],
  refundsNotInBill: [],
  differences: 0,
  totals: { lines: 0, paymentFee: 0, refundFee: 0 },
};

describe.each([['v2'], ['v3']] as const)('the daily bill, WeChat Pay %s', (version) => {
  let previousVersion: string | undefined;
  beforeAll(() => {
    previousVersion = process.env.WECHAT_PAY_VERSION;
    process.env.WECHAT_PAY_VERSION = version;
    resetConfigCache();
  });
  afterAll(() => {
    process.env.WECHAT_PAY_VERSION = previousVersion;
    resetConfigCache();
  });

  it('matches a credited payment, credits a lost notify once, records an amount mismatch and a missing refund once', async () => {
    // Prepare
    const credited = await paidOrder(true);
    const lost = await paidOrder(false);
    const edited = await paidOrder(true);
    await editTotalFee(edited.outTradeNo, 1700);
    const outRefundNo = `RF${Date.now()}${version}`;
    await putSuccessfulRefund(outRefundNo, credited.outTradeNo, 600);
    const download = version === 'v2' ? '/pay/downloadbill' : '/v3/bill/tradebill';
    const downloadsBefore = await sandboxCallCount(download);
    expect(await storedOrder(lost.outTradeNo)).toMatchObject({ status: 'PENDING' });

    // Act
    const first = await adminBill(today());
    const membershipAfterFirst = (await storedUser(lost.userId))?.membershipExpiredAt;
    const second = await adminBill(today());

    // Assess
    expect(first.status).toBe(200);
    expect(await sandboxCallCount(download)).toBe(downloadsBefore + 2);
    const report = first.data?.report as Report;
    expect(report).toMatchObject({ status: 'done', version });
    // The bill is the sandbox's whole day (earlier suites paid too): look at this test's lines.
    expect(report.paidNotCredited).toContainEqual({
      outTradeNo: lost.outTradeNo,
      transactionId: lost.transactionId,
      billFee: 1800,
      ourStatus: 'PENDING',
      outcome: 'credited',
    });
    expect(report.amountMismatch).toContainEqual({
      kind: 'payment',
      outTradeNo: edited.outTradeNo,
      id: edited.transactionId,
      billFee: 1800,
      ourFee: 1700,
    });
    expect(report.refundsNotInBill).toContainEqual({
      outTradeNo: credited.outTradeNo,
      outRefundNo,
      ourFee: 600,
    });
    const mine = [credited, lost, edited].map((order) => order.outTradeNo);
    expect(report.creditedNotInBill.filter((entry) => mine.includes(entry.outTradeNo))).toEqual([]);
    expect(report.matched).toBeGreaterThanOrEqual(1);
    expect(report.differences).toBe(
      report.paidNotCredited.length +
        report.creditedNotInBill.length +
        report.amountMismatch.length +
        report.refundsNotInBill.length +
        (report as unknown as { refundsNotRecorded: unknown[] }).refundsNotRecorded.length,
    );

    // The lost notify: credited through the order query, once; on the second run it matches.
    expect(await storedOrder(lost.outTradeNo)).toMatchObject({
      status: 'PAID',
      transactionId: lost.transactionId,
      paidVia: `orderquery-${version}`,
      ledgerDay: today(),
    });
    expect((await storedUser(lost.userId))?.membershipExpiredAt).toBe(membershipAfterFirst);
    const again = second.data?.report as Report;
    expect(again.paidNotCredited.map((entry) => entry.outTradeNo)).not.toContain(lost.outTradeNo);

    // Every other difference: one exception each, however often the bill runs.
    expect(await exceptionsFor(edited.outTradeNo)).toEqual([
      expect.objectContaining({
        reason: 'bill_amount_mismatch',
        transactionId: edited.transactionId,
        orderFee: 1700,
        reportedFee: 1800,
        source: `bill-${version}`,
        billDate: today(),
      }),
    ]);
    expect(await exceptionsFor(credited.outTradeNo)).toEqual([
      expect.objectContaining({ reason: 'bill_refund_missing', outRefundNo, orderFee: 600 }),
    ]);
    expect(await exceptionsFor(lost.outTradeNo)).toEqual([]);

    // The report is stored.
    const stored = await getBillReport((await loadConfig()).ordersTable, today());
    expect(stored).toMatchObject({ date: today(), status: 'done', version, differences: again.differences });
  });

  it('reports a day without a bill as empty (NO_STATEMENT_EXIST), and stores it', async () => {
    // Act
    const result = await adminBill('2020-01-01');

    // Assess
    expect(result.status).toBe(200);
    expect(result.data?.report).toMatchObject({
      date: '2020-01-01',
      status: 'empty',
      matched: 0,
      differences: 0,
      totals: { lines: 0, paymentFee: 0, refundFee: 0 },
    });
    expect(await getBillReport((await loadConfig()).ordersTable, '2020-01-01')).toMatchObject({
      status: 'empty',
    });
  });
});

describe('the scheduled daily bill', () => {
  it('stores not_ready while WeChat makes the bill, checks it at the next run, then leaves a final day alone', async () => {
    // Prepare
    const yesterday = previousChinaDay(new Date());
    await sandbox('/sandbox/bills/creating', { date: yesterday, creating: true });
    const run = () => dailyBillHandler({}, lambdaContext(300_000));

    // Act
    const creating = await run();
    await sandbox('/sandbox/bills/creating', { date: yesterday, creating: false });
    const ready = await run();
    const before = await sandboxCallCount('/pay/downloadbill');
    const later = await run();

    // Assess
    expect(creating).toMatchObject({ date: yesterday, status: 'not_ready', differences: 0 });
    // Nothing was paid in the sandbox yesterday: NO_STATEMENT_EXIST.
    expect(ready).toMatchObject({ date: yesterday, status: 'empty' });
    expect(later).toEqual(ready);
    expect(await sandboxCallCount('/pay/downloadbill')).toBe(before);
  });
});

describe('the scheduled run backfills', () => {
  it('checks each of the 6 days before yesterday that has no final report, then never fetches a final day again', async () => {
    // Prepare: no report for yesterday and the 6 days before it, except one left not_ready and one done
    const { ordersTable } = await loadConfig();
    const now = new Date();
    const days = Array.from({ length: 7 }, (_, back) =>
      previousChinaDay(new Date(now.getTime() - back * 86_400_000)),
    );
    for (const day of days) {
      await dynamo().send(new DeleteCommand({ TableName: ordersTable, Key: { outTradeNo: `BILL#${day}` } }));
    }
    const done = { ...EMPTY_REPORT, date: days[5] as string, status: 'done' as const };
    await saveBillReport(ordersTable, done);
    await saveBillReport(ordersTable, { ...EMPTY_REPORT, date: days[3] as string, status: 'not_ready' });
    const downloads = () => sandboxCallCount('/pay/downloadbill');
    const before = await downloads();

    // Act
    const first = await dailyBillHandler({}, lambdaContext(300_000));
    const afterFirst = await downloads();
    const second = await dailyBillHandler({}, lambdaContext(300_000));

    // Assess: yesterday answered; every other day final; the done day untouched; a second run fetches nothing
    expect(first).toMatchObject({ date: days[0], status: 'empty' });
    expect(second).toEqual(first);
    const stored = await Promise.all(days.map((day) => getBillReport(ordersTable, day)));
    expect(stored.map((report) => report?.status)).toEqual([
      'empty',
      'empty',
      'empty',
      'empty',
      'empty',
      'done',
      'empty',
    ]);
    expect(stored[5]).toEqual(done);
    expect(afterFirst - before).toBe(6);
    expect(await downloads()).toBe(afterFirst);
  });
});

describe('GET /admin/bill', () => {
  it.each([
    [{}, 'INVALID_DATE'],
    [{ date: '2026-02-30' }, 'INVALID_DATE'],
    [{ date: '20261128' }, 'INVALID_DATE'],
    [{ date: '2999-01-01' }, 'FUTURE_DATE'],
  ])('refuses %j with 400 %s and calls no WeChat', async (query, code) => {
    // Prepare
    const before = await sandboxCallCount('/pay/downloadbill');

    // Act
    const result = await invoke(
      adminBillHandler,
      { method: 'GET', path: '/admin/bill', queryStringParameters: query as Record<string, string> },
      lambdaContext(29_000),
    );

    // Assess
    expect(result.status).toBe(400);
    expect(result.code).toBe(code);
    expect(await sandboxCallCount('/pay/downloadbill')).toBe(before);
  });
});
