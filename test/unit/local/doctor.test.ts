import { describe, expect, it } from 'vitest';
import { diagnose } from '#local/doctor';
import { localEnv } from '#local/env';

/** `npm run doctor`'s checks on a broken configuration: each failure named, no secret value in any line. */

const UNREACHABLE = 'http://127.0.0.1:9';

describe('doctor', () => {
  it('names each failing check and prints no secret', async () => {
    // Arrange
    const env: Record<string, string> = {
      ...localEnv({}),
      SECRETS_SOURCE: 'env',
      WECHAT_PAY_VERSION: 'v3',
      WECHAT_APIV3_KEY: 'tooShortSecretValue',
      JWT_SECRET: 'shortJwtSecretValue',
      WECHAT_API_BASE: UNREACHABLE,
      WECHAT_PAY_API_BASE: UNREACHABLE,
      DYNAMODB_ENDPOINT: UNREACHABLE,
    };

    // Act
    const results = await diagnose(env);

    // Assess
    const failed = results.filter((r) => !r.ok).map((r) => r.name);
    expect(failed).toEqual(
      expect.arrayContaining([
        'JWT_SECRET',
        'WECHAT_APIV3_KEY',
        'config',
        'WECHAT_API_BASE',
        'WECHAT_PAY_API_BASE',
        'clock',
      ]),
    );
    expect(results.find((r) => r.name === 'WECHAT_MCH_PRIVATE_KEY')?.ok).toBe(true);
    const text = JSON.stringify(results);
    for (const secret of [
      'tooShortSecretValue',
      'shortJwtSecretValue',
      env.WECHAT_SECRET,
      env.WECHAT_MCH_KEY,
    ]) {
      expect(text).not.toContain(secret);
    }
  }, 30_000);
});
