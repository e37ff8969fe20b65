import { describe, expect, it } from 'vitest';
import { BINDING_COOKIE, bindingCookie, callbackUrl } from '#lib/oauth';
import { httpEvent } from '#local/fixtures/events';

const PAGE = 'https://h5.example.com/shop?x=1';
/** What a proxy (CloudFront) in front of API Gateway forwards: API Gateway's own Host, no base path. */
const BEHIND_PROXY = {
  path: '/wechat/oauth/authorize',
  headers: { host: 'a1b2c3d4e5.execute-api.ap-southeast-1.amazonaws.com', 'x-forwarded-proto': 'https' },
};

describe('callbackUrl', () => {
  it.each([
    [
      'a custom domain (Host) on https',
      { path: '/wechat/oauth/authorize', headers: { host: 'api.example.com' } },
      'https://api.example.com/wechat/oauth/callback',
    ],
    [
      'a base-path mapping kept in rawPath',
      { path: '/v1/wechat/oauth/authorize', headers: { host: 'api.example.com' } },
      'https://api.example.com/v1/wechat/oauth/callback',
    ],
    [
      'X-Forwarded-Proto http',
      { path: '/wechat/oauth/authorize', headers: { host: 'api.example.com', 'x-forwarded-proto': 'http' } },
      'http://api.example.com/wechat/oauth/callback',
    ],
    [
      'the local stack on loopback',
      { path: '/wechat/oauth/authorize', headers: { host: '127.0.0.1:3000' } },
      'http://127.0.0.1:3000/wechat/oauth/callback',
    ],
    [
      'no Host header (requestContext.domainName, here the fixture’s localhost)',
      { path: '/wechat/oauth/authorize' },
      'http://localhost/wechat/oauth/callback',
    ],
  ])('derives the callback from %s, the page in its query', (_label, input, expected) => {
    // Act
    const url = new URL(callbackUrl(httpEvent(input), PAGE));

    // Assess
    expect(`${url.origin}${url.pathname}`).toBe(expected);
    expect([...url.searchParams]).toEqual([['redirect', PAGE]]);
  });
});

describe('callbackUrl with PUBLIC_API_URL', () => {
  it.each([
    ['a host of its own', 'https://api.example.com', 'https://api.example.com/wechat/oauth/callback'],
    ['a base path', 'https://example.com/api', 'https://example.com/api/wechat/oauth/callback'],
    [
      'a deeper base path and a port',
      'https://example.com:8443/a/b',
      'https://example.com:8443/a/b/wechat/oauth/callback',
    ],
  ])('takes %s from the setting, not from the execute-api Host', (_label, publicApiUrl, expected) => {
    // Act
    const url = new URL(callbackUrl(httpEvent(BEHIND_PROXY), PAGE, publicApiUrl));

    // Assess
    expect(`${url.origin}${url.pathname}`).toBe(expected);
    expect([...url.searchParams]).toEqual([['redirect', PAGE]]);
  });

  it('ignores the request path too (a proxy mapping another prefix) and X-Forwarded-Proto http', () => {
    // Prepare
    const event = httpEvent({
      path: '/prod/wechat/oauth/authorize',
      headers: { host: 'internal.example', 'x-forwarded-proto': 'http' },
    });

    // Act
    const url = callbackUrl(event, PAGE, 'https://example.com/api');

    // Assess
    expect(url).toBe(`https://example.com/api/wechat/oauth/callback?redirect=${encodeURIComponent(PAGE)}`);
  });
});

describe('bindingCookie', () => {
  const attributes = (cookie: string) => cookie.split('; ').slice(1);

  it.each([
    [
      'the request path on a custom domain',
      { path: '/wechat/oauth/authorize', headers: { host: 'api.example.com' } },
      '',
      '/wechat/oauth',
      true,
    ],
    [
      'a base-path mapping kept in rawPath',
      { path: '/v1/wechat/oauth/authorize', headers: { host: 'api.example.com' } },
      '',
      '/v1/wechat/oauth',
      true,
    ],
    [
      'the local stack on loopback',
      { path: '/wechat/oauth/authorize', headers: { host: '127.0.0.1:3000' } },
      '',
      '/wechat/oauth',
      false,
    ],
    ['PUBLIC_API_URL without a base path', BEHIND_PROXY, 'https://api.example.com', '/wechat/oauth', true],
    ['PUBLIC_API_URL with a base path', BEHIND_PROXY, 'https://example.com/api', '/api/wechat/oauth', true],
    [
      'PUBLIC_API_URL on loopback',
      { path: '/wechat/oauth/authorize', headers: { host: 'api.example.com' } },
      'http://localhost:3000/dev',
      '/dev/wechat/oauth',
      false,
    ],
  ])('scopes the cookie from %s', (_label, input, publicApiUrl, path, secure) => {
    // Act
    const cookie = bindingCookie(httpEvent(input), '0123456789abcdef', publicApiUrl);

    // Assess
    expect(cookie.split('; ')[0]).toBe(`${BINDING_COOKIE}=0123456789abcdef`);
    expect(attributes(cookie)).toEqual([
      `Path=${path}`,
      'Max-Age=600',
      'HttpOnly',
      'SameSite=Lax',
      ...(secure ? ['Secure'] : []),
    ]);
  });

  it('covers the callback URL it goes with: the cookie Path is a prefix of the callback path', () => {
    for (const publicApiUrl of [
      'https://api.example.com',
      'https://example.com/api',
      'https://example.com/a/b',
    ]) {
      // Act
      const cookiePath = /Path=([^;]+)/.exec(bindingCookie(httpEvent(BEHIND_PROXY), 'n', publicApiUrl))?.[1];
      const callbackPath = new URL(callbackUrl(httpEvent(BEHIND_PROXY), PAGE, publicApiUrl)).pathname;

      // Assess
      expect(callbackPath.startsWith(`${cookiePath}/`), publicApiUrl).toBe(true);
    }
  });
});
