import type {
  AbnormalRefundRequest,
  CloseResult,
  NotifyReply,
  NotifyRequest,
  NotifyResult,
  OrderQueryResult,
  PaymentProvider,
  PayParams,
  PrepayRequest,
  RefundReport,
  RefundRequest,
  TradeBillDownload,
} from '#lib/clients/payment-provider';
import type { PayVersion } from '#lib/wechat-pay/fields';

/** What the fake answers next: a value, or an error to throw. */
type Answer<T> = T | Error;

/**
 * An in-memory WeChat Pay for domain tests: records every call and answers from queues the test scripts
 * (`answerPrepay`, `answerQuery`, `answerClose`, `answerNotify`). Unscripted, a prepay answers
 * `wx_fake_prepay_<n>`, an order query NOTPAY and a close CLOSED; an unscripted notify throws.
 */
export class FakePaymentProvider implements PaymentProvider {
  readonly prepays: PrepayRequest[] = [];
  readonly queries: string[] = [];
  readonly closes: string[] = [];
  readonly notifies: NotifyRequest[] = [];
  readonly fails: { status: number; message: string }[] = [];
  private readonly prepayAnswers: Answer<string>[] = [];
  private readonly queryAnswers: Answer<OrderQueryResult>[] = [];
  private readonly closeAnswers: Answer<CloseResult>[] = [];
  private readonly notifyAnswers: Answer<NotifyResult>[] = [];
  readonly billDays: string[] = [];
  private readonly billAnswers: Answer<TradeBillDownload>[] = [];
  readonly refunds: RefundRequest[] = [];
  readonly refundQueries: string[] = [];
  private readonly refundAnswers: Answer<RefundReport>[] = [];
  private readonly refundQueryAnswers: Answer<RefundReport | { status: 'NOTEXIST' }>[] = [];
  readonly abnormalRefunds: AbnormalRefundRequest[] = [];
  private readonly abnormalAnswers: Answer<RefundReport>[] = [];

  constructor(readonly version: PayVersion = 'v2') {}

  /** Queues the answers to the next prepay calls (a prepay_id, or an error to throw). */
  answerPrepay(...answers: Answer<string>[]): this {
    this.prepayAnswers.push(...answers);
    return this;
  }

  /** Queues the answers to the next order queries. */
  answerQuery(...answers: Answer<OrderQueryResult>[]): this {
    this.queryAnswers.push(...answers);
    return this;
  }

  /** Queues the answers to the next closeOrder calls. */
  answerClose(...answers: Answer<CloseResult>[]): this {
    this.closeAnswers.push(...answers);
    return this;
  }

  /** Queues the answers to the next parseNotify calls. */
  answerNotify(...answers: Answer<NotifyResult>[]): this {
    this.notifyAnswers.push(...answers);
    return this;
  }

  /** Queues the answers to the next downloadTradeBill calls (unscripted: empty). */
  answerBill(...answers: Answer<TradeBillDownload>[]): this {
    this.billAnswers.push(...answers);
    return this;
  }

  async downloadTradeBill(day: string): Promise<TradeBillDownload> {
    this.billDays.push(day);
    return settle(this.billAnswers.shift() ?? { kind: 'empty' });
  }

  /** Queues the answers to the next refund calls. */
  answerRefund(...answers: Answer<RefundReport>[]): this {
    this.refundAnswers.push(...answers);
    return this;
  }

  /** Queues the answers to the next refund queries. */
  answerRefundQuery(...answers: Answer<RefundReport | { status: 'NOTEXIST' }>[]): this {
    this.refundQueryAnswers.push(...answers);
    return this;
  }

  /** Unscripted: accepted, PROCESSING. */
  async refund(request: RefundRequest): Promise<RefundReport> {
    this.refunds.push(request);
    return settle(
      this.refundAnswers.shift() ?? {
        outRefundNo: request.outRefundNo,
        outTradeNo: request.outTradeNo,
        status: 'PROCESSING',
        refundFee: request.refundFee,
        via: this.version === 'v2' ? 'refund-v2' : 'refund-v3',
      },
    );
  }

  /** Queues the answers to the next applyAbnormalRefund calls. */
  answerAbnormalRefund(...answers: Answer<RefundReport>[]): this {
    this.abnormalAnswers.push(...answers);
    return this;
  }

  /** Unscripted: re-applied, PROCESSING (the report names no order: the domain does not read it). */
  async applyAbnormalRefund(request: AbnormalRefundRequest): Promise<RefundReport> {
    this.abnormalRefunds.push(request);
    return settle(
      this.abnormalAnswers.shift() ?? {
        outRefundNo: request.outRefundNo,
        outTradeNo: '',
        status: 'PROCESSING',
        refundId: request.refundId,
        refundFee: 0,
        via: 'refund-v3',
      },
    );
  }

  /** Unscripted: NOTEXIST. */
  async queryRefund(outRefundNo: string): Promise<RefundReport | { status: 'NOTEXIST' }> {
    this.refundQueries.push(outRefundNo);
    return settle(this.refundQueryAnswers.shift() ?? { status: 'NOTEXIST' });
  }

  async prepay(request: PrepayRequest): Promise<string> {
    this.prepays.push(request);
    return settle(this.prepayAnswers.shift() ?? `wx_fake_prepay_${this.prepays.length}`);
  }

  payParams(prepayId: string): PayParams {
    return {
      timeStamp: '1763712000',
      nonceStr: 'fakeNonce',
      package: `prepay_id=${prepayId}`,
      signType: this.version === 'v2' ? 'MD5' : 'RSA',
      paySign: `fake-sign:${prepayId}`,
    };
  }

  async queryOrder(outTradeNo: string): Promise<OrderQueryResult> {
    this.queries.push(outTradeNo);
    return settle(this.queryAnswers.shift() ?? { tradeState: 'NOTPAY' });
  }

  async closeOrder(outTradeNo: string): Promise<CloseResult> {
    this.closes.push(outTradeNo);
    return settle(this.closeAnswers.shift() ?? { tradeState: 'CLOSED' });
  }

  accepts(): boolean {
    return true;
  }

  parseNotify(request: NotifyRequest): NotifyResult {
    this.notifies.push(request);
    return settle(this.notifyAnswers.shift() ?? new Error('no notify answer scripted'));
  }

  notifyAck(): NotifyReply {
    return { statusCode: 200, headers: { 'content-type': 'text/plain' }, body: 'fake-ack' };
  }

  notifyFail(status: number, message: string): NotifyReply {
    this.fails.push({ status, message });
    return { statusCode: status, headers: { 'content-type': 'text/plain' }, body: `fake-fail: ${message}` };
  }
}

function settle<T>(answer: Answer<T>): T {
  if (answer instanceof Error) throw answer;
  return answer;
}
