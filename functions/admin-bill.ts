import { paymentProviders } from '#lib/clients/wechat-pay';
import { loadConfig } from '#lib/config';
import { httpHandler, ok } from '#lib/http';
import { billDay, checkBill } from '#lib/payments/bill';

/** `GET /admin/bill?date=YYYY-MM-DD`: that China-time day's bill checked now; the stored report. */
export const handler = httpHandler(async (event, context) => {
  const date = billDay(event.queryStringParameters?.date, new Date());
  const config = await loadConfig();
  const deadline = Date.now() + context.getRemainingTimeInMillis() - 2000;
  const report = await checkBill(config, paymentProviders(config), date, { deadline });
  return ok({ report: { ...report } }, '对账完成');
});
