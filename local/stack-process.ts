import { type ChildProcess, spawn } from 'node:child_process';
import { resolve } from 'node:path';

/** Runs the whole local stack (`npm start`) or the demo as child processes: for test:e2e and the stack suite. */

const ROOT = resolve(import.meta.dirname, '..');

/** Runs a script (path from the repo root) with tsx; stdout piped (the caller forwards or reads it), stderr inherited. */
export function runScript(
  script: string,
  env: NodeJS.ProcessEnv,
  options: { detached?: boolean; args?: string[] } = {},
): ChildProcess {
  return spawn(process.execPath, ['--import', 'tsx', resolve(ROOT, script), ...(options.args ?? [])], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
    detached: options.detached ?? false,
  });
}

/** Resolves when the stack prints its `ready` line (its output goes to `echo`); rejects on exit or timeout. */
export function waitForReady(
  child: ChildProcess,
  timeoutMs: number,
  echo: (chunk: Buffer) => void = (chunk) => process.stdout.write(chunk),
): Promise<void> {
  return new Promise((resolveReady, reject) => {
    const timer = setTimeout(() => reject(new Error('stack did not print ready in time')), timeoutMs);
    let buffered = '';
    child.stdout?.on('data', (chunk: Buffer) => {
      echo(chunk);
      buffered += chunk.toString();
      if (/^ready$/m.test(buffered)) {
        clearTimeout(timer);
        resolveReady();
      }
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`stack exited early (${code})`));
    });
  });
}

/** The child's exit code once it exits. */
export function exitCode(child: ChildProcess): Promise<number> {
  return new Promise((done) => child.on('exit', (code) => done(code ?? 1)));
}

/** Starts `npm start` (local/start.ts) with `env`; resolves once it is ready, with a stop function. */
export async function startStack(
  env: NodeJS.ProcessEnv,
  echo?: (chunk: Buffer) => void,
): Promise<{ stop: () => Promise<void> }> {
  const stack = runScript('local/start.ts', env, { detached: true });
  const stopped = exitCode(stack);
  const stop = async () => {
    if (stack.pid && stack.exitCode === null) process.kill(stack.pid, 'SIGTERM');
    await stopped;
  };
  try {
    await waitForReady(stack, 180_000, echo);
  } catch (error) {
    await stop();
    throw error;
  }
  return { stop };
}
