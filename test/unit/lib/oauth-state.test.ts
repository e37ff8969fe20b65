import { describe, expect, it } from 'vitest';
import {
  allowedRedirect,
  STATE_TTL_SECONDS,
  signState,
  stateKey,
  verifyState,
  wechatScope,
} from '#lib/oauth-state';

const ORIGINS = ['https://h5.example.com', 'http://localhost:5173'];
const KEY = stateKey(new TextEncoder().encode('unit-test-jwt-secret-of-at-least-32-bytes'));
const PAGE = 'https://h5.example.com/shop/?from=menu';
const NOW = 1_764_460_800;

function codeOf(act: () => unknown): string | undefined {
  try {
    act();
  } catch (error) {
    return (error as { code?: string }).code;
  }
  return undefined;
}

describe('allowedRedirect', () => {
  it.each([
    ['a page under an allowed origin', PAGE, PAGE],
    ['the bare origin (normalised with a slash)', 'https://h5.example.com', 'https://h5.example.com/'],
    ['an allowed http loopback origin', 'http://localhost:5173/app', 'http://localhost:5173/app'],
    [
      'an upper-case scheme and host (one origin after parsing)',
      'HTTPS://H5.EXAMPLE.COM/a',
      'https://h5.example.com/a',
    ],
    ['a fragment, which the token replaces', 'https://h5.example.com/#/cart', 'https://h5.example.com/'],
  ])('accepts %s', (_label, redirect, expected) => {
    // Act
    const result = allowedRedirect(redirect, ORIGINS);

    // Assess
    expect(result).toBe(expected);
  });

  it.each([
    ['another origin', 'https://evil.example/'],
    ['protocol-relative', '//evil.example/'],
    ['protocol-relative to the allowed host', '//h5.example.com/'],
    ['relative', '/shop'],
    ['user info', 'https://h5.example.com@evil.example/'],
    ['user info with a password', 'https://h5.example.com:x@evil.example/'],
    ['user info on the allowed host', 'https://user@h5.example.com/'],
    ['a suffix host', 'https://h5.example.com.evil.example/'],
    ['a backslash scheme separator', 'https:\\\\evil.example/'],
    ['a backslash before @', 'https://evil.example\\@h5.example.com/'],
    ['an encoded scheme', 'https%3A%2F%2Fh5.example.com%2F'],
    ['encoded slashes', 'https:%2F%2Fh5.example.com/'],
    ['javascript:', 'javascript:alert(1)//https://h5.example.com/'],
    ['data:', 'data:text/html;base64,PHNjcmlwdD4='],
    ['ftp on the allowed host', 'ftp://h5.example.com/'],
    ['http on an https origin', 'http://h5.example.com/'],
    ['https on an http origin', 'https://localhost:5173/'],
    ['another port', 'https://h5.example.com:444/'],
    ['a leading space', ' https://h5.example.com/'],
    ['a newline', 'https://h5.example.com/\nLocation: https://evil.example/'],
    ['a tab in the scheme', 'ht\ttps://evil.example/'],
    ['an empty string', ''],
    ['something over 1024 characters', `https://h5.example.com/${'a'.repeat(1024)}`],
  ])('refuses %s with 400 REDIRECT_NOT_ALLOWED', (_label, redirect) => {
    // Act
    const code = codeOf(() => allowedRedirect(redirect, ORIGINS));

    // Assess
    expect(code).toBe('REDIRECT_NOT_ALLOWED');
  });

  it('refuses everything when no origin is allowed', () => {
    // Act
    const code = codeOf(() => allowedRedirect(PAGE, []));

    // Assess
    expect(code).toBe('REDIRECT_NOT_ALLOWED');
  });
});

describe('signState / verifyState', () => {
  it('signs a state WeChat accepts ([a-zA-Z0-9], at most 128 bytes) that verifies to its scope', () => {
    // Act
    const base = signState(KEY, 'snsapi_base', PAGE, NOW);
    const userinfo = signState(KEY, 'snsapi_userinfo', PAGE, NOW);
    const auto = signState(KEY, 'auto', PAGE, NOW);

    // Assess
    for (const state of [base, userinfo, auto]) {
      expect(state).toMatch(/^[a-zA-Z0-9]{1,128}$/);
      expect(Buffer.byteLength(state)).toBeLessThanOrEqual(128);
    }
    expect(verifyState(KEY, base, PAGE, NOW)).toBe('snsapi_base');
    expect(verifyState(KEY, userinfo, PAGE, NOW)).toBe('snsapi_userinfo');
    expect(verifyState(KEY, auto, PAGE, NOW)).toBe('auto');
  });

  it('asks WeChat for snsapi_base when a page asks for auto, and for the scope itself otherwise', () => {
    // Assess
    expect(wechatScope('auto')).toBe('snsapi_base');
    expect(wechatScope('snsapi_base')).toBe('snsapi_base');
    expect(wechatScope('snsapi_userinfo')).toBe('snsapi_userinfo');
  });

  it('gives every sign-in its own state (a random nonce)', () => {
    // Act
    const states = new Set(Array.from({ length: 50 }, () => signState(KEY, 'snsapi_base', PAGE, NOW)));

    // Assess
    expect(states.size).toBe(50);
  });

  it('accepts a state until 10 minutes after signing, and refuses it after with STATE_EXPIRED', () => {
    // Prepare
    const state = signState(KEY, 'snsapi_base', PAGE, NOW);

    // Act
    const atLimit = verifyState(KEY, state, PAGE, NOW + STATE_TTL_SECONDS);
    const late = codeOf(() => verifyState(KEY, state, PAGE, NOW + STATE_TTL_SECONDS + 1));

    // Assess
    expect(STATE_TTL_SECONDS).toBe(600);
    expect(atLimit).toBe('snsapi_base');
    expect(late).toBe('STATE_EXPIRED');
  });

  it('binds the redirect: a state refuses any other page with INVALID_STATE', () => {
    // Prepare
    const state = signState(KEY, 'snsapi_base', PAGE, NOW);

    // Act
    const other = codeOf(() => verifyState(KEY, state, 'https://h5.example.com/other', NOW));

    // Assess
    expect(other).toBe('INVALID_STATE');
  });

  it('refuses a tampered scope, expiry, nonce or MAC, a state from another key, and junk', () => {
    // Prepare
    const state = signState(KEY, 'snsapi_base', PAGE, NOW);
    const flip = (at: number) => {
      const char = state[at] as string;
      const replacement = /\d/.test(char) ? String((Number(char) + 1) % 10) : char === 'a' ? 'b' : 'a';
      return `${state.slice(0, at)}${replacement}${state.slice(at + 1)}`;
    };
    const otherKey = stateKey(new TextEncoder().encode('another-jwt-secret-of-at-least-32-bytes!'));
    const candidates = [
      `u${state.slice(1)}`,
      `a${state.slice(1)}`,
      flip(5),
      flip(14),
      flip(state.length - 1),
      signState(otherKey, 'snsapi_base', PAGE, NOW),
      '',
      'abc',
      `${state}0`,
      state.toUpperCase(),
    ];

    // Act
    const codes = candidates.map((candidate) => codeOf(() => verifyState(KEY, candidate, PAGE, NOW)));

    // Assess
    expect(codes).toEqual(candidates.map(() => 'INVALID_STATE'));
  });
});
