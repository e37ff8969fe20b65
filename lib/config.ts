import { ConfigError } from '#lib/errors';
import {
  fetchSecretsFromSsm,
  neededSecretNames,
  parseSecrets,
  paySecretNamesFor,
  type RawSecrets,
  SECRET_NAMES,
  type SecretName,
  type V2Secrets,
  type V3Secrets,
} from '#lib/secrets';
import { readSettings, type V2Settings, type V3Settings } from '#lib/settings';
import type { PayVersion } from '#lib/wechat-pay/fields';

/**
 * The configuration a function runs with: settings (`lib/settings.ts`) and the secrets it needs
 * (`lib/secrets.ts`), discriminated on `payVersion`. This is the only module family that reads
 * `process.env`. Secrets come from the environment locally (`SECRETS_SOURCE=env`) and from SSM on AWS
 * (`SECRETS_SOURCE=ssm`, set by serverless.yml).
 */
export type V2Config = V2Settings & V2Secrets & { previous?: V3Config };
export type V3Config = V3Settings & V3Secrets & { previous?: V2Config };
/**
 * `previous` is the configuration of the other pay version during a v2 ↔ v3 migration window
 * (WECHAT_PAY_MIGRATION_FROM), so that its in-flight orders are still notified, queried and closed with
 * their own version.
 */
export type Config = V2Config | V3Config;

let cached: Promise<Config> | undefined;

/**
 * The other pay version's configuration during a migration window (WECHAT_PAY_MIGRATION_FROM), with its own
 * pay secrets (they must be among SECRET_NAMES when that is set, and valid: ConfigError otherwise); undefined
 * without a window.
 */
function previousVersionConfig(
  env: NodeJS.ProcessEnv,
  version: PayVersion | '',
  needed: readonly SecretName[],
  raw: RawSecrets,
): V2Config | V3Config | undefined {
  if (!version) return undefined;
  const names = paySecretNamesFor(version);
  if (env.SECRET_NAMES !== undefined) {
    const missing = names.filter((name) => !needed.includes(name));
    if (missing.length > 0) {
      throw new ConfigError(
        `WECHAT_PAY_MIGRATION_FROM is ${version}, but SECRET_NAMES lacks ${missing.join(', ')}`,
      );
    }
  }
  const settings = readSettings({ ...env, WECHAT_PAY_VERSION: version, WECHAT_PAY_MIGRATION_FROM: '' });
  return settings.payVersion === 'v2'
    ? { ...settings, ...parseSecrets(raw, settings, names) }
    : { ...settings, ...parseSecrets(raw, settings, names) };
}

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
      const window = settings.payMigrationFrom;
      const needed =
        env.SECRET_NAMES === undefined && window
          ? [...neededSecretNames(env, settings), ...paySecretNamesFor(window)]
          : neededSecretNames(env, settings);
      const raw =
        env.SECRETS_SOURCE === 'ssm'
          ? await fetchSecretsFromSsm(settings, needed)
          : Object.fromEntries(SECRET_NAMES.map((name) => [name, env[name]]));
      const previous = previousVersionConfig(env, settings.payMigrationFrom, needed, raw);
      return settings.payVersion === 'v2'
        ? { ...settings, ...parseSecrets(raw, settings, needed), previous: previous as V3Config | undefined }
        : { ...settings, ...parseSecrets(raw, settings, needed), previous: previous as V2Config | undefined };
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
