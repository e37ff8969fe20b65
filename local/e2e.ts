import { localEnv } from './env';
import { exitCode, runScript, startStack } from './stack-process';

/**
 * `npm run test:e2e [v2|v3 …]`: for each WeChat Pay version, starts the whole local stack (`npm start`), runs
 * `npm run demo`, `npm run doctor` and then the stack suite (the mini-program client helper, seed 000's calls and the simulator
 * page in headless Chromium) against it, and stops the stack. Exits non-zero if any of them fails.
 */
const versions = process.argv.slice(2).length ? process.argv.slice(2) : ['v2', 'v3'];
const env = localEnv();

let failed = false;
for (const version of versions) {
  console.log(`\n=== e2e: WECHAT_PAY_VERSION=${version} ===`);
  let stack: { stop: () => Promise<void> } | undefined;
  try {
    stack = await startStack({ WECHAT_PAY_VERSION: version });
    const demo = runScript('local/demo.ts', { WECHAT_PAY_VERSION: version });
    demo.stdout?.pipe(process.stdout);
    const code = await exitCode(demo);
    if (code !== 0) throw new Error(`demo failed on ${version} (exit ${code})`);
    const doctor = runScript('local/doctor-cli.ts', { WECHAT_PAY_VERSION: version });
    doctor.stdout?.pipe(process.stdout);
    if ((await exitCode(doctor)) !== 0) throw new Error(`doctor failed on ${version}`);
    const suite = runScript(
      'node_modules/vitest/vitest.mjs',
      {
        STACK_API_URL: `http://127.0.0.1:${env.PORT}`,
        STACK_SANDBOX_URL: `http://127.0.0.1:${env.SANDBOX_PORT}`,
      },
      { args: ['run', '--project', 'stack'] },
    );
    suite.stdout?.pipe(process.stdout);
    const suiteCode = await exitCode(suite);
    if (suiteCode !== 0) throw new Error(`stack suite failed on ${version} (exit ${suiteCode})`);
  } catch (error) {
    failed = true;
    console.error(`✘ ${(error as Error).message}`);
  } finally {
    await stack?.stop();
  }
}
process.exit(failed ? 1 : 0);
