import { createPrivateKey, createPublicKey, type KeyObject, X509Certificate } from 'node:crypto';
import { getSecureParameters } from '#lib/clients/ssm';
import { ConfigError } from './errors';

/**
 * The only module that reads `process.env`. Plain settings come from the environment (with production
 * defaults below; `.env.example` holds the sandbox values used locally). Secrets come from the
 * environment locally (`SECRETS_SOURCE=env`) and from SSM SecureStrings `/<service>/<stage>/<NAME>` on
 * AWS (`SECRETS_SOURCE=ssm`, set by serverless.yml), fetched in one batched call per cold start.
 */

export const SECRET_NAMES = [
  'WECHAT_SECRET',
  'JWT_SECRET',
  'WECHAT_MCH_KEY',
  'WECHAT_APIV3_KEY',
  'WECHAT_MCH_PRIVATE_KEY',
  'WECHAT_PAY_PUBLIC_KEY',
  'WECHAT_PAY_PLATFORM_CERTS',
] as const;
export type SecretName = (typeof SECRET_NAMES)[number];

export type PayVersion = 'v2' | 'v3';
export type V2SignType = 'MD5' | 'HMAC-SHA256';

export interface Settings {
  service: string;
  stage: string;
  usersTable: string;
  ordersTable: string;
  appId: string;
  mchId: string;
  apiBase: string;
  payApiBase: string;
  notifyUrl: string;
  payVersion: PayVersion;
  v2SignType: V2SignType;
  mchSerialNo: string;
  payPublicKeyId: string;
  jwtIssuer: string;
  jwtAudience: string;
  /** Session lifetime in seconds. */
  jwtTtlSeconds: number;
}

export interface Secrets {
  wechatSecret: string;
  jwtSecret: Uint8Array;
  /** v2 merchant key (32 chars); '' when v2 is not configured. */
  mchKey: string;
  /** APIv3 key (32 bytes); empty when v3 is not configured. */
  apiV3Key: Buffer;
  mchPrivateKey?: KeyObject;
  payPublicKeyPem: string;
  platformCertPems: string[];
}

export interface Config extends Settings, Secrets {}

const DEFAULTS: Record<string, string> = {
  SERVICE_NAME: 'wechat-miniprogram-backend',
  STAGE: 'dev',
  WECHAT_API_BASE: 'https://api.weixin.qq.com',
  WECHAT_PAY_API_BASE: 'https://api.mch.weixin.qq.com',
  WECHAT_PAY_VERSION: 'v2',
  WECHAT_PAY_SIGN_TYPE: 'MD5',
  JWT_TTL_SECONDS: String(7 * 24 * 3600),
  JWT_AUDIENCE: 'miniprogram',
  WECHAT_NOTIFY_URL: '',
  WECHAT_MCH_ID: '',
  WECHAT_MCH_SERIAL_NO: '',
  WECHAT_PAY_PUBLIC_KEY_ID: '',
};

function setting(env: NodeJS.ProcessEnv, name: string): string {
  const value = env[name] ?? DEFAULTS[name];
  if (value === undefined || value === '') throw new ConfigError(`${name} is not set`);
  return value;
}

function optional(env: NodeJS.ProcessEnv, name: string): string {
  return env[name] ?? DEFAULTS[name] ?? '';
}

function oneOf<T extends string>(name: string, value: string, allowed: readonly T[]): T {
  if (!(allowed as readonly string[]).includes(value)) {
    throw new ConfigError(`${name} must be one of ${allowed.join(', ')}`);
  }
  return value as T;
}

/** Plain (non-secret) settings from the environment; throws ConfigError naming the variable. */
export function readSettings(env: NodeJS.ProcessEnv = process.env): Settings {
  const service = setting(env, 'SERVICE_NAME');
  const stage = setting(env, 'STAGE');
  const ttl = Number(setting(env, 'JWT_TTL_SECONDS'));
  if (!Number.isInteger(ttl) || ttl < 60 || ttl > 90 * 24 * 3600) {
    throw new ConfigError('JWT_TTL_SECONDS must be an integer between 60 and 7776000');
  }
  const payPublicKeyId = optional(env, 'WECHAT_PAY_PUBLIC_KEY_ID');
  if (payPublicKeyId && !/^PUB_KEY_ID_\d+$/.test(payPublicKeyId)) {
    throw new ConfigError('WECHAT_PAY_PUBLIC_KEY_ID must look like PUB_KEY_ID_<digits>');
  }
  return {
    service,
    stage,
    usersTable: optional(env, 'USERS_TABLE') || `${service}-${stage}-users`,
    ordersTable: optional(env, 'ORDERS_TABLE') || `${service}-${stage}-orders`,
    appId: setting(env, 'WECHAT_APPID'),
    mchId: optional(env, 'WECHAT_MCH_ID'),
    apiBase: setting(env, 'WECHAT_API_BASE').replace(/\/+$/, ''),
    payApiBase: setting(env, 'WECHAT_PAY_API_BASE').replace(/\/+$/, ''),
    notifyUrl: optional(env, 'WECHAT_NOTIFY_URL'),
    payVersion: oneOf('WECHAT_PAY_VERSION', setting(env, 'WECHAT_PAY_VERSION'), ['v2', 'v3'] as const),
    v2SignType: oneOf('WECHAT_PAY_SIGN_TYPE', setting(env, 'WECHAT_PAY_SIGN_TYPE'), [
      'MD5',
      'HMAC-SHA256',
    ] as const),
    mchSerialNo: optional(env, 'WECHAT_MCH_SERIAL_NO'),
    payPublicKeyId,
    jwtIssuer: optional(env, 'JWT_ISSUER') || service,
    jwtAudience: setting(env, 'JWT_AUDIENCE'),
    jwtTtlSeconds: ttl,
  };
}

/** Splits a text holding one or more PEM certificates into single PEMs. */
export function splitPems(text: string): string[] {
  return text.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
}

/**
 * Validates the raw secret strings (from env or SSM) a function needs into typed secrets; throws
 * ConfigError naming the parameter, never its value. Secrets not in `needed` are left empty.
 */
export function parseSecrets(
  raw: Partial<Record<SecretName, string>>,
  settings: Settings,
  needed: readonly SecretName[] = secretNamesFor(settings.payVersion),
): Secrets {
  const wants = (name: SecretName) => needed.includes(name);
  const required = (name: SecretName): string => {
    const value = raw[name];
    if (value === undefined || value === '') throw new ConfigError(`${name} is missing`);
    return value;
  };
  // PEMs often travel through env files with literal \n; normalise them.
  const pem = (name: SecretName): string => (raw[name] ?? '').replace(/\\n/g, '\n');

  const secrets: Secrets = {
    wechatSecret: wants('WECHAT_SECRET') ? required('WECHAT_SECRET') : '',
    jwtSecret: new Uint8Array(),
    mchKey: '',
    apiV3Key: Buffer.alloc(0),
    payPublicKeyPem: '',
    platformCertPems: [],
  };
  if (wants('JWT_SECRET')) {
    const jwtSecret = required('JWT_SECRET');
    if (Buffer.byteLength(jwtSecret) < 32) throw new ConfigError('JWT_SECRET must be at least 32 bytes');
    secrets.jwtSecret = new TextEncoder().encode(jwtSecret);
  }
  if (wants('WECHAT_MCH_KEY')) {
    secrets.mchKey = required('WECHAT_MCH_KEY');
    if (!/^[0-9A-Za-z]{32}$/.test(secrets.mchKey)) {
      throw new ConfigError('WECHAT_MCH_KEY must be 32 letters or digits');
    }
  }
  if (wants('WECHAT_APIV3_KEY')) {
    secrets.apiV3Key = Buffer.from(required('WECHAT_APIV3_KEY'), 'utf8');
    if (secrets.apiV3Key.length !== 32) throw new ConfigError('WECHAT_APIV3_KEY must be exactly 32 bytes');
  }
  if (wants('WECHAT_MCH_PRIVATE_KEY')) {
    required('WECHAT_MCH_PRIVATE_KEY');
    try {
      secrets.mchPrivateKey = createPrivateKey(pem('WECHAT_MCH_PRIVATE_KEY'));
    } catch {
      throw new ConfigError('WECHAT_MCH_PRIVATE_KEY is not a valid PEM private key');
    }
  }
  if (wants('WECHAT_PAY_PUBLIC_KEY') || wants('WECHAT_PAY_PLATFORM_CERTS')) {
    secrets.payPublicKeyPem = pem('WECHAT_PAY_PUBLIC_KEY');
    secrets.platformCertPems = splitPems(pem('WECHAT_PAY_PLATFORM_CERTS'));
    if (!secrets.payPublicKeyPem && secrets.platformCertPems.length === 0) {
      throw new ConfigError('WECHAT_PAY_PUBLIC_KEY or WECHAT_PAY_PLATFORM_CERTS must be set for v3');
    }
    if (secrets.payPublicKeyPem) {
      if (!settings.payPublicKeyId) throw new ConfigError('WECHAT_PAY_PUBLIC_KEY_ID is not set');
      try {
        createPublicKey(secrets.payPublicKeyPem);
      } catch {
        throw new ConfigError('WECHAT_PAY_PUBLIC_KEY is not a valid PEM public key');
      }
    }
    for (const cert of secrets.platformCertPems) {
      try {
        new X509Certificate(cert);
      } catch {
        throw new ConfigError('WECHAT_PAY_PLATFORM_CERTS holds an invalid certificate');
      }
    }
  }
  const paying = wants('WECHAT_MCH_KEY') || wants('WECHAT_APIV3_KEY');
  if (paying && !settings.mchId) throw new ConfigError('WECHAT_MCH_ID is not set');
  if (wants('WECHAT_MCH_PRIVATE_KEY') && !settings.mchSerialNo) {
    throw new ConfigError('WECHAT_MCH_SERIAL_NO is not set');
  }
  return secrets;
}

/** The SSM parameter name of a secret: `/<service>/<stage>/<NAME>`. */
export function ssmParameterName(settings: Pick<Settings, 'service' | 'stage'>, name: SecretName): string {
  return `/${settings.service}/${settings.stage}/${name}`;
}

/** Every secret the configured pay version uses (the local default). */
export function secretNamesFor(payVersion: PayVersion): SecretName[] {
  const common: SecretName[] = ['WECHAT_SECRET', 'JWT_SECRET'];
  return payVersion === 'v2'
    ? [...common, 'WECHAT_MCH_KEY']
    : [
        ...common,
        'WECHAT_APIV3_KEY',
        'WECHAT_MCH_PRIVATE_KEY',
        'WECHAT_PAY_PUBLIC_KEY',
        'WECHAT_PAY_PLATFORM_CERTS',
      ];
}

/**
 * The secrets this function needs: `SECRET_NAMES` (comma-separated, set per function in serverless.yml so
 * each role reads only its own parameters), else every secret of the pay version.
 */
export function neededSecretNames(env: NodeJS.ProcessEnv, settings: Settings): SecretName[] {
  const listed = (env.SECRET_NAMES ?? '')
    .split(',')
    .map((name) => name.trim())
    .filter(Boolean);
  if (listed.length === 0) return secretNamesFor(settings.payVersion);
  for (const name of listed) {
    if (!(SECRET_NAMES as readonly string[]).includes(name))
      throw new ConfigError(`SECRET_NAMES lists unknown ${name}`);
  }
  return listed as SecretName[];
}

/** How long a cold start may wait for SSM (`SSM_TIMEOUT_MS`, set per function to fit its Lambda timeout). */
function ssmTimeoutMs(env: NodeJS.ProcessEnv): number {
  const value = Number(env.SSM_TIMEOUT_MS ?? 3000);
  if (!Number.isInteger(value) || value < 100)
    throw new ConfigError('SSM_TIMEOUT_MS must be an integer ≥ 100');
  return value;
}

async function fetchSecretsFromSsm(
  settings: Settings,
  names: readonly SecretName[],
  timeoutMs: number,
): Promise<Partial<Record<SecretName, string>>> {
  const paths = names.map((name) => ssmParameterName(settings, name));
  let answer: Awaited<ReturnType<typeof getSecureParameters>>;
  try {
    answer = await getSecureParameters(paths, { timeoutMs });
  } catch (error) {
    throw new ConfigError(`SSM read failed: ${(error as Error).name}`);
  }
  const result: Partial<Record<SecretName, string>> = {};
  for (const name of names) {
    const path = ssmParameterName(settings, name);
    const value = answer.values[path];
    // Platform certificates and the public key are alternatives in v3: either may be absent.
    const optionalInV3 = name === 'WECHAT_PAY_PUBLIC_KEY' || name === 'WECHAT_PAY_PLATFORM_CERTS';
    if (answer.notSecure.includes(path)) throw new ConfigError(`SSM parameter ${path} is not a SecureString`);
    if (value !== undefined) result[name] = value;
    else if (!optionalInV3) throw new ConfigError(`SSM parameter ${path} is missing`);
  }
  return result;
}

let cached: Promise<Config> | undefined;

/**
 * The whole configuration, loaded once per cold start and cached. A rejected load is not cached, so
 * the next invocation retries (SSM throttling must not brick a warm container).
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Promise<Config> {
  if (!cached) {
    const attempt = (async () => {
      const settings = readSettings(env);
      const needed = neededSecretNames(env, settings);
      const raw =
        env.SECRETS_SOURCE === 'ssm'
          ? await fetchSecretsFromSsm(settings, needed, ssmTimeoutMs(env))
          : Object.fromEntries(SECRET_NAMES.map((name) => [name, env[name]]));
      return { ...settings, ...parseSecrets(raw, settings, needed) };
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

/** Local tooling (sandbox, runner, tests) reads the same names; this keeps process.env access here. */
export function envValue(name: string, fallback = ''): string {
  return process.env[name] ?? fallback;
}
