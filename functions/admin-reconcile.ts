import { paymentProviders } from '#lib/clients/wechat-pay';
import { loadConfig } from '#lib/config';
import { httpHandler, ok } from '#lib/http';
import { ReconcileBody } from '#lib/payments/admin';
import { reconcile } from '#lib/payments/reconcile';
import { validate } from '#lib/validation';

/** `POST /admin/reconcile {all?}`: one reconcile pass now, inside this invocation's time. */
export const handler = httpHandler(
  async (event, context) => {
    const { all } = validate(ReconcileBody, event.body ?? {});
    const config = await loadConfig();
    const deadline = Date.now() + context.getRemainingTimeInMillis() - 2000;
    const summary = await reconcile(config, paymentProviders(config), { deadline, all });
    return ok({ ...summary }, '对账完成');
  },
  { jsonBody: true, maxBodyBytes: 256 },
);
