import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { readSettings } from '#lib/settings';

/** deploy/stage.cjs's check of one stage setting: true, or what is wrong. */
type Check = (value: string, settings: Record<string, string>) => true | string;
const { SETTINGS } = createRequire(import.meta.url)('../../../deploy/stage.cjs') as {
  SETTINGS: Record<string, { default?: string; check: Check }>;
};

describe('stage setting PUBLIC_API_URL', () => {
  const spec = SETTINGS.PUBLIC_API_URL as { default?: string; check: Check };

  it('is optional (absent, the callback comes from the request)', () => {
    expect(spec.default).toBe('');
  });

  it.each([
    'https://api.example.com',
    'https://api.example.com/',
    'https://www.example.com/api',
    'https://www.example.com:8443/api/v1/',
    'https://www.example.com/my_api~2',
  ])('accepts %j, which the functions read unchanged but for a trailing slash', (value) => {
    // Act
    const verdict = spec.check(value, {});

    // Assess: what the deploy accepts, the functions accept too (no ConfigError at the first sign-in)
    expect(verdict).toBe(true);
    expect(readSettings({ WECHAT_APPID: 'wx0123456789abcdef', PUBLIC_API_URL: value }).publicApiUrl).toBe(
      value.replace(/\/$/, ''),
    );
  });

  it.each([
    'http://api.example.com',
    'https://API.example.com',
    'https://api.example.com?x=1',
    'https://api.example.com/#/',
    'https://user@api.example.com',
    'https://api.example.com/a/../b',
    'https://api.example.com/./api',
    'https://api.example.com/my api',
    'https://api.example.com:99999',
    'api.example.com',
  ])('refuses %j, naming what it must be', (value) => {
    // Act
    const verdict = spec.check(value, {});

    // Assess
    expect(verdict).toMatch(/^must be the https URL browsers reach the API at/);
  });
});
