import { authenticate } from '#lib/auth';
import { paymentProvider } from '#lib/clients/wechat-pay';
import { loadConfig } from '#lib/config';
import { clientIp, httpHandler, ok } from '#lib/http';
import { CreatePaymentBody, createPayment } from '#lib/payments/orders';
import { validate } from '#lib/validation';

export const handler = httpHandler(
  async (event) => {
    const config = await loadConfig();
    const session = await authenticate(event, config);
    const body = validate(CreatePaymentBody, event.body);
    const result = await createPayment(config, paymentProvider(config), session, body, clientIp(event));
    // `result` is seed 000's shape (node-tenpay's getPayParams): mini-programs written for it spread it as is.
    return ok({ ...result, result: { appId: config.appId, ...result.payParams } }, '下单成功');
  },
  { jsonBody: true, maxBodyBytes: 4096 },
);
