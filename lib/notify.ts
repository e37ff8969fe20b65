import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import middy from '@middy/core';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import type { NotifyReply, PaymentProvider } from '#lib/clients/payment-provider';
import { paymentProvider } from '#lib/clients/wechat-pay';
import { type Config, loadConfig } from './config';
import { AppError, NotifyRejectedError } from './errors';
import { logger } from './logger';
import { settlePayment } from './payments';

/** Notify bodies above this are refused before any parsing (a real one is about 1–2 KB). */
export const MAX_NOTIFY_BYTES = 64 * 1024;

function rawBody(event: APIGatewayProxyEventV2): string {
  const body = event.body ?? '';
  if (body.length > MAX_NOTIFY_BYTES * 2) throw new NotifyRejectedError('body too large', 413);
  const text = event.isBase64Encoded ? Buffer.from(body, 'base64').toString('utf8') : body;
  if (Buffer.byteLength(text) > MAX_NOTIFY_BYTES) throw new NotifyRejectedError('body too large', 413);
  return text;
}

/**
 * A WeChat Pay notify, in the money-safe order: raw body → size cap → verify (signature, no DynamoDB call
 * before it) → validate against our records → one atomic conditional write → acknowledge. Every refusal is
 * logged as an error and answered with the version's FAIL reply so WeChat retries; nothing is written.
 */
export async function handleNotify(
  config: Config,
  provider: PaymentProvider,
  event: APIGatewayProxyEventV2,
  nowSeconds = Math.floor(Date.now() / 1000),
): Promise<NotifyReply> {
  try {
    const request = { headers: event.headers ?? {}, body: rawBody(event) };
    if (!provider.accepts(request)) {
      throw new NotifyRejectedError(`not a ${provider.version} notify`, 400);
    }
    const result = provider.parseNotify(request, nowSeconds);
    if (result.kind === 'ignored') {
      logger.warn('notify acknowledged without credit', { reason: result.reason });
      return provider.notifyAck();
    }
    const outcome = await settlePayment(config, result.report);
    logger.info('notify settled', { outTradeNo: result.report.outTradeNo, outcome });
    return provider.notifyAck();
  } catch (error) {
    if (error instanceof NotifyRejectedError) {
      logger.error('notify refused', { reason: error.message, detail: error.detail });
      return provider.notifyFail(error.status, error.message);
    }
    logger.error('notify failed', { error: error as Error });
    return provider.notifyFail(500, 'internal error');
  }
}

/** The payNotify Lambda: loads config (a failure answers 500 so WeChat retries) and handles one notify. */
export function notifyHandler() {
  return middy<APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2>()
    .use(injectLambdaContext(logger))
    .handler(async (event) => {
      let config: Config;
      let provider: PaymentProvider;
      try {
        config = await loadConfig();
        provider = paymentProvider(config);
      } catch (error) {
        logger.error('notify config failed', {
          detail: error instanceof AppError ? error.detail : undefined,
        });
        return {
          statusCode: 500,
          headers: { 'content-type': 'application/json' },
          body: '{"code":"FAIL","message":"config"}',
        };
      }
      return handleNotify(config, provider, event);
    });
}
