import { type NotifyRoute, notifyHandler } from '#lib/http';
import { logger } from '#lib/logger';
import { applyRefundReport } from '#lib/payments/refunds';
import { settleReport } from '#lib/payments/settle';

/**
 * The notify path, in the money-safe order: verify and decode (signature first, before any DynamoDB call),
 * settle exactly once (validate against our records, one atomic conditional write), then acknowledge.
 * A verified message that reports no payment is acknowledged without credit; a verified payment that must
 * not be credited is acknowledged once it is recorded as a payment exception. A refund notify (v2 req_info, v3
 * REFUND.*) is applied exactly once (lib/payments/refunds.ts) before the acknowledgement.
 */
export const payNotify: NotifyRoute = async (request, { config, provider }) => {
  const notify = provider.parseNotify(request, Math.floor(Date.now() / 1000));
  if (notify.kind === 'ignored') {
    logger.warn('notify acknowledged without credit', { reason: notify.reason });
    return;
  }
  if (notify.kind === 'refund') {
    const outcome = await applyRefundReport(config, notify.report);
    logger.info('refund notify applied', { outRefundNo: notify.report.outRefundNo, outcome });
    return;
  }
  const outcome = await settleReport(config, notify.report);
  logger.info('notify settled', { outTradeNo: notify.report.outTradeNo, outcome });
};

/** WeChat Pay's notify_url (a Lambda Function URL in AWS; POST /wechat/notify locally). */
export const handler = notifyHandler(payNotify);
