/**
 * The load run's environment, applied when this module is evaluated. load/run.ts imports it first, before any
 * module that imports the app: lib/logger builds the Powertools logger at import, and the logger reads
 * POWERTOOLS_LOG_LEVEL (SILENT here) and SERVICE_NAME then. Everything else reads the environment on first use.
 * Ports: LOAD_DYNAMODB_PORT (8200), LOAD_SANDBOX_PORT (3300).
 */
import { applyLocalEnv } from '#local/env';

export const dynamoPort = Number(process.env.LOAD_DYNAMODB_PORT ?? 8200);
export const sandboxPort = Number(process.env.LOAD_SANDBOX_PORT ?? 3300);
export const endpoint = `http://127.0.0.1:${dynamoPort}`;
export const sandboxUrl = `http://127.0.0.1:${sandboxPort}`;

applyLocalEnv({
  DYNAMODB_ENDPOINT: endpoint,
  WECHAT_API_BASE: sandboxUrl,
  WECHAT_PAY_API_BASE: sandboxUrl,
  STAGE: 'load',
  SECRETS_SOURCE: 'env',
  // LOAD_LOG_LEVEL=ERROR shows the app's error logs (e.g. why a notify answered an internal error).
  POWERTOOLS_LOG_LEVEL: process.env.LOAD_LOG_LEVEL ?? 'SILENT',
  WECHAT_PAY_VERSION: 'v2',
  DDB_LOCAL_TELEMETRY: '0',
});
