/** Parent side of load/worker.ts: fork, wait until its modules are loaded, hand it notifies, collect results. */
import { fork } from 'node:child_process';
import { resolve } from 'node:path';
import type { Delivery } from './app';
import { track } from './stack';
import type { WorkerDone } from './worker';

export interface WorkerHandle {
  version: 'v2' | 'v3';
  pid: number;
  ready: Promise<void>;
  /** Starts a run; resolves with the worker's report. One run at a time. */
  run(deliveries: Delivery[], concurrency: number): Promise<WorkerDone>;
  /** Asks the worker to exit. */
  stop(): void;
}

/** Forks a worker whose process has WECHAT_PAY_VERSION=`version` and the current environment otherwise. */
export function forkWorker(version: 'v2' | 'v3'): WorkerHandle {
  const child = track(
    fork(resolve(import.meta.dirname, 'worker.ts'), [], {
      execArgv: ['--import', 'tsx'],
      env: { ...process.env, WECHAT_PAY_VERSION: version },
      serialization: 'advanced',
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    }),
  );
  let exited: (reason: Error) => void = () => {};
  const exitPromise = new Promise<never>((_, reject) => {
    exited = reject;
  });
  child.once('exit', (code, signal) => exited(new Error(`worker ${version} exited (${code ?? signal})`)));
  exitPromise.catch(() => {});
  const ready = Promise.race([
    new Promise<void>((resolveReady) => {
      const onMessage = (message: { type?: string }) => {
        if (message?.type === 'ready') {
          child.off('message', onMessage);
          resolveReady();
        }
      };
      child.on('message', onMessage);
    }),
    exitPromise,
  ]);
  return {
    version,
    pid: child.pid ?? 0,
    ready,
    run(deliveries, concurrency) {
      const done = new Promise<WorkerDone>((resolveDone) => {
        const onMessage = (message: WorkerDone) => {
          if (message?.type !== 'done') return;
          child.off('message', onMessage);
          resolveDone(message);
        };
        child.on('message', onMessage);
      });
      child.send({ type: 'run', deliveries, concurrency });
      return Promise.race([done, exitPromise]);
    },
    stop() {
      if (child.connected) child.send({ type: 'exit' });
    },
  };
}
