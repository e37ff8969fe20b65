import { Logger } from '@aws-lambda-powertools/logger';
import { envValue } from '#lib/env';

/** The one structured JSON logger (Powertools); `injectLambdaContext` adds the request id per call. */
export const logger = new Logger({ serviceName: envValue('SERVICE_NAME', 'wechat-miniprogram-backend') });
