import { applyLocalEnv } from '../local/env';

// Tests run against the sandbox values in .env.example, with their own ports so a running `npm start`
// does not interfere. The integration global setup starts DynamoDB Local and the sandbox on these ports.
export const TEST_DYNAMODB_PORT = 8100;
export const TEST_SANDBOX_PORT = 3200;

applyLocalEnv({
  SECRETS_SOURCE: 'env',
  STAGE: 'test',
  LOG_LEVEL: process.env.LOG_LEVEL ?? 'SILENT',
  POWERTOOLS_LOG_LEVEL: process.env.LOG_LEVEL ?? 'SILENT',
  DYNAMODB_ENDPOINT: `http://127.0.0.1:${TEST_DYNAMODB_PORT}`,
  WECHAT_API_BASE: `http://127.0.0.1:${TEST_SANDBOX_PORT}`,
  WECHAT_PAY_API_BASE: `http://127.0.0.1:${TEST_SANDBOX_PORT}`,
  AWS_REGION: 'localhost',
});
