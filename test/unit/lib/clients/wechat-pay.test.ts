import { describe, expect, it } from 'vitest';
import { paymentProvider } from '#lib/clients/wechat-pay';
import { type Config, loadConfig, resetConfigCache } from '#lib/config';
import { ConfigError } from '#lib/errors';

/** The sandbox environment (test/setup.ts) with one function's SECRET_NAMES and pay version. */
async function configFor(payVersion: 'v2' | 'v3', secretNames: string): Promise<Config> {
  resetConfigCache();
  try {
    return await loadConfig({ ...process.env, WECHAT_PAY_VERSION: payVersion, SECRET_NAMES: secretNames });
  } finally {
    resetConfigCache();
  }
}

describe('paymentProvider', () => {
  it('builds the client of the configured version once per loaded config', async () => {
    // Prepare
    const v2 = await configFor('v2', 'WECHAT_MCH_KEY');
    const v3 = await configFor(
      'v3',
      'WECHAT_APIV3_KEY,WECHAT_MCH_PRIVATE_KEY,WECHAT_PAY_PUBLIC_KEY,WECHAT_PAY_PLATFORM_CERTS',
    );

    // Act / Assess
    expect(paymentProvider(v2).version).toBe('v2');
    expect(paymentProvider(v3).version).toBe('v3');
    expect(paymentProvider(v3)).toBe(paymentProvider(v3));
  });

  it.each([
    ['v2', 'JWT_SECRET', /WECHAT_MCH_KEY/],
    ['v3', 'JWT_SECRET', /v3 secrets/],
    ['v3', 'JWT_SECRET,WECHAT_APIV3_KEY', /v3 secrets/],
  ] as const)(
    'refuses a %s function whose SECRET_NAMES (%s) lack the pay secrets',
    async (version, names, detail) => {
      // Prepare
      const config = await configFor(version, names);

      // Act / Assess
      expect(() => paymentProvider(config)).toThrow(ConfigError);
      try {
        paymentProvider(config);
      } catch (error) {
        expect((error as ConfigError).detail).toMatch(detail);
      }
    },
  );
});
