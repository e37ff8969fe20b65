import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import middy from '@middy/core';
import { paymentProviders } from '#lib/clients/wechat-pay';
import { loadConfig } from '#lib/config';
import { withDeadline } from '#lib/deadline';
import { logger } from '#lib/logger';
import { checkRecentDays } from '#lib/payments/bill';
import type { BillReport } from '#lib/repositories/bill-repository';

/**
 * The scheduled daily bill (EventBridge, BILL_SCHEDULE): yesterday's (China time) trade bill against the ledger,
 * unless that day already has a final report, then the 6 days before it that have none (backfill); a not_ready
 * day is tried again by the next scheduled run.
 */
export const handler = middy<unknown, BillReport>()
  .use(injectLambdaContext(logger))
  .handler((_event, context) =>
    withDeadline(context, async () => {
      const config = await loadConfig();
      const deadline = Date.now() + context.getRemainingTimeInMillis() - 2000;
      return checkRecentDays(config, paymentProviders(config), { deadline });
    }),
  );
