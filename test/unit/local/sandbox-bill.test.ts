import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WechatPayV2 } from '#lib/clients/wechat-pay-v2';
import { chinaDay, formatTradeBill, parseTradeBill } from '#lib/wechat-pay/bill';
import { nonceStr, parseV2Xml, signV2, toV2Xml } from '#lib/wechat-pay/v2-protocol';
import { billLines, registerBills } from '#local/sandbox/bill';
import { PayStore, type SandboxOrder, type SandboxRefund } from '#local/sandbox/pay-store';
import { payV3SettingsFromEnv } from '#local/sandbox/pay-v3';
import { Sandbox } from '#local/sandbox/server';

const V2 = { appId: 'wx5a1d0c0ffee0d0e1', mchId: '1900000109', mchKey: 'sandboxMchKey0000000000000000000' };

function paid(outTradeNo: string, paidAt: Date, totalFee = 1800): SandboxOrder {
  return {
    version: 'v2',
    outTradeNo,
    appId: V2.appId,
    mchId: V2.mchId,
    openid: 'oUser',
    description: '会员 月卡',
    totalFee,
    notifyUrl: 'http://127.0.0.1:1/wechat/notify',
    fingerprint: '',
    prepayId: `wx${outTradeNo}`,
    tradeState: 'SUCCESS',
    createdAt: Math.floor(paidAt.getTime() / 1000) - 60,
    transactionId: `4200${outTradeNo}`,
    paidAt: Math.floor(paidAt.getTime() / 1000),
  };
}

describe('the sandbox trade bill', () => {
  let sandbox: Sandbox;
  let store: PayStore;

  beforeAll(async () => {
    sandbox = new Sandbox();
    store = new PayStore();
    registerBills(sandbox, store, V2, { ...payV3SettingsFromEnv(), appId: V2.appId, mchId: V2.mchId });
    await sandbox.listen(0);
    // 15:59:59 UTC is 23:59:59 China time; 16:00:00 UTC is the next China day.
    store.orders.set('DAY1LATE', paid('DAY1LATE', new Date('2026-11-27T15:59:59.000Z'), 29));
    store.orders.set('DAY2EARLY', paid('DAY2EARLY', new Date('2026-11-27T16:00:00.000Z')));
    store.orders.set('TODAY', paid('TODAY', new Date()));
    store.orders.set('UNPAID', {
      ...paid('UNPAID', new Date()),
      tradeState: 'NOTPAY',
      transactionId: undefined,
    });
  });
  afterAll(() => sandbox.close());

  const request = async (fields: Record<string, string>) => {
    const params: Record<string, string> = {
      appid: V2.appId,
      mch_id: V2.mchId,
      nonce_str: nonceStr(),
      ...fields,
    };
    params.sign = signV2(params, V2.mchKey, 'MD5');
    const response = await fetch(`${sandbox.baseUrl}/pay/downloadbill`, {
      method: 'POST',
      body: toV2Xml(params),
    });
    return Buffer.from(await response.arrayBuffer());
  };

  it('puts each paid order on the China day of its success time, unpaid ones nowhere', () => {
    // Assess
    expect(billLines(store, '2026-11-27').map((line) => line.outTradeNo)).toEqual(['DAY1LATE']);
    expect(billLines(store, '2026-11-28').map((line) => line.outTradeNo)).toEqual(['DAY2EARLY']);
    expect(billLines(store, chinaDay(new Date())).map((line) => line.outTradeNo)).toEqual(['TODAY']);
  });

  it('answers v2 downloadbill as plain text, or gzip with tar_type GZIP, for any day including today', async () => {
    // Act
    const plain = (await request({ bill_date: '20261127', bill_type: 'ALL' })).toString('utf8');
    const zipped = await request({ bill_date: chinaDay(new Date()).replaceAll('-', ''), tar_type: 'GZIP' });

    // Assess
    expect(parseTradeBill(plain).payments).toMatchObject([{ outTradeNo: 'DAY1LATE', totalFee: 29 }]);
    expect(parseTradeBill(gunzipSync(zipped).toString('utf8')).payments).toMatchObject([
      { outTradeNo: 'TODAY' },
    ]);
  });

  it('answers an empty day, a bad sign and a bad date with unsigned return_code FAIL XML', async () => {
    // Act
    const empty = parseV2Xml((await request({ bill_date: '20200101' })).toString('utf8'));
    const badDate = parseV2Xml((await request({ bill_date: '20260230' })).toString('utf8'));
    const response = await fetch(`${sandbox.baseUrl}/pay/downloadbill`, {
      method: 'POST',
      body: toV2Xml({
        appid: V2.appId,
        mch_id: V2.mchId,
        nonce_str: 'n',
        bill_date: '20261127',
        sign: 'BAD',
      }),
    });
    const badSign = parseV2Xml(await response.text());

    // Assess
    expect(empty).toEqual({ return_code: 'FAIL', return_msg: 'No Bill Exist', error_code: '20002' });
    expect(badDate).toMatchObject({ return_code: 'FAIL', return_msg: 'invalid bill_date' });
    expect(badSign).toMatchObject({ return_code: 'FAIL', return_msg: 'SIGN ERROR' });
  });

  it('plays STATEMENT_CREATING for a day marked as being made, read by the v2 client as not_ready', async () => {
    // Prepare
    const client = new WechatPayV2({ ...V2, payApiBase: sandbox.baseUrl, notifyUrl: '', v2SignType: 'MD5' });
    await fetch(`${sandbox.baseUrl}/sandbox/bills/creating`, {
      method: 'POST',
      body: JSON.stringify({ date: '2026-11-27' }),
    });

    // Act
    const creating = await client.downloadTradeBill('2026-11-27');
    await fetch(`${sandbox.baseUrl}/sandbox/bills/creating`, {
      method: 'POST',
      body: JSON.stringify({ date: '2026-11-27', creating: false }),
    });
    const ready = await client.downloadTradeBill('2026-11-27');

    // Assess
    expect(creating).toEqual({ kind: 'not_ready' });
    expect(ready.kind).toBe('bill');
  });

  it('lists the refunds processed to a final state on the day they were requested, and reads them back', () => {
    // Prepare: a second store, so the other tests' bills stay as they are
    const withRefunds = new PayStore();
    withRefunds.orders.set('REFUNDED', paid('REFUNDED', new Date('2026-11-20T02:00:00.000Z')));
    const refund = (outRefundNo: string, status: SandboxRefund['status']): SandboxRefund => ({
      version: 'v2',
      outRefundNo,
      outTradeNo: 'REFUNDED',
      transactionId: '4200REFUNDED',
      refundId: `50${outRefundNo}`,
      refundFee: 600,
      totalFee: 1800,
      notifyUrl: 'http://127.0.0.1:1/wechat/notify',
      status,
      plan: { mode: 'SUCCESS', deliver: true, delayMs: 0 },
      fingerprint: '',
      createdAt: Math.floor(Date.parse('2026-11-21T02:00:00.000Z') / 1000),
      ...(status === 'SUCCESS'
        ? { successAt: Math.floor(Date.parse('2026-11-21T02:00:05.000Z') / 1000) }
        : {}),
    });
    withRefunds.refunds.set('RDONE', refund('RDONE', 'SUCCESS'));
    withRefunds.refunds.set('RCLOSED', refund('RCLOSED', 'CLOSED'));
    withRefunds.refunds.set('RWAIT', refund('RWAIT', 'PROCESSING'));

    // Act
    const lines = billLines(withRefunds, '2026-11-21');
    const bill = parseTradeBill(formatTradeBill(lines));

    // Assess
    expect(billLines(withRefunds, '2026-11-20').map((line) => line.kind)).toEqual(['payment']);
    expect(bill.payments).toEqual([]);
    const byNumber = [...bill.refunds].sort((a, b) => a.outRefundNo.localeCompare(b.outRefundNo));
    expect(byNumber).toMatchObject([
      { outTradeNo: 'REFUNDED', outRefundNo: 'RCLOSED', refundFee: 600, refundStatus: 'REFUNDCLOSE' },
      { outTradeNo: 'REFUNDED', outRefundNo: 'RDONE', refundFee: 600, refundStatus: 'SUCCESS' },
    ]);
  });
});
