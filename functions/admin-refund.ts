import { paymentProviders } from '#lib/clients/wechat-pay';
import { loadConfig } from '#lib/config';
import { httpHandler, ok } from '#lib/http';
import { createRefund, RefundBody } from '#lib/payments/refunds';
import { validate } from '#lib/validation';

/** `POST /admin/refunds {outTradeNo, amount?, reason?}` (header `Idempotency-Key`): refund all or part of a PAID order. */
export const handler = httpHandler(
  async (event) => {
    const body = validate(RefundBody, event.body ?? {});
    const config = await loadConfig();
    const refund = await createRefund(
      config,
      paymentProviders(config),
      body,
      event.headers?.['idempotency-key'],
    );
    return ok({ refund: { ...refund } }, '退款已受理');
  },
  { jsonBody: true, maxBodyBytes: 1024 },
);
