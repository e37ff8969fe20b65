import { ConfigError } from '#lib/errors';
import { type PayVersion, V2_SIGN_TYPES, type V2SignType } from '#lib/wechat-pay/fields';

/**
 * Plain (non-secret) settings, read from the environment with the production defaults below
 * (`.env.example` holds the sandbox values used locally). Secrets live in `lib/secrets.ts`.
 */

interface CommonSettings {
  service: string;
  stage: string;
  usersTable: string;
  ordersTable: string;
  appId: string;
  mchId: string;
  apiBase: string;
  payApiBase: string;
  notifyUrl: string;
  jwtIssuer: string;
  jwtAudience: string;
  /** Session lifetime in seconds. */
  jwtTtlSeconds: number;
  /**
   * WECHAT_PAY_MIGRATION_FROM: the other pay version during a v2 ↔ v3 migration window (its in-flight orders
   * keep being notified, queried and closed with it), or '' when there is none.
   */
  payMigrationFrom: PayVersion | '';
  /** How long a cold start may wait for SSM, milliseconds (SSM_TIMEOUT_MS, set per function to fit its timeout). */
  ssmTimeoutMs: number;
  /** WECHAT_MP_APPID: the official account (公众号) AppID used by H5 pages; '' when H5 is not configured. */
  mpAppId: string;
  /** WECHAT_OPEN_BASE: where WeChat web OAuth's authorize page lives (the sandbox locally). */
  openBase: string;
  /** H5_ORIGINS: origins (scheme://host[:port]) H5 redirects and JS-SDK page URLs must belong to; [] = none. */
  h5Origins: string[];
  /**
   * PUBLIC_API_URL: the URL browsers reach this API at (`https://host[:port][/base path]`, no trailing slash)
   * when a proxy in front of API Gateway (CloudFront) sends it API Gateway's own Host; the H5 OAuth callback
   * and its binding cookie are built from it. '' = from each request's Host and path.
   */
  publicApiUrl: string;
  /**
   * WECHAT_PAY_MTLS_BASE: where v2's mutual-TLS calls (`/secapi/pay/refund`) go; default WECHAT_PAY_API_BASE
   * (WeChat serves both on one host; the local sandbox has a separate HTTPS listener).
   */
  payMtlsBase: string;
  /**
   * WECHAT_PAY_CA: extra CA certificate(s) (PEM) the v2 mutual-TLS client trusts. Local only (the sandbox's own
   * CA); never set on AWS, where the system trust store verifies WeChat. Verification is never turned off.
   */
  payCaPem: string;
}

export interface V2Settings extends CommonSettings {
  payVersion: 'v2';
  v2SignType: V2SignType;
}

export interface V3Settings extends CommonSettings {
  payVersion: 'v3';
  /** The merchant API certificate serial (WECHAT_MCH_SERIAL_NO); '' until a pay function needs it. */
  mchSerialNo: string;
  /** `PUB_KEY_ID_<digits>` of the WeChat Pay public key; '' in platform-certificate mode. */
  payPublicKeyId: string;
}

/** The settings, discriminated on the WeChat Pay API version. */
export type Settings = V2Settings | V3Settings;

const DEFAULTS: Record<string, string> = {
  SERVICE_NAME: 'wechat-miniprogram-backend',
  STAGE: 'dev',
  WECHAT_API_BASE: 'https://api.weixin.qq.com',
  WECHAT_PAY_API_BASE: 'https://api.mch.weixin.qq.com',
  WECHAT_OPEN_BASE: 'https://open.weixin.qq.com',
  WECHAT_PAY_VERSION: 'v2',
  WECHAT_PAY_SIGN_TYPE: 'MD5',
  JWT_TTL_SECONDS: String(7 * 24 * 3600),
  JWT_AUDIENCE: 'miniprogram',
  SSM_TIMEOUT_MS: '3000',
};

function required(env: NodeJS.ProcessEnv, name: string): string {
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

function readMpAppId(env: NodeJS.ProcessEnv): string {
  const value = optional(env, 'WECHAT_MP_APPID');
  if (value && !/^wx[0-9a-zA-Z]{16}$/.test(value)) {
    throw new ConfigError('WECHAT_MP_APPID must be an official account AppID (wx + 16 letters or digits)');
  }
  return value;
}

/** H5_ORIGINS: comma-separated origins, each `https://host[:port]` (http only for localhost / 127.0.0.1). */
function readH5Origins(env: NodeJS.ProcessEnv): string[] {
  const listed = optional(env, 'H5_ORIGINS')
    .split(',')
    .map((origin) => origin.trim())
    .filter(Boolean);
  return listed.map((origin) => {
    let url: URL;
    try {
      url = new URL(origin);
    } catch {
      throw new ConfigError('H5_ORIGINS must list origins like https://h5.example.com');
    }
    const local = url.hostname === 'localhost' || url.hostname === '127.0.0.1';
    if (
      url.origin !== origin.replace(/\/+$/, '') ||
      !(url.protocol === 'https:' || (local && url.protocol === 'http:'))
    ) {
      throw new ConfigError(
        'H5_ORIGINS must list origins like https://h5.example.com (no path, query or user)',
      );
    }
    return url.origin;
  });
}

/**
 * PUBLIC_API_URL: `https://host[:port][/base path]` (http only for localhost / 127.0.0.1), no query, fragment
 * or user, no `.`/`..` segments or characters a URL would percent-encode; a trailing slash is dropped (so are
 * a default port and the host's capitals). '' when unset; ConfigError naming it (not its value) otherwise.
 */
function readPublicApiUrl(env: NodeJS.ProcessEnv): string {
  const value = optional(env, 'PUBLIC_API_URL');
  if (!value) return '';
  const refused = () =>
    new ConfigError(
      'PUBLIC_API_URL must be the https URL browsers reach this API at, like https://api.example.com or ' +
        'https://example.com/api (no query, fragment or user)',
    );
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw refused();
  }
  const local = url.hostname === 'localhost' || url.hostname === '127.0.0.1';
  // The path as written must be the path URL keeps (no dot segments, nothing it would percent-encode).
  const writtenPath = value.replace(/^[a-z][a-z0-9+.-]*:\/\/[^/]*/i, '') || '/';
  if (
    !(url.protocol === 'https:' || (local && url.protocol === 'http:')) ||
    url.username ||
    url.password ||
    /[?#\s\\]/.test(value) ||
    url.pathname !== writtenPath
  ) {
    throw refused();
  }
  return `${url.origin}${url.pathname}`.replace(/\/+$/, '');
}

/** Plain settings from the environment; throws ConfigError naming the variable (never its value). */
export function readSettings(env: NodeJS.ProcessEnv = process.env): Settings {
  const service = required(env, 'SERVICE_NAME');
  const stage = required(env, 'STAGE');
  const ttl = Number(required(env, 'JWT_TTL_SECONDS'));
  if (!Number.isInteger(ttl) || ttl < 60 || ttl > 90 * 24 * 3600) {
    throw new ConfigError('JWT_TTL_SECONDS must be an integer between 60 and 7776000');
  }
  const ssmTimeoutMs = Number(required(env, 'SSM_TIMEOUT_MS'));
  if (!Number.isInteger(ssmTimeoutMs) || ssmTimeoutMs < 100) {
    throw new ConfigError('SSM_TIMEOUT_MS must be an integer ≥ 100');
  }
  const payVersionValue = required(env, 'WECHAT_PAY_VERSION');
  const migrationFrom = optional(env, 'WECHAT_PAY_MIGRATION_FROM');
  if (migrationFrom && (!['v2', 'v3'].includes(migrationFrom) || migrationFrom === payVersionValue)) {
    throw new ConfigError('WECHAT_PAY_MIGRATION_FROM must be the other pay version (v2 or v3), or empty');
  }
  const common: CommonSettings = {
    service,
    stage,
    usersTable: optional(env, 'USERS_TABLE') || `${service}-${stage}-users`,
    ordersTable: optional(env, 'ORDERS_TABLE') || `${service}-${stage}-orders`,
    appId: required(env, 'WECHAT_APPID'),
    mchId: optional(env, 'WECHAT_MCH_ID'),
    apiBase: required(env, 'WECHAT_API_BASE').replace(/\/+$/, ''),
    payApiBase: required(env, 'WECHAT_PAY_API_BASE').replace(/\/+$/, ''),
    notifyUrl: optional(env, 'WECHAT_NOTIFY_URL'),
    jwtIssuer: optional(env, 'JWT_ISSUER') || service,
    jwtAudience: required(env, 'JWT_AUDIENCE'),
    jwtTtlSeconds: ttl,
    payMigrationFrom: migrationFrom as PayVersion | '',
    ssmTimeoutMs,
    mpAppId: readMpAppId(env),
    openBase: required(env, 'WECHAT_OPEN_BASE').replace(/\/+$/, ''),
    h5Origins: readH5Origins(env),
    publicApiUrl: readPublicApiUrl(env),
    payMtlsBase: (optional(env, 'WECHAT_PAY_MTLS_BASE') || required(env, 'WECHAT_PAY_API_BASE')).replace(
      /\/+$/,
      '',
    ),
    payCaPem: optional(env, 'WECHAT_PAY_CA').replace(/\\n/g, '\n'),
  };
  const payVersion = oneOf('WECHAT_PAY_VERSION', required(env, 'WECHAT_PAY_VERSION'), ['v2', 'v3'] as const);
  if (payVersion === 'v2') {
    return {
      ...common,
      payVersion,
      v2SignType: oneOf('WECHAT_PAY_SIGN_TYPE', required(env, 'WECHAT_PAY_SIGN_TYPE'), V2_SIGN_TYPES),
    };
  }
  const payPublicKeyId = optional(env, 'WECHAT_PAY_PUBLIC_KEY_ID');
  if (payPublicKeyId && !/^PUB_KEY_ID_\d+$/.test(payPublicKeyId)) {
    throw new ConfigError('WECHAT_PAY_PUBLIC_KEY_ID must look like PUB_KEY_ID_<digits>');
  }
  return { ...common, payVersion, mchSerialNo: optional(env, 'WECHAT_MCH_SERIAL_NO'), payPublicKeyId };
}
