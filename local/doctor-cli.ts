import { diagnose } from './doctor';
import { localEnv } from './env';

/**
 * `npm run doctor`: checks the local configuration (.env.example < .env < the environment) against the running
 * stack; `npm run doctor -- --stage prod` checks that stage's (secrets from SSM with the caller's AWS credentials,
 * tables by their deployed names). One line per check; exits 1 naming each failure.
 */
const at = process.argv.indexOf('--stage');
const stage = at > 0 ? process.argv[at + 1] : undefined;
const env = stage
  ? { ...process.env, STAGE: stage, SECRETS_SOURCE: process.env.SECRETS_SOURCE ?? 'ssm' }
  : localEnv({ ...process.env, SECRETS_SOURCE: 'env' });
Object.assign(process.env, env);

const results = await diagnose(env);
for (const { name, ok, detail } of results) console.log(`${ok ? '✔' : '✘'} ${name}: ${detail}`);
const failed = results.filter((result) => !result.ok);
if (failed.length > 0) {
  console.error(
    `\ndoctor: ${failed.length} check(s) failed: ${failed.map((result) => result.name).join(', ')}`,
  );
  process.exit(1);
}
console.log(`\ndoctor: all ${results.length} checks passed`);
