import { type ChildProcess, spawn } from 'node:child_process';
import { resolve } from 'node:path';

/**
 * `npm run test:e2e [v2|v3 …]`: for each WeChat Pay version, starts the whole local stack (`npm start`),
 * runs `npm run demo` against it, and stops the stack. Exits non-zero if any demo fails.
 */
const ROOT = resolve(import.meta.dirname, '..');
const versions = process.argv.slice(2).length ? process.argv.slice(2) : ['v2', 'v3'];

function run(script: string, env: NodeJS.ProcessEnv, detached = false): ChildProcess {
  return spawn(process.execPath, ['--import', 'tsx', resolve(ROOT, script)], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
    detached,
  });
}

function waitForReady(child: ChildProcess, timeoutMs: number): Promise<void> {
  return new Promise((resolveReady, reject) => {
    const timer = setTimeout(() => reject(new Error('stack did not print ready in time')), timeoutMs);
    let buffered = '';
    child.stdout?.on('data', (chunk: Buffer) => {
      process.stdout.write(chunk);
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

function exitCode(child: ChildProcess): Promise<number> {
  return new Promise((done) => child.on('exit', (code) => done(code ?? 1)));
}

let failed = false;
for (const version of versions) {
  console.log(`\n=== e2e: WECHAT_PAY_VERSION=${version} ===`);
  const stack = run('local/start.ts', { WECHAT_PAY_VERSION: version }, true);
  const stopped = exitCode(stack);
  try {
    await waitForReady(stack, 180_000);
    const demo = run('local/demo.ts', { WECHAT_PAY_VERSION: version });
    demo.stdout?.pipe(process.stdout);
    const code = await exitCode(demo);
    if (code !== 0) throw new Error(`demo failed on ${version} (exit ${code})`);
  } catch (error) {
    failed = true;
    console.error(`✘ ${(error as Error).message}`);
  } finally {
    if (stack.pid && stack.exitCode === null) process.kill(stack.pid, 'SIGTERM');
    await stopped;
  }
}
process.exit(failed ? 1 : 0);
