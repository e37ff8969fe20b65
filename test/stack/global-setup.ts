import type { TestProject } from 'vitest/node';
import { serverlessRoutes } from '#local/serverless-routes';
import { startStack } from '#local/stack-process';

declare module 'vitest' {
  export interface ProvidedContext {
    stack: { apiUrl: string; sandboxUrl: string };
  }
}

/** The stack suite's own ports when it starts `npm start` itself (the lambda port is the API's + 2). */
const API_PORT = Number(process.env.TEST_API_PORT ?? 3300);
const SANDBOX_PORT = Number(process.env.TEST_STACK_SANDBOX_PORT ?? API_PORT + 50);
const DYNAMODB_PORT = Number(process.env.TEST_STACK_DYNAMODB_PORT ?? API_PORT + 5000);

/**
 * Loads every function once (serverless-offline starts each on its first call, which can take seconds on a busy
 * machine): each route is called without credentials and its refusal ignored.
 */
async function warmUp(apiUrl: string): Promise<void> {
  for (const { method, path } of serverlessRoutes()) {
    await fetch(`${apiUrl}${path.replace(/\{[^}]+\}/g, 'warm-up-000')}`, {
      method,
      headers: { 'content-type': 'application/json' },
      body: method === 'GET' ? undefined : '{}',
      signal: AbortSignal.timeout(60_000),
    }).then(
      (response) => response.arrayBuffer(),
      () => undefined,
    );
  }
}

/**
 * The stack suite runs against a whole local stack (`npm start`): the one at STACK_API_URL + STACK_SANDBOX_URL
 * (test:e2e passes its own), else one it starts on TEST_API_PORT (default 3300), TEST_STACK_SANDBOX_PORT (API + 50)
 * and TEST_STACK_DYNAMODB_PORT (API + 5000), stopped after.
 */
export default async function setup(project: TestProject): Promise<(() => Promise<void>) | undefined> {
  const { STACK_API_URL, STACK_SANDBOX_URL } = process.env;
  if (STACK_API_URL && STACK_SANDBOX_URL) {
    await warmUp(STACK_API_URL);
    project.provide('stack', { apiUrl: STACK_API_URL, sandboxUrl: STACK_SANDBOX_URL });
    return undefined;
  }
  const api = `http://127.0.0.1:${API_PORT}`;
  const sandbox = `http://127.0.0.1:${SANDBOX_PORT}`;
  const { stop } = await startStack(
    {
      PORT: String(API_PORT),
      LAMBDA_PORT: String(API_PORT + 2),
      SANDBOX_PORT: String(SANDBOX_PORT),
      DYNAMODB_PORT: String(DYNAMODB_PORT),
      DYNAMODB_ENDPOINT: `http://127.0.0.1:${DYNAMODB_PORT}`,
      WECHAT_API_BASE: sandbox,
      WECHAT_PAY_API_BASE: sandbox,
      // Web OAuth's authorize page and the H5 demo page (GET /h5/demo.html) are the sandbox's.
      WECHAT_OPEN_BASE: sandbox,
      H5_ORIGINS: sandbox,
      // The sandbox's mutual-TLS listener (v2 refunds), away from a running `npm start`'s 3101.
      WECHAT_PAY_MTLS_BASE: `https://127.0.0.1:${SANDBOX_PORT + 1000}`,
      WECHAT_NOTIFY_URL: `${api}/wechat/notify`,
    },
    () => undefined,
  );
  await warmUp(api);
  project.provide('stack', { apiUrl: api, sandboxUrl: sandbox });
  return stop;
}
