import { describe, expect, it } from 'vitest';
import { callbackUrl } from '#lib/oauth';
import { httpEvent } from '#local/fixtures/events';

const PAGE = 'https://h5.example.com/shop?x=1';

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
