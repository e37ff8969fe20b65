import { envValue } from '#lib/env';
import { applyLocalEnv } from '#local/env';
import { createConfiguredSandbox } from './index';

applyLocalEnv();
const sandbox = createConfiguredSandbox();
const port = Number(envValue('SANDBOX_PORT', '3100'));
const url = await sandbox.listen(port);
console.log(`sandbox listening on ${url}`);
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    void sandbox.close().then(() => process.exit(0));
  });
}
