import { describe, expect, it } from 'vitest';
import { BadRequestError } from '#lib/errors';
import { newUser, newUserId, parseProfileUpdate, toPublicUser } from '#lib/users';
import { aUser } from '#test/helpers/builders';

const OPENID = 'oUnitTestOpenid0000001';
const UNIONID = 'oUnionUnitTest000000001';
const NOW = new Date('2026-11-21T08:00:00.000Z');

/** Runs parseProfileUpdate and returns the BadRequestError it must throw. */
function rejectionOf(body: unknown): BadRequestError {
  try {
    parseProfileUpdate(body);
  } catch (error) {
    expect(error).toBeInstanceOf(BadRequestError);
    expect((error as BadRequestError).status).toBe(400);
    return error as BadRequestError;
  }
  throw new Error(`expected a BadRequestError for ${JSON.stringify(body)}`);
}

describe('newUserId', () => {
  it('returns a fresh opaque id on every call, so a returning ex-user gets a new one', () => {
    // Act
    const ids = new Set(Array.from({ length: 100 }, () => newUserId()));

    // Assess
    expect(ids.size).toBe(100);
    for (const id of ids) expect(id).toMatch(/^u[A-Za-z0-9_-]{22}$/);
  });
});

describe('newUser', () => {
  it('applies the seed defaults when a user signs in for the first time', () => {
    // Act
    const user = newUser(OPENID, undefined, NOW.toISOString());

    // Assess
    expect(user).toEqual({
      id: expect.stringMatching(/^u[A-Za-z0-9_-]{22}$/),
      openid: OPENID,
      nickname: expect.stringMatching(/^微信用户[0-9a-f]{6}$/),
      avatar: '',
      sex: 2,
      role: 0,
      company: '',
      introduce: '',
      version: 0,
      sessionVersion: 0,
      createdAt: NOW.toISOString(),
      updatedAt: NOW.toISOString(),
    });
    expect(user).not.toHaveProperty('unionid');
  });

  it('keeps the unionid when WeChat sent one', () => {
    // Act
    const user = newUser(OPENID, UNIONID, NOW.toISOString());

    // Assess
    expect(user.unionid).toBe(UNIONID);
  });
});

describe('toPublicUser', () => {
  it('never exposes openid, unionid or version', () => {
    // Act
    const user = toPublicUser(aUser({ openid: OPENID, unionid: UNIONID }), NOW);

    // Assess
    expect(Object.keys(user).sort()).toEqual(
      ['id', 'nickname', 'avatar', 'sex', 'role', 'company', 'introduce', 'membershipExpiredAt'].sort(),
    );
    expect(JSON.stringify(user)).not.toContain(OPENID);
    expect(JSON.stringify(user)).not.toContain(UNIONID);
    expect(user.membershipExpiredAt).toBeNull();
  });

  it('shows the bound phone number and its country code to the owner, and nothing when none is bound', () => {
    // Act
    const bound = toPublicUser(aUser({ phoneNumber: '13800138000', countryCode: '86' }), NOW);
    const unbound = toPublicUser(aUser(), NOW);

    // Assess
    expect(bound).toMatchObject({ phoneNumber: '13800138000', countryCode: '86' });
    expect(unbound).not.toHaveProperty('phoneNumber');
    expect(unbound).not.toHaveProperty('countryCode');
  });

  it('shows role 1 when the membership runs past now', () => {
    // Act
    const user = toPublicUser(aUser({ role: 1, membershipExpiredAt: '2026-12-21T08:00:00.000Z' }), NOW);

    // Assess
    expect(user.role).toBe(1);
    expect(user.membershipExpiredAt).toBe('2026-12-21T08:00:00.000Z');
  });

  it.each([
    ['expired a second ago', '2026-11-21T07:59:59.000Z'],
    ['expires exactly now', '2026-11-21T08:00:00.000Z'],
  ])('shows role 0 when the membership %s', (_label, membershipExpiredAt) => {
    // Act
    const user = toPublicUser(aUser({ role: 1, membershipExpiredAt }), NOW);

    // Assess
    expect(user.role).toBe(0);
    expect(user.membershipExpiredAt).toBe(membershipExpiredAt);
  });

  it('shows role 0 when role is 1 but there is no expiry', () => {
    // Act
    const user = toPublicUser(aUser({ role: 1 }), NOW);

    // Assess
    expect(user.role).toBe(0);
  });
});

describe('parseProfileUpdate', () => {
  it('returns every allowed field when all are valid', () => {
    // Prepare
    const body = {
      nickname: '小明',
      avatar: 'https://thirdwx.qlogo.cn/mmopen/vi_32/abc/132',
      sex: 1,
      company: '腾讯',
      introduce: '你好 👋',
    };

    // Act
    const changes = parseProfileUpdate(body);

    // Assess
    expect(changes).toEqual(body);
  });

  it.each([
    ['nickname of 32 emoji', { nickname: '😀'.repeat(32) }],
    ['nickname of 1 char', { nickname: 'x' }],
    ['sex 0', { sex: 0 }],
    ['sex 2', { sex: 2 }],
    ['empty company', { company: '' }],
    ['empty introduce', { introduce: '' }],
    ['company of 64 chars', { company: 'c'.repeat(64) }],
    ['introduce of 256 chars', { introduce: 'i'.repeat(256) }],
    ['avatar of 512 chars', { avatar: `https://a.example/${'a'.repeat(512 - 18)}` }],
  ])('accepts %s', (_label, body) => {
    // Act
    const changes = parseProfileUpdate(body);

    // Assess
    expect(changes).toEqual(body);
  });

  it('drops unknown fields when they come with an allowed one', () => {
    // Prepare
    const body = JSON.parse(
      '{"nickname":"ok","role":1,"id":"uOther0000000000000000","membershipExpiredAt":"2099-01-01T00:00:00.000Z",' +
        '"openid":"oEvil","unionid":"oEvil","version":99,"isAdmin":true,"__proto__":{"isAdmin":true}}',
    );

    // Act
    const changes = parseProfileUpdate(body);

    // Assess
    expect(changes).toEqual({ nickname: 'ok' });
    expect(Object.keys(changes)).toEqual(['nickname']);
    expect(Object.hasOwn(changes, '__proto__')).toBe(false);
    expect(Object.getPrototypeOf(changes)).toBe(Object.prototype);
    expect(({} as Record<string, unknown>).isAdmin).toBeUndefined();
  });

  it('throws NO_CHANGES when only unknown fields are sent', () => {
    // Act
    const error = rejectionOf({ role: 1, membershipExpiredAt: '2099-01-01T00:00:00.000Z' });

    // Assess
    expect(error.code).toBe('NO_CHANGES');
  });

  it('throws NO_CHANGES when the body is {}', () => {
    // Act
    const error = rejectionOf({});

    // Assess
    expect(error.code).toBe('NO_CHANGES');
  });

  it.each([
    ['nickname empty', { nickname: '' }],
    ['nickname of 33 chars', { nickname: 'n'.repeat(33) }],
    ['nickname a number', { nickname: 123 }],
    ['nickname null', { nickname: null }],
    ['nickname an array', { nickname: ['a'] }],
    ['nickname an object', { nickname: { $ne: '' } }],
    ['nickname a boolean', { nickname: true }],
    ['nickname with NUL', { nickname: 'a\u0000b' }],
    ['nickname with a newline', { nickname: 'a\nb' }],
    ['nickname with DEL', { nickname: 'a\u007fb' }],
    ['nickname with U+202E', { nickname: 'abc\u202Etxt.exe' }],
    ['nickname with U+2066', { nickname: 'a\u2066b' }],
    ['nickname a lone surrogate', { nickname: '\ud800' }],
    ['nickname zero-width only', { nickname: '\u200b\u200c\u200d' }],
    ['nickname whitespace only', { nickname: '   ' }],
    ['nickname BOM only', { nickname: '\ufeff' }],
    ['avatar http:', { avatar: 'http://example.com/a.png' }],
    ['avatar javascript:', { avatar: 'javascript:alert(1)' }],
    ['avatar data:', { avatar: 'data:image/png;base64,iVBORw0KGgo=' }],
    ['avatar file:', { avatar: 'file:///etc/passwd' }],
    ['avatar with credentials', { avatar: 'https://user:pass@example.com/a.png' }],
    ['avatar not a URL', { avatar: 'not a url' }],
    ['avatar longer than 512', { avatar: `https://a.example/${'a'.repeat(512 - 17)}` }],
    ['avatar a number', { avatar: 1 }],
    ['sex 3', { sex: 3 }],
    ['sex "1"', { sex: '1' }],
    ['sex -1', { sex: -1 }],
    ['sex 1.5', { sex: 1.5 }],
    ['company of 65 chars', { company: 'c'.repeat(65) }],
    ['company with a control char', { company: 'a\u0007b' }],
    ['introduce of 257 chars', { introduce: 'i'.repeat(257) }],
    ['introduce a lone surrogate', { introduce: 'ok\udc00' }],
    ['one bad field next to a good one', { nickname: 'ok', sex: 9 }],
  ])('throws VALIDATION_ERROR when %s', (_label, body) => {
    // Act
    const error = rejectionOf(body);

    // Assess
    expect(error.code).toBe('VALIDATION_ERROR');
  });

  it.each([
    ['an array', [{ nickname: 'x' }]],
    ['a string', '{"nickname":"x"}'],
    ['null', null],
    ['undefined', undefined],
    ['a number', 1],
  ])('throws VALIDATION_ERROR when the body is %s', (_label, body) => {
    // Act
    const error = rejectionOf(body);

    // Assess
    expect(error.code).toBe('VALIDATION_ERROR');
  });

  it('names the failing field in the detail', () => {
    // Act
    const error = rejectionOf({ nickname: 'ok', company: 'c'.repeat(65) });

    // Assess
    expect(error.detail).toBe('company');
  });
});
