import { applyLocalEnv } from '#local/env';

// Tests run against the sandbox values in .env.example, with their own ports so a running `npm start`
// does not interfere (TEST_DYNAMODB_PORT / TEST_SANDBOX_PORT move them, for parallel checkouts).
export const TEST_DYNAMODB_PORT = Number(process.env.TEST_DYNAMODB_PORT ?? 8100);
export const TEST_SANDBOX_PORT = Number(process.env.TEST_SANDBOX_PORT ?? 3200);
/** The sandbox's mutual-TLS listener (v2 /secapi/): TEST_SANDBOX_TLS_PORT, default TEST_SANDBOX_PORT + 1000. */
export const TEST_SANDBOX_TLS_PORT = Number(process.env.TEST_SANDBOX_TLS_PORT ?? TEST_SANDBOX_PORT + 1000);

/** Loads the test environment into process.env (used by test/setup.ts and the integration global setup). */
export function applyTestEnv(): void {
  applyLocalEnv({
    SECRETS_SOURCE: 'env',
    STAGE: 'test',
    // Logs are on (INFO) so the log sink can check every line for secrets (INV-6).
    POWERTOOLS_LOG_LEVEL: process.env.POWERTOOLS_LOG_LEVEL ?? 'INFO',
    DYNAMODB_ENDPOINT: `http://127.0.0.1:${TEST_DYNAMODB_PORT}`,
    WECHAT_API_BASE: `http://127.0.0.1:${TEST_SANDBOX_PORT}`,
    WECHAT_PAY_API_BASE: `http://127.0.0.1:${TEST_SANDBOX_PORT}`,
    WECHAT_OPEN_BASE: `http://127.0.0.1:${TEST_SANDBOX_PORT}`,
    // H5 pages the OAuth tests return to: the test sandbox's own origin and a public-looking one.
    H5_ORIGINS: `http://127.0.0.1:${TEST_SANDBOX_PORT},https://h5.example.com`,
    // The sandbox's mutual-TLS listener (v2 /secapi/pay/refund), next to its plain one.
    WECHAT_PAY_MTLS_BASE: `https://127.0.0.1:${TEST_SANDBOX_TLS_PORT}`,
    AWS_REGION: 'localhost',
  });
}
