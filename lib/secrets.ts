import {
  createPrivateKey,
  createPublicKey,
  createSecretKey,
  type KeyObject,
  X509Certificate,
} from 'node:crypto';
import { getSecureParameters } from '#lib/clients/ssm';
import { ConfigError, ServiceUnavailableError } from '#lib/errors';
import type { Settings, V2Settings, V3Settings } from '#lib/settings';
import type { PayVersion } from '#lib/wechat-pay/fields';
import { createVerifier, type WechatPayVerifier } from '#lib/wechat-pay/v3-protocol';

/**
 * Secrets: which exist, which a function needs, where they live in SSM, and every check of their values
 * (lengths, PEM parsing, the v3 verifier), done once at load. A failure is a ConfigError naming the
 * parameter, never its value.
 */

export const SECRET_NAMES = [
  'WECHAT_SECRET',
  'JWT_SECRET',
  'WECHAT_MCH_KEY',
  'WECHAT_APIV3_KEY',
  'WECHAT_MCH_PRIVATE_KEY',
  'WECHAT_PAY_PUBLIC_KEY',
  'WECHAT_PAY_PLATFORM_CERTS',
  'WECHAT_MP_SECRET',
  'WECHAT_MCH_CERT',
] as const;
export type SecretName = (typeof SECRET_NAMES)[number];

/** Raw secret strings as they come from the environment or SSM. */
export type RawSecrets = Partial<Record<SecretName, string>>;

interface CommonSecrets {
  wechatSecret: string;
  /** The official account's AppSecret (WECHAT_MP_SECRET); '' when this function or stage has no H5. */
  mpSecret: string;
  jwtSecret: Uint8Array;
}

export interface V2Secrets extends CommonSecrets {
  /** The APIv2 key (32 letters or digits); '' when this function does not pay. */
  mchKey: string;
  /**
   * The merchant API certificate (WECHAT_MCH_CERT) and its private key (WECHAT_MCH_PRIVATE_KEY), PEM, checked to
   * match: v2 refunds present them over mutual TLS. Absent in functions that do not refund.
   */
  mchTls?: { cert: string; key: string };
}

export interface V3Secrets extends CommonSecrets {
  /**
   * The APIv3 key (32 bytes) as a secret KeyObject, imported once at load (decryptResource takes it as is);
   * 0 bytes (`symmetricKeySize` 0) when this function does not pay.
   */
  apiV3Key: KeyObject;
  /** The merchant API private key (RSA) that signs requests and paySign. */
  mchPrivateKey?: KeyObject;
  payPublicKeyPem: string;
  platformCertPems: string[];
  /** Verifies WeChat Pay's signatures with the public key and/or platform certificates, built once. */
  payVerifier?: WechatPayVerifier;
}

/** Headers carry mchid and the serial between double quotes: only these characters may appear. */
const HEADER_TOKEN = /^[0-9A-Za-z_-]+$/;

/** Splits a text holding one or more PEM certificates into single PEMs. */
export function splitPems(text: string): string[] {
  return text.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
}

/** The SSM parameter name of a secret: `/<service>/<stage>/<NAME>`. */
export function ssmParameterName(settings: Pick<Settings, 'service' | 'stage'>, name: SecretName): string {
  return `/${settings.service}/${settings.stage}/${name}`;
}

/** The pay secrets of one version (what a migration window adds for the other version). */
export function paySecretNamesFor(payVersion: PayVersion): SecretName[] {
  return secretNamesFor(payVersion).filter((name) => !COMMON_SECRET_NAMES.includes(name));
}

/** Secrets every pay version shares (WECHAT_MP_SECRET is optional: absent, H5 features answer FEATURE_DISABLED). */
const COMMON_SECRET_NAMES: readonly SecretName[] = ['WECHAT_SECRET', 'JWT_SECRET', 'WECHAT_MP_SECRET'];

/**
 * What a function that refunds needs beside the pay secrets: v2's mutual-TLS certificate and key (v3 signs with
 * the merchant key it already has).
 */
export function refundSecretNamesFor(payVersion: PayVersion): SecretName[] {
  return payVersion === 'v2' ? ['WECHAT_MCH_CERT', 'WECHAT_MCH_PRIVATE_KEY'] : [];
}

/** Every secret the configured pay version uses (the local default). */
export function secretNamesFor(payVersion: PayVersion): SecretName[] {
  const common: SecretName[] = [...COMMON_SECRET_NAMES];
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
 * each role reads only its own parameters; set and empty means none), else every secret of the pay version
 * (plus v2's refund certificate and key when the local environment holds WECHAT_MCH_CERT).
 */
export function neededSecretNames(env: NodeJS.ProcessEnv, settings: Settings): SecretName[] {
  if (env.SECRET_NAMES === undefined) {
    // Locally (secrets from the environment) a v2 stack that holds WECHAT_MCH_CERT also refunds.
    const refunds =
      env.SECRETS_SOURCE === 'env' && env.WECHAT_MCH_CERT ? refundSecretNamesFor(settings.payVersion) : [];
    return [...new Set([...secretNamesFor(settings.payVersion), ...refunds])];
  }
  const listed = env.SECRET_NAMES.split(',')
    .map((name) => name.trim())
    .filter(Boolean);
  for (const name of listed) {
    if (!(SECRET_NAMES as readonly string[]).includes(name))
      throw new ConfigError(`SECRET_NAMES lists unknown ${name}`);
  }
  return listed as SecretName[];
}

/** Reads one raw secret set: required values, PEM normalisation. */
class SecretReader {
  constructor(
    readonly raw: RawSecrets,
    private readonly needed: readonly SecretName[],
  ) {}

  wants(name: SecretName): boolean {
    return this.needed.includes(name);
  }

  required(name: SecretName): string {
    const value = this.raw[name];
    if (value === undefined || value === '') throw new ConfigError(`${name} is missing`);
    return value;
  }

  /** PEMs often travel through env files with literal \n; normalise them. */
  pem(name: SecretName): string {
    return (this.raw[name] ?? '').replace(/\\n/g, '\n');
  }
}

function commonSecrets(read: SecretReader): CommonSecrets {
  const secrets: CommonSecrets = {
    wechatSecret: read.wants('WECHAT_SECRET') ? read.required('WECHAT_SECRET') : '',
    mpSecret: read.wants('WECHAT_MP_SECRET') ? (read.raw.WECHAT_MP_SECRET ?? '') : '',
    jwtSecret: new Uint8Array(),
  };
  if (read.wants('JWT_SECRET')) {
    const jwtSecret = read.required('JWT_SECRET');
    if (Buffer.byteLength(jwtSecret) < 32) throw new ConfigError('JWT_SECRET must be at least 32 bytes');
    secrets.jwtSecret = new TextEncoder().encode(jwtSecret);
  }
  return secrets;
}

function v2Secrets(read: SecretReader, settings: V2Settings): V2Secrets {
  const secrets: V2Secrets = { ...commonSecrets(read), mchKey: '' };
  if (read.wants('WECHAT_MCH_KEY')) {
    if (!settings.mchId) throw new ConfigError('WECHAT_MCH_ID is not set');
    secrets.mchKey = read.required('WECHAT_MCH_KEY');
    if (!/^[0-9A-Za-z]{32}$/.test(secrets.mchKey)) {
      throw new ConfigError('WECHAT_MCH_KEY must be 32 letters or digits');
    }
  }
  const tls = mchTls(read);
  if (tls) secrets.mchTls = tls;
  return secrets;
}

/**
 * The v2 mutual-TLS pair: WECHAT_MCH_CERT (a PEM certificate) and WECHAT_MCH_PRIVATE_KEY (its PEM key), checked to
 * match when both are wanted; either alone (the secrets script checks one value at a time) is checked to parse.
 */
function mchTls(read: SecretReader): { cert: string; key: string } | undefined {
  let certificate: X509Certificate | undefined;
  let privateKey: KeyObject | undefined;
  if (read.wants('WECHAT_MCH_CERT')) {
    read.required('WECHAT_MCH_CERT');
    try {
      certificate = new X509Certificate(read.pem('WECHAT_MCH_CERT'));
    } catch {
      throw new ConfigError('WECHAT_MCH_CERT is not a valid PEM certificate');
    }
  }
  if (read.wants('WECHAT_MCH_PRIVATE_KEY')) {
    read.required('WECHAT_MCH_PRIVATE_KEY');
    try {
      privateKey = createPrivateKey(read.pem('WECHAT_MCH_PRIVATE_KEY'));
    } catch {
      throw new ConfigError('WECHAT_MCH_PRIVATE_KEY is not a valid PEM private key');
    }
  }
  if (!certificate || !privateKey) return undefined;
  if (!certificate.checkPrivateKey(privateKey)) {
    throw new ConfigError('WECHAT_MCH_CERT does not match WECHAT_MCH_PRIVATE_KEY');
  }
  return { cert: read.pem('WECHAT_MCH_CERT'), key: read.pem('WECHAT_MCH_PRIVATE_KEY') };
}

function v3Secrets(read: SecretReader, settings: V3Settings): V3Secrets {
  const secrets: V3Secrets = {
    ...commonSecrets(read),
    apiV3Key: createSecretKey(Buffer.alloc(0)),
    payPublicKeyPem: '',
    platformCertPems: [],
  };
  if (read.wants('WECHAT_APIV3_KEY')) {
    if (!settings.mchId) throw new ConfigError('WECHAT_MCH_ID is not set');
    if (!HEADER_TOKEN.test(settings.mchId)) throw new ConfigError('WECHAT_MCH_ID must be letters or digits');
    const apiV3Key = Buffer.from(read.required('WECHAT_APIV3_KEY'), 'utf8');
    if (apiV3Key.length !== 32) throw new ConfigError('WECHAT_APIV3_KEY must be exactly 32 bytes');
    secrets.apiV3Key = createSecretKey(apiV3Key);
  }
  if (read.wants('WECHAT_MCH_PRIVATE_KEY')) {
    read.required('WECHAT_MCH_PRIVATE_KEY');
    if (!settings.mchSerialNo) throw new ConfigError('WECHAT_MCH_SERIAL_NO is not set');
    if (!HEADER_TOKEN.test(settings.mchSerialNo)) {
      throw new ConfigError('WECHAT_MCH_SERIAL_NO must be a hex certificate serial');
    }
    let key: KeyObject;
    try {
      key = createPrivateKey(read.pem('WECHAT_MCH_PRIVATE_KEY'));
    } catch {
      throw new ConfigError('WECHAT_MCH_PRIVATE_KEY is not a valid PEM private key');
    }
    if (key.asymmetricKeyType !== 'rsa')
      throw new ConfigError('WECHAT_MCH_PRIVATE_KEY must be an RSA private key');
    secrets.mchPrivateKey = key;
  }
  if (read.wants('WECHAT_PAY_PUBLIC_KEY') || read.wants('WECHAT_PAY_PLATFORM_CERTS')) {
    secrets.payPublicKeyPem = read.pem('WECHAT_PAY_PUBLIC_KEY');
    secrets.platformCertPems = splitPems(read.pem('WECHAT_PAY_PLATFORM_CERTS'));
    secrets.payVerifier = payVerifier(secrets, settings);
  }
  return secrets;
}

/** Checks the WeChat Pay public key and platform certificates one by one, then builds the verifier. */
function payVerifier(secrets: V3Secrets, settings: V3Settings): WechatPayVerifier {
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
  try {
    return createVerifier({
      publicKey: secrets.payPublicKeyPem
        ? { id: settings.payPublicKeyId, pem: secrets.payPublicKeyPem }
        : undefined,
      platformCertificates: secrets.platformCertPems,
    });
  } catch (error) {
    throw new ConfigError(`WECHAT_PAY_PUBLIC_KEY / WECHAT_PAY_PLATFORM_CERTS: ${(error as Error).message}`);
  }
}

/**
 * Validates the raw secret strings (from env or SSM) a function needs into typed secrets of the settings'
 * pay version; throws ConfigError naming the parameter, never its value. Secrets not in `needed` stay empty.
 */
export function parseSecrets(
  raw: RawSecrets,
  settings: V2Settings,
  needed?: readonly SecretName[],
): V2Secrets;
export function parseSecrets(
  raw: RawSecrets,
  settings: V3Settings,
  needed?: readonly SecretName[],
): V3Secrets;
export function parseSecrets(
  raw: RawSecrets,
  settings: Settings,
  needed?: readonly SecretName[],
): V2Secrets | V3Secrets;
export function parseSecrets(
  raw: RawSecrets,
  settings: Settings,
  needed: readonly SecretName[] = secretNamesFor(settings.payVersion),
): V2Secrets | V3Secrets {
  const read = new SecretReader(raw, needed);
  return settings.payVersion === 'v2' ? v2Secrets(read, settings) : v3Secrets(read, settings);
}

/** A timeout, the deadline, throttling or an SSM-side 5xx: worth a retry, unlike a missing permission. */
function isTransientSsmFailure(error: unknown): boolean {
  const { name, $metadata } = error as { name?: string; $metadata?: { httpStatusCode?: number } };
  const transient = [
    'TimeoutError',
    'AbortError',
    'DeadlineExceededError',
    'SsmDeadlineError',
    'ThrottlingException',
  ];
  return transient.includes(name ?? '') || ($metadata?.httpStatusCode ?? 0) >= 500;
}

/**
 * The raw secrets from SSM SecureStrings `/<service>/<stage>/<NAME>` in batched, decrypted GetParameters
 * calls that end within `settings.ssmTimeoutMs`. Throws ConfigError naming the path of a missing parameter
 * or of one that is not a SecureString (or naming a permanent failure such as AccessDenied), and
 * ServiceUnavailableError (503 SECRETS_UNAVAILABLE) when SSM does not answer in time, throttles or fails; v3's public
 * key and platform certificates are alternatives, so either may be absent; WECHAT_MP_SECRET is optional.
 */
export async function fetchSecretsFromSsm(
  settings: Settings,
  names: readonly SecretName[],
): Promise<RawSecrets> {
  const paths = names.map((name) => ssmParameterName(settings, name));
  let answer: Awaited<ReturnType<typeof getSecureParameters>>;
  try {
    answer = await getSecureParameters(paths, { timeoutMs: settings.ssmTimeoutMs });
  } catch (error) {
    const name = (error as Error).name;
    // SSM not answering in time, throttling or failing is transient: the caller answers 503 and retries.
    if (isTransientSsmFailure(error)) {
      throw new ServiceUnavailableError(
        '服务繁忙，请稍后再试',
        'SECRETS_UNAVAILABLE',
        `SSM read failed: ${name}`,
      );
    }
    throw new ConfigError(`SSM read failed: ${name}`);
  }
  const result: RawSecrets = {};
  for (const name of names) {
    const path = ssmParameterName(settings, name);
    const value = answer.values[path];
    const optionalInV3 = name === 'WECHAT_PAY_PUBLIC_KEY' || name === 'WECHAT_PAY_PLATFORM_CERTS';
    const optional = optionalInV3 || name === 'WECHAT_MP_SECRET';
    if (answer.notSecure.includes(path)) throw new ConfigError(`SSM parameter ${path} is not a SecureString`);
    if (value !== undefined) result[name] = value;
    else if (!optional) throw new ConfigError(`SSM parameter ${path} is missing`);
  }
  return result;
}
