import { Logger } from '@aws-lambda-powertools/logger';

/** The one structured JSON logger (Powertools); `injectLambdaContext` adds the request id per call. */
export const logger = new Logger({ serviceName: process.env.SERVICE_NAME ?? 'wechat-miniprogram-backend' });
