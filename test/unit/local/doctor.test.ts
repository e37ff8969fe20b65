import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
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

  it('checks H5 only when WECHAT_MP_APPID is set, and names what it lacks', async () => {
    // Arrange
    const base = { ...localEnv({}), SECRETS_SOURCE: 'env', DYNAMODB_ENDPOINT: UNREACHABLE };
    const h5 = (env: Record<string, string>) => async () =>
      (await diagnose(env)).find((result) => result.name === 'H5');

    // Act
    const off = await h5({ ...base, WECHAT_MP_APPID: '' })();
    const noSecret = await h5({ ...base, WECHAT_MP_SECRET: '' })();
    const noOrigins = await h5({ ...base, H5_ORIGINS: '' })();

    // Assess
    expect(off).toMatchObject({ ok: true });
    expect(off?.detail).toContain('off');
    expect(noSecret).toMatchObject({ ok: false });
    expect(noSecret?.detail).toContain('WECHAT_MP_SECRET is missing');
    expect(noOrigins).toMatchObject({ ok: false });
    expect(noOrigins?.detail).toContain('H5_ORIGINS lists no origin');
  }, 60_000);

  it('shows the OAuth callback WeChat will get, from PUBLIC_API_URL when it is set', async () => {
    // Arrange: WeChat's OAuth page answers (a local server), so the H5 check gets to its report
    const open = createServer((_req, res) => res.end('ok'));
    await new Promise<void>((resolve) => open.listen(0, '127.0.0.1', resolve));
    const base = {
      ...localEnv({}),
      SECRETS_SOURCE: 'env',
      DYNAMODB_ENDPOINT: UNREACHABLE,
      WECHAT_OPEN_BASE: `http://127.0.0.1:${(open.address() as AddressInfo).port}`,
    };
    const check = async (env: Record<string, string>, name: string) =>
      (await diagnose(env)).find((result) => result.name === name);

    try {
      // Act
      const set = await check({ ...base, PUBLIC_API_URL: 'https://www.example.com/api/' }, 'H5');
      const unset = await check({ ...base, PUBLIC_API_URL: '' }, 'H5');
      const malformed = await check({ ...base, PUBLIC_API_URL: 'https://www.example.com/api?x' }, 'settings');

      // Assess
      expect(set).toMatchObject({ ok: true });
      expect(set?.detail).toContain(
        'OAuth callback https://www.example.com/api/wechat/oauth/callback (PUBLIC_API_URL; 网页授权域名 www.example.com)',
      );
      expect(unset).toMatchObject({ ok: true });
      expect(unset?.detail).toContain('PUBLIC_API_URL unset');
      expect(malformed).toMatchObject({ ok: false });
      expect(malformed?.detail).toContain('PUBLIC_API_URL');
    } finally {
      open.close();
    }
  }, 60_000);
});
