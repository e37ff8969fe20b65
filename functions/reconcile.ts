import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import middy from '@middy/core';
import { paymentProviders } from '#lib/clients/wechat-pay';
import { loadConfig } from '#lib/config';
import { withDeadline } from '#lib/deadline';
import { logger } from '#lib/logger';
import { type ReconcileSummary, reconcile } from '#lib/payments/reconcile';

/** The scheduled reconciler (EventBridge, RECONCILE_SCHEDULE): one bounded pass inside this invocation's time. */
export const handler = middy<unknown, ReconcileSummary>()
  .use(injectLambdaContext(logger))
  .handler((_event, context) =>
    withDeadline(context, async () => {
      const config = await loadConfig();
      const deadline = Date.now() + context.getRemainingTimeInMillis() - 2000;
      const summary = await reconcile(config, paymentProviders(config), { deadline });
      logger.info('reconcile pass', { ...summary });
      return summary;
    }),
  );
