import { clearCaches } from '@aws-lambda-powertools/parameters';
import { GetParametersCommand, SSMClient } from '@aws-sdk/client-ssm';
import { type AwsClientStub, mockClient } from 'aws-sdk-client-mock';
import { afterEach, beforeEach, expect, type MockInstance, vi } from 'vitest';
import { resetConfigCache } from '#lib/config';
import { logger } from '#lib/logger';
import { type SecretName, ssmParameterName } from '#lib/secrets';
import { readSettings } from '#lib/settings';

const TOUCHED_ENV = ['SECRETS_SOURCE', 'WECHAT_PAY_VERSION', 'SECRET_NAMES'];

/**
 * Makes every test of the calling file read its secrets from SSM (SECRETS_SOURCE=ssm), faked at the SDK
 * with aws-sdk-client-mock; the config and Powertools caches start empty, and the environment is restored
 * after each test. Returns the SSM fake for the test to script.
 */
export function secretsFromFakeSsm(): AwsClientStub<SSMClient> {
  const ssm = mockClient(SSMClient);
  const saved = Object.fromEntries(TOUCHED_ENV.map((name) => [name, process.env[name]]));
  const forget = () => {
    resetConfigCache();
    clearCaches();
    ssm.reset();
  };
  beforeEach(() => {
    process.env.SECRETS_SOURCE = 'ssm';
    forget();
  });
  afterEach(() => {
    for (const [name, value] of Object.entries(saved)) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
    forget();
  });
  return ssm;
}

/**
 * The GetParameters answer for the secrets of the configured pay version: the values the test environment
 * uses (so notifies verify), with `overrides` swapped in.
 */
export function ssmAnswer(overrides: Partial<Record<SecretName, string>> = {}) {
  const settings = readSettings();
  const names: SecretName[] =
    settings.payVersion === 'v2'
      ? ['WECHAT_SECRET', 'JWT_SECRET', 'WECHAT_MCH_KEY']
      : [
          'WECHAT_SECRET',
          'JWT_SECRET',
          'WECHAT_APIV3_KEY',
          'WECHAT_MCH_PRIVATE_KEY',
          'WECHAT_PAY_PUBLIC_KEY',
        ];
  return {
    Parameters: names.map((name) => ({
      Name: ssmParameterName(settings, name),
      Type: 'SecureString' as const,
      Value: overrides[name] ?? (process.env[name] as string),
    })),
    InvalidParameters:
      settings.payVersion === 'v3' ? [ssmParameterName(settings, 'WECHAT_PAY_PLATFORM_CERTS')] : [],
  };
}

/** An AWS SDK service error as the client throws it (e.g. ThrottlingException). */
export function sdkError(name: string): Error {
  return Object.assign(new Error(`${name} (injected)`), { name, $metadata: { httpStatusCode: 400 } });
}

/** The malformed SSM values every handler must fail closed on: [what, pay version, parameter, value]. */
export const MALFORMED_SECRETS: [string, 'v2' | 'v3', SecretName, string][] = [
  ['a JWT key of 31 bytes', 'v2', 'JWT_SECRET', 'jwt-key-that-is-31-bytes-long!!'],
  ['a v2 key of 31 chars', 'v2', 'WECHAT_MCH_KEY', 'shortMchKey00000000000000000000'],
  ['a v2 key of 33 chars', 'v2', 'WECHAT_MCH_KEY', 'longMchKey0000000000000000000000000'.slice(0, 33)],
  ['a v2 key of 32 chars with a symbol', 'v2', 'WECHAT_MCH_KEY', 'symbolMchKey000000000000000000-0'],
  ['an APIv3 key of 31 bytes', 'v3', 'WECHAT_APIV3_KEY', 'shortApiV3Key000000000000000000'],
  ['an unparsable merchant PEM', 'v3', 'WECHAT_MCH_PRIVATE_KEY', 'not-a-pem-private-key-value'],
];

/** The SSM failures a cold start must survive (the next invocation reads SSM again). */
export const SSM_FAILURES = ['ThrottlingException', 'TimeoutError', 'AccessDeniedException'];

/**
 * What an API route answers on each of SSM_FAILURES: a transient one (throttling, no answer in time) is
 * 503 SECRETS_UNAVAILABLE with retry-after; a permanent one is the fixed 500 of a configuration error.
 */
export function apiAnswerToSsmFailure(name: string): { status: number; code: string } {
  return name === 'AccessDeniedException'
    ? { status: 500, code: 'INTERNAL_ERROR' }
    : { status: 503, code: 'SECRETS_UNAVAILABLE' };
}

/**
 * Scripts a cold start whose SSM answer carries `value` for `parameter` under pay version `version`;
 * returns the spy on logger.error for expectNamedNotShown.
 */
export function serveMalformedSecret(
  ssm: AwsClientStub<SSMClient>,
  version: 'v2' | 'v3',
  parameter: SecretName,
  value: string,
): MockInstance<typeof logger.error> {
  process.env.WECHAT_PAY_VERSION = version;
  ssm.on(GetParametersCommand).resolves(ssmAnswer({ [parameter]: value }));
  return vi.spyOn(logger, 'error');
}

/** The error logs name the parameter; neither they nor the response body carry its value (INV-6). */
export function expectNamedNotShown(
  logged: MockInstance<typeof logger.error>,
  parameter: SecretName,
  value: string,
  body: string | undefined,
): void {
  expect(value.length).toBeGreaterThan(0);
  expect(JSON.stringify(logged.mock.calls)).toContain(parameter);
  expect(JSON.stringify(logged.mock.calls)).not.toContain(value);
  expect(body).not.toContain(value);
}
