import { generateKeyPairSync } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { clearCaches } from '@aws-lambda-powertools/parameters';
import { GetParameterCommand, GetParametersCommand, SSMClient } from '@aws-sdk/client-ssm';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadConfig, resetConfigCache, type V2Config, type V3Config } from '#lib/config';
import { ConfigError, ServiceUnavailableError } from '#lib/errors';
import {
  neededSecretNames,
  parseSecrets,
  type SecretName,
  secretNamesFor,
  ssmParameterName,
} from '#lib/secrets';
import { readSettings, type V2Settings, type V3Settings } from '#lib/settings';

const FIXTURES = resolve(import.meta.dirname, '../../fixtures/wechat-pay');
const PRIVATE_KEY_PEM = readFileSync(resolve(FIXTURES, 'official-apiclient-test-key.pem'), 'utf8');
const PUBLIC_KEY_PEM = readFileSync(resolve(FIXTURES, 'official-wechatpay-public-key.pem'), 'utf8');
const PLATFORM_CERT_PEM = readFileSync(resolve(FIXTURES, 'go-platform-cert-F5765756002FDD77.pem'), 'utf8');

const JWT_SECRET = 'unit-test-jwt-secret-of-at-least-32-bytes';
const MCH_KEY = 'unitTestMchKey000000000000000000';
const APIV3_KEY = 'unitTestApiV3Key0000000000000000';

/** A minimal environment: only what has no production default. */
const BASE_ENV = { WECHAT_APPID: 'wx0123456789abcdef' };
const V2_ENV = { ...BASE_ENV, WECHAT_MCH_ID: '1900000109' };
const V3_ENV = {
  ...V2_ENV,
  WECHAT_PAY_VERSION: 'v3',
  WECHAT_MCH_SERIAL_NO: '3775B6A45ACD588826D15E583A95F5DD20E9D8B0',
  WECHAT_PAY_PUBLIC_KEY_ID: 'PUB_KEY_ID_0114232019112100000000000001',
};

const V2_RAW = { WECHAT_SECRET: 'unit-test-app-secret', JWT_SECRET, WECHAT_MCH_KEY: MCH_KEY };
const V3_RAW = {
  WECHAT_SECRET: 'unit-test-app-secret',
  JWT_SECRET,
  WECHAT_APIV3_KEY: APIV3_KEY,
  WECHAT_MCH_PRIVATE_KEY: PRIVATE_KEY_PEM,
  WECHAT_PAY_PUBLIC_KEY: PUBLIC_KEY_PEM,
};

/** Runs fn and returns the ConfigError it throws (fails the test if it throws anything else or nothing). */
function configErrorOf(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return error as ConfigError;
  }
  throw new Error('expected a ConfigError, but nothing was thrown');
}

/** Asserts a ConfigError names the parameter and never repeats the offending value. */
function expectNamesWithoutValue(error: ConfigError, name: string, value: string): void {
  expect(error.status).toBe(500);
  expect(error.code).toBe('CONFIG_ERROR');
  expect(error.detail).toContain(name);
  expect(error.message).not.toContain(value);
  expect(error.detail).not.toContain(value);
}

describe('readSettings', () => {
  it('uses the production defaults when only WECHAT_APPID is set', () => {
    // Act
    const settings = readSettings(BASE_ENV);

    // Assess
    expect(settings).toEqual({
      service: 'wechat-miniprogram-backend',
      stage: 'dev',
      usersTable: 'wechat-miniprogram-backend-dev-users',
      ordersTable: 'wechat-miniprogram-backend-dev-orders',
      appId: 'wx0123456789abcdef',
      mchId: '',
      apiBase: 'https://api.weixin.qq.com',
      payApiBase: 'https://api.mch.weixin.qq.com',
      notifyUrl: '',
      payVersion: 'v2',
      v2SignType: 'MD5',
      jwtIssuer: 'wechat-miniprogram-backend',
      jwtAudience: 'miniprogram',
      jwtTtlSeconds: 604800,
      payMigrationFrom: '',
      ssmTimeoutMs: 3000,
      mpAppId: '',
      openBase: 'https://open.weixin.qq.com',
      h5Origins: [],
      publicApiUrl: '',
      payMtlsBase: 'https://api.mch.weixin.qq.com',
      payCaPem: '',
    });
  });

  it('lets the environment override every default when variables are set', () => {
    // Prepare
    const env = {
      ...V3_ENV,
      SERVICE_NAME: 'shop',
      STAGE: 'prod',
      WECHAT_API_BASE: 'http://127.0.0.1:3100/',
      WECHAT_PAY_API_BASE: 'http://127.0.0.1:3100//',
      WECHAT_PAY_SIGN_TYPE: 'HMAC-SHA256',
      WECHAT_NOTIFY_URL: 'https://example.com/notify',
      JWT_TTL_SECONDS: '3600',
      JWT_ISSUER: 'issuer-x',
      JWT_AUDIENCE: 'audience-x',
    };

    // Act
    const settings = readSettings(env);

    // Assess
    expect(settings).toMatchObject({
      service: 'shop',
      stage: 'prod',
      usersTable: 'shop-prod-users',
      ordersTable: 'shop-prod-orders',
      mchId: '1900000109',
      apiBase: 'http://127.0.0.1:3100',
      payApiBase: 'http://127.0.0.1:3100',
      notifyUrl: 'https://example.com/notify',
      payVersion: 'v3',
      mchSerialNo: '3775B6A45ACD588826D15E583A95F5DD20E9D8B0',
      payPublicKeyId: 'PUB_KEY_ID_0114232019112100000000000001',
      jwtIssuer: 'issuer-x',
      jwtAudience: 'audience-x',
      jwtTtlSeconds: 3600,
    });
    expect(settings).not.toHaveProperty('v2SignType');
    expect(readSettings({ ...env, WECHAT_PAY_VERSION: 'v2' })).toMatchObject({ v2SignType: 'HMAC-SHA256' });
  });

  it('uses explicit table names when USERS_TABLE and ORDERS_TABLE are set', () => {
    // Act
    const settings = readSettings({ ...BASE_ENV, USERS_TABLE: 'users-x', ORDERS_TABLE: 'orders-x' });

    // Assess
    expect(settings.usersTable).toBe('users-x');
    expect(settings.ordersTable).toBe('orders-x');
  });

  it('throws a ConfigError naming WECHAT_APPID when it is not set', () => {
    // Act
    const error = configErrorOf(() => readSettings({}));

    // Assess
    expect(error.detail).toContain('WECHAT_APPID');
  });

  it('throws a ConfigError naming WECHAT_PAY_VERSION when it is neither v2 nor v3', () => {
    // Act
    const error = configErrorOf(() => readSettings({ ...BASE_ENV, WECHAT_PAY_VERSION: 'version-three' }));

    // Assess
    expectNamesWithoutValue(error, 'WECHAT_PAY_VERSION', 'version-three');
  });

  it('throws a ConfigError naming WECHAT_PAY_SIGN_TYPE when it is unknown', () => {
    // Act
    const error = configErrorOf(() => readSettings({ ...BASE_ENV, WECHAT_PAY_SIGN_TYPE: 'SHA1-ish' }));

    // Assess
    expectNamesWithoutValue(error, 'WECHAT_PAY_SIGN_TYPE', 'SHA1-ish');
  });

  it.each(['PUB_KEY_ID_abc', 'pub_key_id_0114', 'PUB_KEY_ID_12a', 'PUB_KEY_ID_0114\nX'])(
    'throws a ConfigError naming WECHAT_PAY_PUBLIC_KEY_ID when v3 has it as %j',
    (value) => {
      // Act
      const error = configErrorOf(() => readSettings({ ...V3_ENV, WECHAT_PAY_PUBLIC_KEY_ID: value }));

      // Assess
      expectNamesWithoutValue(error, 'WECHAT_PAY_PUBLIC_KEY_ID', value);
    },
  );

  it.each(['59', '7776001', '3600.5', 'week'])('throws a ConfigError when JWT_TTL_SECONDS is %s', (value) => {
    // Act
    const error = configErrorOf(() => readSettings({ ...BASE_ENV, JWT_TTL_SECONDS: value }));

    // Assess
    expect(error.detail).toContain('JWT_TTL_SECONDS');
  });

  it('reads the official account AppID, the OAuth base and the H5 origins (normalised to origins)', () => {
    // Act
    const settings = readSettings({
      ...BASE_ENV,
      WECHAT_MP_APPID: 'wx0f0ca1ac0ffee0d2',
      WECHAT_OPEN_BASE: 'http://127.0.0.1:3100/',
      H5_ORIGINS: ' https://h5.example.com , https://shop.example.com:8443/,http://localhost:5173',
    });

    // Assess
    expect(settings.mpAppId).toBe('wx0f0ca1ac0ffee0d2');
    expect(settings.openBase).toBe('http://127.0.0.1:3100');
    expect(settings.h5Origins).toEqual([
      'https://h5.example.com',
      'https://shop.example.com:8443',
      'http://localhost:5173',
    ]);
  });

  it.each(['wx123', 'gh_0f0ca1ac0ffee0d2', 'wx0f0ca1ac0ffee0d2!', ' wx0f0ca1ac0ffee0d2'])(
    'throws a ConfigError naming WECHAT_MP_APPID (not its value) when it is %j',
    (value) => {
      // Act
      const error = configErrorOf(() => readSettings({ ...BASE_ENV, WECHAT_MP_APPID: value }));

      // Assess
      expectNamesWithoutValue(error, 'WECHAT_MP_APPID', value);
    },
  );

  it.each([
    'h5.example.com',
    'http://h5.example.com',
    'https://h5.example.com/page',
    'https://h5.example.com?x=1',
    'https://user@h5.example.com',
    'javascript:alert(1)',
    'ftp://h5.example.com',
    'https://h5.example.com,//evil.example',
  ])('throws a ConfigError naming H5_ORIGINS when it lists %j', (value) => {
    // Act
    const error = configErrorOf(() => readSettings({ ...BASE_ENV, H5_ORIGINS: value }));

    // Assess
    expect(error.detail).toContain('H5_ORIGINS');
  });

  it.each([
    ['https://api.example.com', 'https://api.example.com'],
    ['https://api.example.com/', 'https://api.example.com'],
    ['https://example.com/api', 'https://example.com/api'],
    ['https://example.com/api/v1/', 'https://example.com/api/v1'],
    ['https://API.Example.com:443/api', 'https://api.example.com/api'],
    ['https://api.example.com:8443', 'https://api.example.com:8443'],
    ['http://127.0.0.1:3000', 'http://127.0.0.1:3000'],
    ['http://localhost:3000/dev/', 'http://localhost:3000/dev'],
  ])('reads PUBLIC_API_URL %j as %j', (value, expected) => {
    // Act
    const settings = readSettings({ ...BASE_ENV, PUBLIC_API_URL: value });

    // Assess
    expect(settings.publicApiUrl).toBe(expected);
  });

  it.each([
    'api.example.org',
    'http://api.example.org',
    'ftp://api.example.org',
    'javascript:alert(1)',
    'https:api.example.org',
    'https://api.example.org?stage=prod',
    'https://api.example.org/api?',
    'https://api.example.org/#/x',
    'https://user@api.example.org',
    'https://user:pw@api.example.org/api',
    'https://api.example.org/a/../b',
    'https://api.example.org/%2e%2e/api',
    'https://api.example.org/my api',
    'https://api.example.org\\api',
    ' https://api.example.org',
  ])('throws a ConfigError naming PUBLIC_API_URL (not its value) when it is %j', (value) => {
    // Act
    const error = configErrorOf(() => readSettings({ ...BASE_ENV, PUBLIC_API_URL: value }));

    // Assess
    expectNamesWithoutValue(error, 'PUBLIC_API_URL', value);
  });
});

describe('parseSecrets', () => {
  const v2Settings = readSettings(V2_ENV) as V2Settings;
  const v3Settings = readSettings(V3_ENV) as V3Settings;

  it('returns typed v2 secrets when every value is valid', () => {
    // Act
    const secrets = parseSecrets(V2_RAW, v2Settings);

    // Assess
    expect(secrets.wechatSecret).toBe('unit-test-app-secret');
    expect(new TextDecoder().decode(secrets.jwtSecret)).toBe(JWT_SECRET);
    expect(secrets.mchKey).toBe(MCH_KEY);
    expect(Object.keys(secrets).sort()).toEqual(['jwtSecret', 'mchKey', 'mpSecret', 'wechatSecret']);
  });

  it('returns typed v3 secrets when the PEMs parse', () => {
    // Act
    const secrets = parseSecrets(V3_RAW, v3Settings);

    // Assess
    expect(secrets.apiV3Key.type).toBe('secret');
    expect(secrets.apiV3Key.export().toString('utf8')).toBe(APIV3_KEY);
    expect(secrets.mchPrivateKey?.type).toBe('private');
    expect(secrets.payPublicKeyPem).toBe(PUBLIC_KEY_PEM);
    expect(secrets.payVerifier?.serials()).toEqual(['PUB_KEY_ID_0114232019112100000000000001']);
    expect('mchKey' in secrets).toBe(false);
  });

  it('accepts PEMs written with literal \\n when they come from an env file', () => {
    // Prepare
    const raw = { ...V3_RAW, WECHAT_MCH_PRIVATE_KEY: PRIVATE_KEY_PEM.replace(/\n/g, '\\n') };

    // Act
    const secrets = parseSecrets(raw, v3Settings);

    // Assess
    expect(secrets.mchPrivateKey?.type).toBe('private');
  });

  it('splits platform certificates when only WECHAT_PAY_PLATFORM_CERTS is set', () => {
    // Prepare
    const raw = {
      ...V3_RAW,
      WECHAT_PAY_PUBLIC_KEY: '',
      WECHAT_PAY_PLATFORM_CERTS: `${PLATFORM_CERT_PEM}\n${PLATFORM_CERT_PEM}`,
    };

    // Act
    const secrets = parseSecrets(raw, v3Settings);

    // Assess
    expect(secrets.platformCertPems).toHaveLength(2);
    expect(secrets.payPublicKeyPem).toBe('');
  });

  it('counts bytes, not characters, when JWT_SECRET is multi-byte', () => {
    // Prepare: 11 characters, 33 bytes
    const raw = { ...V2_RAW, JWT_SECRET: '密'.repeat(11) };

    // Act
    const secrets = parseSecrets(raw, v2Settings);

    // Assess
    expect(secrets.jwtSecret).toHaveLength(33);
  });

  it('throws a ConfigError naming JWT_SECRET when it is shorter than 32 bytes', () => {
    // Prepare
    const bad = 'only-31-bytes-of-jwt-secret-xyz';
    expect(Buffer.byteLength(bad)).toBe(31);

    // Act
    const error = configErrorOf(() => parseSecrets({ ...V2_RAW, JWT_SECRET: bad }, v2Settings));

    // Assess
    expectNamesWithoutValue(error, 'JWT_SECRET', bad);
  });

  it.each([
    ['31 chars', 'shortMchKey00000000000000000000'],
    ['33 chars', 'longMchKey00000000000000000000000'],
    ['32 chars with punctuation', 'badMchKey!000000000000000000000a'],
  ])('throws a ConfigError naming WECHAT_MCH_KEY when it has %s', (_label, bad) => {
    // Act
    const error = configErrorOf(() => parseSecrets({ ...V2_RAW, WECHAT_MCH_KEY: bad }, v2Settings));

    // Assess
    expectNamesWithoutValue(error, 'WECHAT_MCH_KEY', bad);
  });

  it.each([
    ['31 bytes', 'shortApiV3Key000000000000000000'],
    ['32 chars but 33 bytes', `é${'a'.repeat(31)}`],
  ])('throws a ConfigError naming WECHAT_APIV3_KEY when it has %s', (_label, bad) => {
    // Act
    const error = configErrorOf(() => parseSecrets({ ...V3_RAW, WECHAT_APIV3_KEY: bad }, v3Settings));

    // Assess
    expectNamesWithoutValue(error, 'WECHAT_APIV3_KEY', bad);
  });

  it('throws a ConfigError naming WECHAT_MCH_PRIVATE_KEY when the PEM does not parse', () => {
    // Prepare
    const bad = '-----BEGIN PRIVATE KEY-----\nbm90LWEta2V5LWF0LWFsbA==\n-----END PRIVATE KEY-----\n';

    // Act
    const error = configErrorOf(() => parseSecrets({ ...V3_RAW, WECHAT_MCH_PRIVATE_KEY: bad }, v3Settings));

    // Assess
    expectNamesWithoutValue(error, 'WECHAT_MCH_PRIVATE_KEY', 'bm90LWEta2V5LWF0LWFsbA');
  });

  it('throws a ConfigError naming WECHAT_PAY_PUBLIC_KEY when the PEM does not parse', () => {
    // Prepare
    const bad = '-----BEGIN PUBLIC KEY-----\nbm90LWEtcHVibGljLWtleQ==\n-----END PUBLIC KEY-----\n';

    // Act
    const error = configErrorOf(() => parseSecrets({ ...V3_RAW, WECHAT_PAY_PUBLIC_KEY: bad }, v3Settings));

    // Assess
    expectNamesWithoutValue(error, 'WECHAT_PAY_PUBLIC_KEY', 'bm90LWEtcHVibGljLWtleQ');
  });

  it('throws a ConfigError naming WECHAT_PAY_PLATFORM_CERTS when a certificate does not parse', () => {
    // Prepare
    const bad = '-----BEGIN CERTIFICATE-----\nbm90LWEtY2VydA==\n-----END CERTIFICATE-----';

    // Act
    const error = configErrorOf(() =>
      parseSecrets({ ...V3_RAW, WECHAT_PAY_PUBLIC_KEY: '', WECHAT_PAY_PLATFORM_CERTS: bad }, v3Settings),
    );

    // Assess
    expectNamesWithoutValue(error, 'WECHAT_PAY_PLATFORM_CERTS', 'bm90LWEtY2VydA');
  });

  it('throws a ConfigError when v3 has neither a public key nor platform certificates', () => {
    // Act
    const error = configErrorOf(() => parseSecrets({ ...V3_RAW, WECHAT_PAY_PUBLIC_KEY: '' }, v3Settings));

    // Assess
    expect(error.detail).toContain('WECHAT_PAY_PUBLIC_KEY');
    expect(error.detail).toContain('WECHAT_PAY_PLATFORM_CERTS');
  });

  it('throws a ConfigError naming WECHAT_PAY_PUBLIC_KEY_ID when a public key is set without its id', () => {
    // Prepare
    const settings = readSettings({ ...V3_ENV, WECHAT_PAY_PUBLIC_KEY_ID: '' });

    // Act
    const error = configErrorOf(() => parseSecrets(V3_RAW, settings));

    // Assess
    expect(error.detail).toContain('WECHAT_PAY_PUBLIC_KEY_ID');
  });

  it.each([
    ['WECHAT_MCH_SERIAL_NO', { WECHAT_MCH_SERIAL_NO: 'AB CD' }],
    ['WECHAT_MCH_SERIAL_NO', { WECHAT_MCH_SERIAL_NO: '' }],
    ['WECHAT_MCH_ID', { WECHAT_MCH_ID: '1900"000109' }],
  ])('throws a ConfigError naming %s when v3 cannot put it in the Authorization header', (name, env) => {
    // Act
    const error = configErrorOf(() =>
      parseSecrets(V3_RAW, readSettings({ ...V3_ENV, ...env }) as V3Settings),
    );

    // Assess
    expect(error.detail).toContain(name);
  });

  it('throws a ConfigError naming WECHAT_MCH_PRIVATE_KEY when the key is not RSA', () => {
    // Prepare
    const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({
      type: 'pkcs8',
      format: 'pem',
    });

    // Act
    const error = configErrorOf(() =>
      parseSecrets({ ...V3_RAW, WECHAT_MCH_PRIVATE_KEY: ec.toString() }, v3Settings),
    );

    // Assess
    expect(error.detail).toBe('WECHAT_MCH_PRIVATE_KEY must be an RSA private key');
  });

  it.each(Object.keys(V2_RAW) as SecretName[])(
    'throws a ConfigError naming %s when that v2 secret is missing',
    (name) => {
      // Prepare
      const raw: Partial<Record<SecretName, string>> = { ...V2_RAW };
      delete raw[name];

      // Act
      const error = configErrorOf(() => parseSecrets(raw, v2Settings));

      // Assess
      expect(error.detail).toBe(`${name} is missing`);
    },
  );

  it('throws a ConfigError naming the secret when its value is empty', () => {
    // Act
    const error = configErrorOf(() => parseSecrets({ ...V3_RAW, WECHAT_APIV3_KEY: '' }, v3Settings));

    // Assess
    expect(error.detail).toBe('WECHAT_APIV3_KEY is missing');
  });

  it('throws a ConfigError naming WECHAT_MCH_ID when a pay key is needed without a merchant id', () => {
    // Act
    const error = configErrorOf(() => parseSecrets(V2_RAW, readSettings(BASE_ENV)));

    // Assess
    expect(error.detail).toContain('WECHAT_MCH_ID');
  });

  it('leaves secrets empty and skips their checks when they are not needed', () => {
    // Act
    const secrets = parseSecrets(
      { JWT_SECRET, WECHAT_MCH_KEY: 'bad' },
      readSettings(BASE_ENV) as V2Settings,
      ['JWT_SECRET'],
    );

    // Assess
    expect(secrets.jwtSecret).toHaveLength(Buffer.byteLength(JWT_SECRET));
    expect(secrets.wechatSecret).toBe('');
    expect(secrets.mchKey).toBe('');
  });
});

describe('neededSecretNames', () => {
  it('returns the listed names when SECRET_NAMES is set', () => {
    // Act
    const names = neededSecretNames({ SECRET_NAMES: ' JWT_SECRET , WECHAT_SECRET,' }, readSettings(BASE_ENV));

    // Assess
    expect(names).toEqual(['JWT_SECRET', 'WECHAT_SECRET']);
  });

  it('returns every secret of the pay version when SECRET_NAMES is unset, and none when it is empty', () => {
    // Assess
    expect(neededSecretNames({}, readSettings(V2_ENV))).toEqual(secretNamesFor('v2'));
    expect(neededSecretNames({}, readSettings(V3_ENV))).toEqual([
      'WECHAT_SECRET',
      'JWT_SECRET',
      'WECHAT_MP_SECRET',
      'WECHAT_APIV3_KEY',
      'WECHAT_MCH_PRIVATE_KEY',
      'WECHAT_PAY_PUBLIC_KEY',
      'WECHAT_PAY_PLATFORM_CERTS',
    ]);
    expect(neededSecretNames({ SECRET_NAMES: ' , ' }, readSettings(V3_ENV))).toEqual([]);
    expect(neededSecretNames({ SECRET_NAMES: '' }, readSettings(V2_ENV))).toEqual([]);
    expect(secretNamesFor('v2')).toEqual([
      'WECHAT_SECRET',
      'JWT_SECRET',
      'WECHAT_MP_SECRET',
      'WECHAT_MCH_KEY',
    ]);
  });

  it('throws a ConfigError when SECRET_NAMES lists an unknown name', () => {
    // Act
    const error = configErrorOf(() =>
      neededSecretNames({ SECRET_NAMES: 'JWT_SECRET,AWS_SECRET_ACCESS_KEY' }, readSettings(BASE_ENV)),
    );

    // Assess
    expect(error.detail).toContain('SECRET_NAMES');
  });
});

describe('loadConfig', () => {
  const ssm = mockClient(SSMClient);
  const SSM_ENV = {
    ...V2_ENV,
    SECRETS_SOURCE: 'ssm',
    SERVICE_NAME: 'wechat-miniprogram-backend',
    STAGE: 'test',
  };
  const path = (name: SecretName) => `/wechat-miniprogram-backend/test/${name}`;
  const parameter = (name: SecretName, value: string) => ({
    Name: path(name),
    Type: 'SecureString' as const,
    Value: value,
  });
  const allParameters = {
    Parameters: [
      parameter('WECHAT_SECRET', V2_RAW.WECHAT_SECRET),
      parameter('JWT_SECRET', JWT_SECRET),
      parameter('WECHAT_MCH_KEY', MCH_KEY),
    ],
    InvalidParameters: [],
  };

  beforeEach(() => {
    resetConfigCache();
    clearCaches();
    ssm.reset();
  });
  afterEach(() => {
    resetConfigCache();
    clearCaches();
    ssm.reset();
  });

  it('names SSM parameters /<service>/<stage>/<NAME>', () => {
    // Assess
    expect(ssmParameterName({ service: 'svc', stage: 'prod' }, 'JWT_SECRET')).toBe('/svc/prod/JWT_SECRET');
  });

  it('reads every secret in exactly one decrypted GetParameters call when SECRETS_SOURCE is ssm', async () => {
    // Prepare
    ssm.on(GetParametersCommand).resolves(allParameters);

    // Act
    const config = await loadConfig(SSM_ENV);

    // Assess
    expect(ssm.calls()).toHaveLength(1);
    expect(ssm.commandCalls(GetParameterCommand)).toHaveLength(0);
    const input = ssm.commandCalls(GetParametersCommand)[0]?.args[0].input;
    expect(input?.WithDecryption).toBe(true);
    expect([...(input?.Names ?? [])].sort()).toEqual(
      [path('WECHAT_SECRET'), path('JWT_SECRET'), path('WECHAT_MCH_KEY'), path('WECHAT_MP_SECRET')].sort(),
    );
    expect(config.wechatSecret).toBe(V2_RAW.WECHAT_SECRET);
    expect(new TextDecoder().decode(config.jwtSecret)).toBe(JWT_SECRET);
    expect((config as V2Config).mchKey).toBe(MCH_KEY);
    expect(config.stage).toBe('test');
  });

  it('asks SSM only for SECRET_NAMES when that is set', async () => {
    // Prepare
    ssm.on(GetParametersCommand).resolves({ Parameters: [parameter('JWT_SECRET', JWT_SECRET)] });

    // Act
    const config = await loadConfig({ ...SSM_ENV, SECRET_NAMES: 'JWT_SECRET' });

    // Assess
    expect(ssm.commandCalls(GetParametersCommand)).toHaveLength(1);
    expect(ssm.commandCalls(GetParametersCommand)[0]?.args[0].input).toEqual({
      Names: [path('JWT_SECRET')],
      WithDecryption: true,
    });
    expect(config.wechatSecret).toBe('');
  });

  it('reads SSM once and caches the config when called again', async () => {
    // Prepare
    ssm.on(GetParametersCommand).resolves(allParameters);

    // Act
    const first = await loadConfig(SSM_ENV);
    const second = await loadConfig(SSM_ENV);

    // Assess
    expect(second).toBe(first);
    expect(ssm.calls()).toHaveLength(1);
  });

  it('fails closed with a ConfigError naming the path when a parameter is missing', async () => {
    // Prepare
    ssm.on(GetParametersCommand).resolves({
      Parameters: [parameter('WECHAT_SECRET', V2_RAW.WECHAT_SECRET), parameter('WECHAT_MCH_KEY', MCH_KEY)],
      InvalidParameters: [path('JWT_SECRET')],
    });

    // Act
    const error = await loadConfig(SSM_ENV).catch((caught: unknown) => caught);

    // Assess
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).detail).toContain('/wechat-miniprogram-backend/test/JWT_SECRET');
  });

  it('fails closed with a ConfigError naming the parameter when an SSM value is malformed', async () => {
    // Prepare
    const bad = 'too-short-jwt-secret';
    ssm.on(GetParametersCommand).resolves({
      Parameters: [
        parameter('WECHAT_SECRET', V2_RAW.WECHAT_SECRET),
        parameter('JWT_SECRET', bad),
        parameter('WECHAT_MCH_KEY', MCH_KEY),
      ],
    });

    // Act
    const error = await loadConfig(SSM_ENV).catch((caught: unknown) => caught);

    // Assess
    expect(error).toBeInstanceOf(ConfigError);
    expectNamesWithoutValue(error as ConfigError, 'JWT_SECRET', bad);
  });

  it('refuses a String (not SecureString) parameter, naming it without its value', async () => {
    // Prepare
    ssm.on(GetParametersCommand).resolves({
      Parameters: [
        parameter('WECHAT_SECRET', V2_RAW.WECHAT_SECRET),
        { ...parameter('JWT_SECRET', JWT_SECRET), Type: 'String' },
        parameter('WECHAT_MCH_KEY', MCH_KEY),
      ],
    });

    // Act
    const error = await loadConfig(SSM_ENV).catch((caught: unknown) => caught);

    // Assess
    expect(error).toBeInstanceOf(ConfigError);
    expectNamesWithoutValue(error as ConfigError, 'JWT_SECRET', JWT_SECRET);
    expect((error as ConfigError).detail).toContain('not a SecureString');
  });

  it('answers 503 SECRETS_UNAVAILABLE when SSM throttles, and succeeds on the next call', async () => {
    // Prepare
    const throttled = Object.assign(new Error('Rate exceeded'), { name: 'ThrottlingException' });
    ssm.on(GetParametersCommand).rejectsOnce(throttled).resolves(allParameters);

    // Act
    const failed = await loadConfig(SSM_ENV).catch((caught: unknown) => caught);
    const config = await loadConfig(SSM_ENV);

    // Assess
    expect(failed).toBeInstanceOf(ServiceUnavailableError);
    expect((failed as ServiceUnavailableError).status).toBe(503);
    expect((failed as ServiceUnavailableError).code).toBe('SECRETS_UNAVAILABLE');
    expect((failed as ServiceUnavailableError).detail).toContain('ThrottlingException');
    expect((config as V2Config).mchKey).toBe(MCH_KEY);
    expect(ssm.commandCalls(GetParametersCommand)).toHaveLength(2);
  });

  it('keeps a permanent SSM failure (AccessDenied) a ConfigError naming it', async () => {
    // Prepare
    const denied = Object.assign(new Error('not authorized'), {
      name: 'AccessDeniedException',
      $metadata: { httpStatusCode: 400 },
    });
    ssm.on(GetParametersCommand).rejects(denied);

    // Act
    const failed = await loadConfig(SSM_ENV).catch((caught: unknown) => caught);

    // Assess
    expect(failed).toBeInstanceOf(ConfigError);
    expect((failed as ConfigError).detail).toBe('SSM read failed: AccessDeniedException');
  });

  it('loads v3 when SSM has the public key but no platform certificates', async () => {
    // Prepare
    ssm.on(GetParametersCommand).resolves({
      Parameters: [
        parameter('WECHAT_SECRET', V3_RAW.WECHAT_SECRET),
        parameter('JWT_SECRET', JWT_SECRET),
        parameter('WECHAT_APIV3_KEY', APIV3_KEY),
        parameter('WECHAT_MCH_PRIVATE_KEY', PRIVATE_KEY_PEM),
        parameter('WECHAT_PAY_PUBLIC_KEY', PUBLIC_KEY_PEM),
      ],
      InvalidParameters: [path('WECHAT_PAY_PLATFORM_CERTS')],
    });

    // Act
    const config = await loadConfig({ ...V3_ENV, SECRETS_SOURCE: 'ssm', STAGE: 'test' });

    // Assess
    expect(ssm.commandCalls(GetParametersCommand)).toHaveLength(1);
    expect(ssm.commandCalls(GetParametersCommand)[0]?.args[0].input.Names).toHaveLength(7);
    expect(config.payVersion).toBe('v3');
    const v3 = config as V3Config;
    expect(v3.payPublicKeyPem).toBe(PUBLIC_KEY_PEM);
    expect(v3.platformCertPems).toEqual([]);
    expect(v3.mchPrivateKey?.type).toBe('private');
    expect(v3.payVerifier?.serials()).toEqual(['PUB_KEY_ID_0114232019112100000000000001']);
  });

  it('reads secrets from the environment without calling SSM when SECRETS_SOURCE is env', async () => {
    // Act
    const config = await loadConfig({ ...V2_ENV, SECRETS_SOURCE: 'env', ...V2_RAW });

    // Assess
    expect((config as V2Config).mchKey).toBe(MCH_KEY);
    expect(ssm.calls()).toHaveLength(0);
  });
});

describe('loadConfig after a malformed SSM secret', () => {
  it('reads SSM again on the next invocation when a malformed secret was fixed', async () => {
    // Prepare
    const ssm = mockClient(SSMClient);
    resetConfigCache();
    clearCaches();
    const env = { ...process.env, SECRETS_SOURCE: 'ssm', WECHAT_PAY_VERSION: 'v2', SECRET_NAMES: undefined };
    const settings = readSettings(env);
    const answer = (jwt: string) => ({
      Parameters: [
        {
          Name: ssmParameterName(settings, 'WECHAT_SECRET'),
          Type: 'SecureString' as const,
          Value: 'x'.repeat(32),
        },
        { Name: ssmParameterName(settings, 'JWT_SECRET'), Type: 'SecureString' as const, Value: jwt },
        {
          Name: ssmParameterName(settings, 'WECHAT_MCH_KEY'),
          Type: 'SecureString' as const,
          Value: 'a'.repeat(32),
        },
      ],
    });
    ssm
      .on(GetParametersCommand)
      .resolvesOnce(answer('too-short'))
      .resolves(answer('j'.repeat(40)));
    // Act
    const first = await loadConfig(env).catch((error: unknown) => error);
    const second = await loadConfig(env).catch((error: unknown) => error);
    // Assess
    expect(first).toBeInstanceOf(ConfigError);
    expect(ssm.commandCalls(GetParametersCommand)).toHaveLength(2);
    expect(second).not.toBeInstanceOf(Error);
    ssm.restore();
    resetConfigCache();
    clearCaches();
  });
});

describe('loadConfig during a v2 → v3 migration window', () => {
  const WINDOW_ENV = {
    ...V3_ENV,
    ...V3_RAW,
    ...V2_RAW,
    SECRETS_SOURCE: 'env',
    WECHAT_PAY_MIGRATION_FROM: 'v2',
  };
  beforeEach(() => resetConfigCache());
  afterEach(() => resetConfigCache());

  it('loads the previous version beside the current one when WECHAT_PAY_MIGRATION_FROM names it', async () => {
    // Act
    const config = await loadConfig(WINDOW_ENV);

    // Assess
    expect(config.payVersion).toBe('v3');
    expect(config.previous?.payVersion).toBe('v2');
    expect((config.previous as V2Config).mchKey).toBe(MCH_KEY);
    expect(config.previous?.previous).toBeUndefined();
  });

  it('has no previous version without WECHAT_PAY_MIGRATION_FROM, even with both versions’ secrets', async () => {
    // Act
    const config = await loadConfig({ ...WINDOW_ENV, WECHAT_PAY_MIGRATION_FROM: '' });

    // Assess
    expect(config.previous).toBeUndefined();
  });

  it.each([
    ['the current version', { WECHAT_PAY_MIGRATION_FROM: 'v3' }, /WECHAT_PAY_MIGRATION_FROM/],
    ['an unknown version', { WECHAT_PAY_MIGRATION_FROM: 'v1' }, /WECHAT_PAY_MIGRATION_FROM/],
    ['a malformed previous key', { WECHAT_MCH_KEY: 'short' }, /WECHAT_MCH_KEY/],
    [
      'SECRET_NAMES without the previous keys',
      { SECRET_NAMES: 'WECHAT_APIV3_KEY' },
      /SECRET_NAMES lacks WECHAT_MCH_KEY/,
    ],
  ])('fails closed naming the problem for %s', async (_name, overrides, detail) => {
    // Act
    const error = await loadConfig({ ...WINDOW_ENV, ...overrides }).catch((caught: unknown) => caught);

    // Assess
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).detail).toMatch(detail);
  });
});
