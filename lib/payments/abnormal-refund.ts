import * as v from 'valibot';
import type { Config } from '#lib/config';
import { ConflictError, NotFoundError } from '#lib/errors';
import { logger } from '#lib/logger';
import * as refunds from '#lib/repositories/refund-repository';
import { OUT_REFUND_NO } from '#lib/wechat-pay/fields';
import { nextRefundCheckAt, type PublicRefund, toPublicRefund } from './refunds';
import { type Providers, providerFor } from './rules';

/**
 * Re-applying an ABNORMAL refund (the user's card was closed or frozen) from our own API: WeChat Pay v3 发起异常退款
 * (`apply-abnormal-refund`, doc 4017150905). The refund goes back to PROCESSING, stays in the reconcile index, and
 * its later SUCCESS or CLOSED is applied once by the existing path (notify or the reconciler's query).
 */

/** Control characters and the Unicode line/paragraph separators: never part of a name or a bank code. */
const CONTROL = /[\p{Cc}\u2028\u2029]/u;

/**
 * `POST /admin/refunds/{outRefundNo}/apply-abnormal` body: `{type: 'MERCHANT_BANK_CARD'}` (to the merchant's own
 * bank account; the merchant then pays the user by other means) or `{type: 'USER_BANK_CARD', bankType, bankAccount,
 * realName}` (to another card of the user: WeChat's bank code, 8–32 digits, the card holder's name ≤ 64 characters).
 */
export const AbnormalRefundBody = v.variant(
  'type',
  [
    v.object({ type: v.literal('MERCHANT_BANK_CARD') }),
    v.object({
      type: v.literal('USER_BANK_CARD'),
      bankType: v.pipe(
        v.string('bankType 必须是字符串'),
        v.regex(/^[A-Z0-9_]{1,32}$/, 'bankType 应为微信支付的银行类型编码（如 ICBC_DEBIT）'),
      ),
      bankAccount: v.pipe(
        v.string('bankAccount 必须是字符串'),
        v.regex(/^\d{8,32}$/, 'bankAccount 应为 8–32 位数字'),
      ),
      realName: v.pipe(
        v.string('realName 必须是字符串'),
        v.trim(),
        v.minLength(1, 'realName 不能为空'),
        v.maxLength(64, 'realName 不能超过 64 个字符'),
        v.check((name) => name.isWellFormed() && !CONTROL.test(name), 'realName 包含不允许的字符'),
      ),
    }),
  ],
  'type 应为 USER_BANK_CARD 或 MERCHANT_BANK_CARD',
);

/** What `POST /admin/refunds/{outRefundNo}/apply-abnormal` answers: the refund, and when it was re-applied. */
export interface ReappliedRefund extends PublicRefund {
  reapplications: refunds.RefundReapplication[];
}

/**
 * `POST /admin/refunds/{outRefundNo}/apply-abnormal`: re-applies a refund our records hold as ABNORMAL at WeChat
 * (v3 apply-abnormal-refund, by its refund_id), then moves it ABNORMAL → PROCESSING (conditioned on it still being
 * ABNORMAL) with `{at, type}` appended to its reapplications (never the bank account or the name, which are neither
 * stored nor logged), next asked about by the reconciler a minute later. A SUCCESS or CLOSED racing this is applied
 * exactly once either way: its transition is conditioned on the status it read, and PROCESSING is still open.
 * Throws NotFoundError REFUND_NOT_FOUND; ConflictError REFUND_NOT_ABNORMAL (another status), REFUND_ID_UNKNOWN (v3, no
 * refund_id yet), ORDER_PAY_VERSION_CHANGED, ABNORMAL_REFUND_V3_ONLY (a v2 refund: re-applied in the merchant
 * platform; no WeChat call); UpstreamError ABNORMAL_REFUND_REFUSED / ServiceUnavailableError from WeChat (nothing
 * written).
 */
export async function applyAbnormalRefund(
  config: Config,
  providers: Providers,
  outRefundNo: string,
  body: v.InferOutput<typeof AbnormalRefundBody>,
  now: () => Date = () => new Date(),
): Promise<ReappliedRefund> {
  if (!OUT_REFUND_NO.test(outRefundNo)) throw new NotFoundError('退款单不存在', 'REFUND_NOT_FOUND');
  const refund = await refunds.getRefund(config.ordersTable, outRefundNo);
  if (!refund) throw new NotFoundError('退款单不存在', 'REFUND_NOT_FOUND');
  if (refund.status !== 'ABNORMAL') {
    throw new ConflictError(
      `退款状态为 ${refund.status}，只有异常（ABNORMAL）的退款可以重新发起`,
      'REFUND_NOT_ABNORMAL',
      refund.status,
    );
  }
  const provider = providerFor(refund, providers);
  if (!provider) {
    throw new ConflictError(
      '退款的支付版本已停用，无法重新发起',
      'ORDER_PAY_VERSION_CHANGED',
      refund.payVersion,
    );
  }
  // v2 refuses by itself (ABNORMAL_REFUND_V3_ONLY), whether or not WeChat named a refund_id.
  if (!refund.refundId && provider.version === 'v3') {
    throw new ConflictError('尚未取得微信退款单号，请稍后再试', 'REFUND_ID_UNKNOWN');
  }
  const answer = await provider.applyAbnormalRefund({
    refundId: refund.refundId ?? '',
    outRefundNo,
    ...body,
  });
  const at = now();
  const reapplication = { at: at.toISOString(), type: body.type };
  const moved = await refunds.markRefundReapplied(
    config.ordersTable,
    outRefundNo,
    reapplication,
    nextRefundCheckAt(at.toISOString(), at),
  );
  logger.info('abnormal refund re-applied', {
    outRefundNo,
    type: body.type,
    wechatStatus: answer.status,
    recorded: moved.kind === 'committed',
  });
  if (moved.kind === 'committed') {
    return {
      ...toPublicRefund({ ...refund, status: 'PROCESSING' }),
      reapplications: [...(refund.reapplications ?? []), reapplication],
    };
  }
  // A notify or the reconciler (or a concurrent re-application) moved it since it was read: it stands as it is now.
  const current = moved.refund ?? (await refunds.getRefund(config.ordersTable, outRefundNo)) ?? refund;
  logger.warn('abnormal refund moved on while being re-applied', { outRefundNo, status: current.status });
  return { ...toPublicRefund(current), reapplications: current.reapplications ?? [] };
}
