import {
  fetchSecretsFromSsm,
  neededSecretNames,
  parseSecrets,
  SECRET_NAMES,
  type V2Secrets,
  type V3Secrets,
} from '#lib/secrets';
import { readSettings, type V2Settings, type V3Settings } from '#lib/settings';

/**
 * The configuration a function runs with: settings (`lib/settings.ts`) and the secrets it needs
 * (`lib/secrets.ts`), discriminated on `payVersion`. This is the only module family that reads
 * `process.env`. Secrets come from the environment locally (`SECRETS_SOURCE=env`) and from SSM on AWS
 * (`SECRETS_SOURCE=ssm`, set by serverless.yml).
 */
export type V2Config = V2Settings & V2Secrets;
export type V3Config = V3Settings & V3Secrets;
export type Config = V2Config | V3Config;

let cached: Promise<Config> | undefined;

/**
 * The whole configuration, loaded once per cold start and cached; every check of every value happens
 * here. A rejected load is not cached, so the next invocation retries (SSM throttling must not brick a
 * warm container) and a secret fixed in SSM is read again.
 * Throws ConfigError naming the setting or parameter.
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Promise<Config> {
  if (!cached) {
    const attempt = (async (): Promise<Config> => {
      const settings = readSettings(env);
      const needed = neededSecretNames(env, settings);
      const raw =
        env.SECRETS_SOURCE === 'ssm'
          ? await fetchSecretsFromSsm(settings, needed)
          : Object.fromEntries(SECRET_NAMES.map((name) => [name, env[name]]));
      return settings.payVersion === 'v2'
        ? { ...settings, ...parseSecrets(raw, settings, needed) }
        : { ...settings, ...parseSecrets(raw, settings, needed) };
    })();
    cached = attempt;
    attempt.catch(() => {
      // A malformed secret fixed in SSM is read again on the next invocation.
      if (cached === attempt) cached = undefined;
    });
  }
  return cached;
}

/** Test hook: forget the cached configuration so the next loadConfig() reads again. */
export function resetConfigCache(): void {
  cached = undefined;
}
