/**
 * The benchmark's environment, applied when this module is evaluated. bench/run.ts imports it first, before
 * any app module: lib/logger builds the Powertools logger at import and reads POWERTOOLS_LOG_LEVEL (SILENT
 * here) then; everything else reads the environment on first use.
 */
import { applyLocalEnv } from '#local/env';

applyLocalEnv({
  STAGE: 'bench',
  SECRETS_SOURCE: 'env',
  POWERTOOLS_LOG_LEVEL: 'SILENT',
  WECHAT_PAY_VERSION: 'v2',
  // Never contacted: every DynamoDB call is answered by aws-sdk-client-mock.
  DYNAMODB_ENDPOINT: 'http://127.0.0.1:9',
});
