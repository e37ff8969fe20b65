import { describe, expect, it } from 'vitest';
import { WECHAT_MIN_ATTEMPT_MS, WECHAT_RESERVE_MS } from '#lib/clients/retry';
import { ANSWER_MARGIN_MS } from '#lib/deadline';
import { readServerlessYml } from '#local/serverless-routes';

/** WeChat Pay gives up on a notify after this long and delivers it again, milliseconds. */
const WECHAT_NOTIFY_WINDOW_MS = 5000;

/**
 * The clients' budgets against each function's timeout in serverless.yml, so the two cannot drift apart: the
 * deadline (timeout − ANSWER_MARGIN_MS) leaves room for one WeChat attempt after its reserve, SSM's cold-start
 * budget ends before it, and the notify answers inside WeChat's window.
 */
describe('serverless.yml timeouts and the client budgets', () => {
  const yml = readServerlessYml();
  const functions = Object.entries<{ timeout?: number; environment?: Record<string, string> }>(yml.functions);

  it.each(functions)(
    '%s leaves room for the answer margin, the reserve and one WeChat attempt',
    (_name, fn) => {
      const timeoutMs = (fn.timeout ?? yml.provider.timeout) * 1000;
      expect(timeoutMs).toBeGreaterThanOrEqual(ANSWER_MARGIN_MS + WECHAT_RESERVE_MS + WECHAT_MIN_ATTEMPT_MS);
      const ssmTimeoutMs = Number(fn.environment?.SSM_TIMEOUT_MS ?? yml.provider.environment.SSM_TIMEOUT_MS);
      expect(ssmTimeoutMs).toBeLessThan(timeoutMs - ANSWER_MARGIN_MS);
    },
  );

  it('answers a notify inside WeChat’s window', () => {
    expect(yml.functions.payNotify.timeout * 1000).toBeLessThanOrEqual(WECHAT_NOTIFY_WINDOW_MS);
  });
});
