/**
 * `npm run loadtest -- [--scale small|full] [--seed N] [--only G1,G3]`: the load goals of
 * research/reliability.md §4 (G1–G7, G9) against DynamoDB Local (in memory) and the WeChat sandbox, driving
 * the real handlers in-process (plus forked workers for the cross-process/cross-version runs).
 *
 * Invariant failures (INV-1/2/4, wrong replies, memory bound) always fail the run; the time and latency
 * targets of §4.2 are printed at every scale but enforced only at --scale full (CI machines vary).
 * Ports: LOAD_DYNAMODB_PORT (8200), LOAD_SANDBOX_PORT (3300).
 */
// First, before anything that imports the app: applies the load environment (see load/environment.ts).
import './environment';
import { createServer } from 'node:net';
import { parseArgs } from 'node:util';
import { paymentProvider } from '#lib/clients/wechat-pay';
import { type V3Keys, v3Config, v3Keys } from '#local/fixtures/v3';
import { createConfiguredSandbox } from '#local/sandbox/index';
import { waitForHttp } from '#local/tables';
import { CallCounter, createApp, v3Delivery } from './app';
import { dynamoPort, endpoint, sandboxPort, sandboxUrl } from './environment';
import type { Ctx, Result, Scale } from './harness';
import { Ledger } from './ledger';
import { SCENARIOS } from './scenarios/index';
import { installExitHooks, onCleanup, shutdown, startDynamoDbLocal } from './stack';

const { values } = parseArgs({
  options: {
    scale: { type: 'string', default: 'small' },
    seed: { type: 'string', default: '1' },
    only: { type: 'string' },
  },
  allowPositionals: false,
});

const scale = values.scale as Scale;
if (scale !== 'small' && scale !== 'full') throw new Error('--scale must be small or full');
const seed = Number(values.seed);
if (!Number.isSafeInteger(seed) || seed < 0) throw new Error('--seed must be a non-negative integer');
const only = values.only ? new Set(values.only.split(',').map((id) => id.trim().toUpperCase())) : undefined;
if (only) {
  const known = new Set(SCENARIOS.map((s) => s.id));
  for (const id of only) if (!known.has(id)) throw new Error(`--only: unknown scenario ${id}`);
}

async function assertPortFree(port: number): Promise<void> {
  await new Promise<void>((resolvePort, reject) => {
    const probe = createServer();
    probe.once('error', () =>
      reject(new Error(`port ${port} is in use (set LOAD_DYNAMODB_PORT / LOAD_SANDBOX_PORT)`)),
    );
    probe.listen(port, '127.0.0.1', () => probe.close(() => resolvePort()));
  });
}

/**
 * Whether WECHAT_PAY_VERSION=v3 works here: a v3 provider built from this environment parses and verifies a
 * notify built by this harness.
 */
function probeV3(): { keys?: V3Keys; note: string } {
  try {
    const provider = paymentProvider(v3Config());
    const keys = v3Keys();
    const delivery = v3Delivery(keys, {
      outTradeNo: 'LTPROBE000001',
      transactionId: '4200000000000000000000000001',
      totalFee: 1800,
      openid: 'oProbe000000',
    });
    const parsed = provider.parseNotify(delivery, Math.floor(Date.now() / 1000));
    if (parsed.kind !== 'paid' || parsed.report.outTradeNo !== 'LTPROBE000001') {
      return { note: `v3: probe notify parsed as ${JSON.stringify(parsed)}; v2 only` };
    }
    return {
      keys,
      note: 'v3: available (v3 notifies run in forked processes configured WECHAT_PAY_VERSION=v3)',
    };
  } catch (error) {
    return { note: `v3: not usable (${(error as Error).message}); v2 only` };
  }
}

function statusOf(result: Result): 'pass' | 'FAIL' | 'skip' {
  if (result.skipped) return 'skip';
  if (result.failures.length > 0) return 'FAIL';
  if (scale === 'full' && result.targets.some((target) => !target.ok)) return 'FAIL';
  return 'pass';
}

function print(result: Result): void {
  const status = statusOf(result);
  if (result.skipped) {
    console.log(`${result.id} skip — ${result.skipped}`);
    return;
  }
  console.log(`${result.id} ${status} ${result.fields.map(([k, v]) => `${k}=${v}`).join(' ')}`);
  if (result.targets.length > 0) {
    const enforced = scale === 'full' ? 'enforced' : 'reported only at small scale';
    const list = result.targets.map((t) => `${t.text} ${t.ok ? 'ok' : 'MISSED'}`).join('; ');
    console.log(`   targets (${enforced}): ${list}`);
  }
  for (const note of result.notes) console.log(`   ${note}`);
  for (const failure of result.failures) console.log(`   ✗ ${failure}`);
}

async function main(): Promise<number> {
  installExitHooks();
  const runStarted = performance.now();

  await assertPortFree(dynamoPort);
  await assertPortFree(sandboxPort);
  const java = startDynamoDbLocal(dynamoPort);
  const javaExited = new Promise<never>((_, reject) =>
    java.once('exit', (code) => reject(new Error(`DynamoDB Local exited early (${code})`))),
  );
  javaExited.catch(() => {});

  const sandbox = createConfiguredSandbox();
  await sandbox.listen(sandboxPort);
  onCleanup(() => sandbox.close());
  const app = createApp();
  const counter = new CallCounter(app);
  await Promise.race([waitForHttp(endpoint, 60_000), javaExited]);
  const ledger = new Ledger(endpoint);
  onCleanup(() => ledger.destroy());
  const v3 = probeV3();

  console.log(
    `loadtest scale=${scale} seed=${seed} node=${process.version} DynamoDB Local ${endpoint} (pid ${java.pid}) sandbox ${sandboxUrl}`,
  );
  console.log(v3.note);
  if (Number(process.versions.node.split('.')[0]) < 24) {
    console.log(
      `warning: Node ${process.version}; the project pins Node 24 (run through npm run loadtest / npx)`,
    );
  }
  const ctx: Ctx = { app, counter, ledger, endpoint, sandboxUrl, scale, seed, v3: v3.keys };
  let failed = 0;
  for (const scenario of SCENARIOS) {
    if (only && !only.has(scenario.id)) continue;
    let result: Result;
    try {
      result = await scenario.run(ctx);
    } catch (error) {
      result = {
        id: scenario.id,
        fields: [],
        failures: [`crashed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`],
        targets: [],
        notes: [],
      };
    }
    print(result);
    if (statusOf(result) === 'FAIL') failed++;
  }
  console.log(
    `loadtest ${failed === 0 ? 'passed' : `FAILED (${failed} scenario${failed === 1 ? '' : 's'})`} in ${((performance.now() - runStarted) / 1000).toFixed(1)}s`,
  );
  return failed === 0 ? 0 : 1;
}

let exitCode = 1;
try {
  exitCode = await main();
} catch (error) {
  console.error('loadtest aborted:', error);
} finally {
  await shutdown();
}
process.exit(exitCode);
