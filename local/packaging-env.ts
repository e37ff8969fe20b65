import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseEnv } from 'node:util';

const ROOT = resolve(import.meta.dirname, '..');

/**
 * The environment `serverless package` runs with in CI and in `npm run bench:init`: this process's environment
 * minus every secret, everything .env.example and the test setup put there, and the local-stack switches; the
 * stage's settings from test/fixtures/stages; no Serverless telemetry or notifications.
 */
export function packagingEnv(): NodeJS.ProcessEnv {
  const example = parseEnv(readFileSync(resolve(ROOT, '.env.example'), 'utf8'));
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const name of Object.keys(env)) {
    if (/^(WECHAT_|JWT_|SANDBOX_)/.test(name) || name in example) delete env[name];
  }
  for (const name of [
    'SECRETS_SOURCE',
    'IS_LOCAL_STACK',
    'DYNAMODB_ENDPOINT',
    'POWERTOOLS_LOG_LEVEL',
    'AWS_REGION',
  ]) {
    delete env[name];
  }
  return {
    ...env,
    STAGE_SETTINGS_DIR: 'test/fixtures/stages',
    SLS_TELEMETRY_DISABLED: '1',
    SLS_NOTIFICATIONS_MODE: 'off',
  };
}
