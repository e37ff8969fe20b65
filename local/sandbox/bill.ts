import { randomBytes } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { type BillLineInput, billSha1, chinaDay, formatTradeBill, isDay } from '#lib/wechat-pay/bill';
import { V2_SIGN_TYPES, type V2SignType } from '#lib/wechat-pay/fields';
import { parseV2Xml, toV2Xml, verifyV2Sign } from '#lib/wechat-pay/v2-protocol';
import { type PayStore, processedRefunds } from './pay-store';
import type { PayV2Settings } from './pay-v2';
import { authorize, type PayV3Settings, reply, v3Merchant } from './pay-v3';
import { controlBody, json, type Sandbox, type SandboxReply, type SandboxRequest } from './server';

/**
 * Plays WeChat Pay's trade bills (交易账单, ALL) for any day, today included, built from what the sandbox actually
 * processed: every order paid (SUCCESS) with its success time on that China day, both API versions (a bill is per
 * merchant), plus the refunds requested that day (`refundBillLines`). v2 `POST /pay/downloadbill` (sign checked; plain or
 * tar_type=GZIP; "No Bill Exist" / "Bill Creating" as unsigned return_code FAIL XML); v3 `GET /v3/bill/tradebill`
 * (Authorization checked, answer signed: hash_type SHA1, hash_value, download_url; 400 NO_STATEMENT_EXIST /
 * STATEMENT_CREATING) and `GET /v3/billdownload/file?token=` (Authorization checked, answer NOT signed, gzip when
 * asked, the token valid 5 minutes). `POST /sandbox/bills/creating {date, creating?}` makes a day answer "being
 * made" until cleared.
 */

const DOWNLOAD_PATH = '/v3/billdownload/file';
const TOKEN_TTL_MS = 5 * 60_000;

/**
 * The refund lines of a China-time day (YYYY-MM-DD): every refund the sandbox processed to a final state that
 * was requested that day (WeChat's bill lists a refund on the day it was requested), with its order's
 * identifiers; ABNORMAL is written as WeChat's CHANGE, CLOSED as REFUNDCLOSE.
 */
export function refundBillLines(store: PayStore, day: string): BillLineInput[] {
  const status = { SUCCESS: 'SUCCESS', CLOSED: 'REFUNDCLOSE', ABNORMAL: 'CHANGE' } as const;
  return processedRefunds(store)
    .filter((refund) => chinaDay(new Date(refund.createdAt * 1000)) === day)
    .flatMap((refund): BillLineInput[] => {
      const order = store.orders.get(refund.outTradeNo);
      if (!order || refund.status === 'PROCESSING') return [];
      return [
        {
          kind: 'refund',
          at: new Date(refund.createdAt * 1000),
          appId: order.appId,
          mchId: order.mchId,
          transactionId: refund.transactionId,
          outTradeNo: refund.outTradeNo,
          openid: order.openid,
          refundId: refund.refundId,
          outRefundNo: refund.outRefundNo,
          refundFee: refund.refundFee,
          refundStatus: status[refund.status],
          description: order.description,
        },
      ];
    });
}

/** The bill lines of `day`: its paid orders by success time, then its refunds. */
export function billLines(store: PayStore, day: string): BillLineInput[] {
  const payments = [...store.orders.values()]
    .filter((order) => order.tradeState === 'SUCCESS' && order.paidAt !== undefined)
    .filter((order) => chinaDay(new Date((order.paidAt as number) * 1000)) === day)
    .sort((a, b) => (a.paidAt as number) - (b.paidAt as number))
    .map(
      (order): BillLineInput => ({
        kind: 'payment',
        at: new Date((order.paidAt as number) * 1000),
        appId: order.appId,
        mchId: order.mchId,
        transactionId: order.transactionId ?? '',
        outTradeNo: order.outTradeNo,
        openid: order.openid,
        totalFee: order.totalFee,
        description: order.description,
      }),
    );
  return [...payments, ...refundBillLines(store, day)];
}

/** Registers the v2 and v3 bill endpoints and the /sandbox/bills control route. */
export function registerBills(sandbox: Sandbox, store: PayStore, v2: PayV2Settings, v3: PayV3Settings): void {
  const creating = new Set<string>();
  const downloads = new Map<string, { bytes: Buffer; expires: number }>();

  /** The day's bill text, or why there is none. */
  const billOf = (day: string): { text: string } | 'empty' | 'creating' => {
    if (creating.has(day)) return 'creating';
    const lines = billLines(store, day);
    return lines.length === 0 ? 'empty' : { text: formatTradeBill(lines) };
  };

  const v2Fail = (message: string, errorCode?: string): SandboxReply => ({
    status: 200,
    headers: { 'content-type': 'text/xml' },
    body: toV2Xml({
      return_code: 'FAIL',
      return_msg: message,
      ...(errorCode ? { error_code: errorCode } : {}),
    }),
  });

  sandbox.route('POST', '/pay/downloadbill', (request) => {
    let params: Record<string, string>;
    try {
      params = parseV2Xml(request.body);
    } catch {
      return v2Fail('data format error', '20001');
    }
    const declared = params.sign_type;
    if (declared !== undefined && !(V2_SIGN_TYPES as readonly string[]).includes(declared)) {
      return v2Fail('invalid sign_type', '20001');
    }
    const signType: V2SignType = declared === 'HMAC-SHA256' ? 'HMAC-SHA256' : 'MD5';
    if (!params.mch_id || !params.appid || !params.nonce_str || !params.bill_date) {
      return v2Fail('missing parameter', '20001');
    }
    if (params.mch_id !== v2.mchId || params.appid !== v2.appId)
      return v2Fail('invalid appid or mch_id', '20001');
    if (!verifyV2Sign(params, v2.mchKey, [signType])) return v2Fail('SIGN ERROR', '20003');
    if (!['ALL', undefined].includes(params.bill_type)) return v2Fail('invalid bill_type', '20001');
    if (params.tar_type !== undefined && params.tar_type !== 'GZIP')
      return v2Fail('invalid tar_type', '20001');
    const match = /^(\d{4})(\d{2})(\d{2})$/.exec(params.bill_date);
    const day = match ? `${match[1]}-${match[2]}-${match[3]}` : '';
    if (!isDay(day)) return v2Fail('invalid bill_date', '20001');
    const bill = billOf(day);
    if (bill === 'empty') return v2Fail('No Bill Exist', '20002');
    if (bill === 'creating') return v2Fail('Bill Creating', '20003');
    if (params.tar_type === 'GZIP') {
      return {
        status: 200,
        headers: { 'content-type': 'application/x-gzip' },
        body: gzipSync(Buffer.from(bill.text, 'utf8')),
      };
    }
    return { status: 200, headers: { 'content-type': 'text/plain; charset=utf-8' }, body: bill.text };
  });

  const merchant = v3Merchant(v3, store);
  const signed = (status: number, payload: Record<string, unknown>) => reply(merchant, status, payload);
  const unauthorized = (request: SandboxRequest) => authorize(merchant, request);

  sandbox.route('GET', '/v3/bill/tradebill', (request) => {
    const refused = unauthorized(request);
    if (refused) return refused;
    const query = request.url.searchParams;
    const day = query.get('bill_date') ?? '';
    if (!isDay(day)) return signed(400, { code: 'PARAM_ERROR', message: 'bill_date 格式错误' });
    const billType = query.get('bill_type') ?? 'ALL';
    if (billType !== 'ALL') return signed(400, { code: 'PARAM_ERROR', message: '沙箱仅支持 bill_type=ALL' });
    const tarType = query.get('tar_type');
    if (tarType !== null && tarType !== 'GZIP')
      return signed(400, { code: 'PARAM_ERROR', message: 'tar_type 错误' });
    const bill = billOf(day);
    if (bill === 'empty') return signed(400, { code: 'NO_STATEMENT_EXIST', message: '请求的账单文件不存在' });
    if (bill === 'creating') return signed(400, { code: 'STATEMENT_CREATING', message: '账单生成中' });
    const text = Buffer.from(bill.text, 'utf8');
    const token = randomBytes(16).toString('hex');
    downloads.set(token, {
      bytes: tarType === 'GZIP' ? gzipSync(text) : text,
      expires: Date.now() + TOKEN_TTL_MS,
    });
    const host = request.headers.host ?? new URL(sandbox.baseUrl).host;
    return signed(200, {
      hash_type: 'SHA1',
      hash_value: billSha1(text),
      download_url: `http://${host}${DOWNLOAD_PATH}?token=${token}`,
    });
  });

  sandbox.route('GET', DOWNLOAD_PATH, (request) => {
    const refused = unauthorized(request);
    if (refused) return refused;
    const download = downloads.get(request.url.searchParams.get('token') ?? '');
    if (!download || download.expires < Date.now()) {
      return json(400, { code: 'INVALID_REQUEST', message: '下载地址无效或已过期' });
    }
    // WeChat does not sign this answer (no Wechatpay-* headers): the merchant checks hash_value instead.
    return { status: 200, headers: { 'content-type': 'application/octet-stream' }, body: download.bytes };
  });

  sandbox.route('POST', '/sandbox/bills/creating', (request) => {
    const body = controlBody(request);
    const date = typeof body.date === 'string' ? body.date : '';
    if (!isDay(date)) return json(400, { error: 'expected {date: YYYY-MM-DD, creating?: boolean}' });
    if (body.creating === false) creating.delete(date);
    else creating.add(date);
    return json(200, { date, creating: creating.has(date) });
  });
}
