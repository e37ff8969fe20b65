import { paymentProviders } from '#lib/clients/wechat-pay';
import { loadConfig } from '#lib/config';
import { httpHandler, ok } from '#lib/http';
import { AbnormalRefundBody, applyAbnormalRefund } from '#lib/payments/abnormal-refund';
import { validate } from '#lib/validation';

/**
 * `POST /admin/refunds/{outRefundNo}/apply-abnormal {type, bankType?, bankAccount?, realName?}`: re-apply an ABNORMAL
 * v3 refund (to the user's other card or the merchant's bank account).
 */
export const handler = httpHandler(
  async (event) => {
    const body = validate(AbnormalRefundBody, event.body ?? {});
    const config = await loadConfig();
    const refund = await applyAbnormalRefund(
      config,
      paymentProviders(config),
      event.pathParameters?.outRefundNo ?? '',
      body,
    );
    return ok({ refund }, '已重新发起退款');
  },
  { jsonBody: true, maxBodyBytes: 1024 },
);
