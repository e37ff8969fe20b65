import { createHmac, generateKeyPairSync } from 'node:crypto';
import { DeleteCommand } from '@aws-sdk/lib-dynamodb';
import { SignJWT } from 'jose';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { handler as meHandler } from '#functions/me';
import { handler as updateInfoHandler } from '#functions/update-info';
import { dynamo } from '#lib/clients/dynamodb';
import { type Config, loadConfig } from '#lib/config';
import type { PublicUser } from '#lib/users';
import type { HttpEventInput } from '#local/fixtures/events';
import { countDynamoCalls, type DynamoCallCounter, invoke, signInUser, storedUser } from './helpers';

type Claims = Record<string, unknown>;

const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
const now = () => Math.floor(Date.now() / 1000);

let config: Config;
let alice: { token: string; user: PublicUser };
let bob: { token: string; user: PublicUser };
let counter: DynamoCallCounter;

/**
 * Valid claims for `sub` (our iss and aud, issued now, expiring in an hour), with overrides; undefined
 * drops a claim.
 */
function claims(sub: unknown, overrides: Claims = {}): Claims {
  const all: Claims = { sub, iss: config.jwtIssuer, aud: config.jwtAudience, iat: now(), exp: now() + 3600 };
  return Object.fromEntries(
    Object.entries({ ...all, ...overrides }).filter(([, value]) => value !== undefined),
  ) as Claims;
}

/** A hand-built HMAC JWT, so every header and claim can be forged. */
function hmacToken(
  payload: Claims,
  options: { alg?: string; typ?: string | undefined; key?: Uint8Array | string } = {},
): string {
  const alg = options.alg ?? 'HS256';
  const hash = { HS256: 'sha256', HS384: 'sha384', HS512: 'sha512' }[alg] ?? 'sha256';
  // An explicit `typ: undefined` leaves the header without a typ.
  const typ = 'typ' in options ? options.typ : 'JWT';
  const header = typ === undefined ? { alg } : { alg, typ };
  const input = `${b64(header)}.${b64(payload)}`;
  return `${input}.${createHmac(hash, options.key ?? config.jwtSecret)
    .update(input)
    .digest('base64url')}`;
}

function unsigned(alg: string, payload: Claims): string {
  return `${b64({ alg, typ: 'JWT' })}.${b64(payload)}.`;
}

/** Keeps a token's signature but swaps its payload. */
function withPayload(token: string, payload: Claims): string {
  const [header, , signature] = token.split('.');
  return `${header}.${b64(payload)}.${signature}`;
}

async function asymmetricToken(alg: 'RS256' | 'ES256', payload: Claims): Promise<string> {
  const { privateKey } =
    alg === 'RS256'
      ? generateKeyPairSync('rsa', { modulusLength: 2048 })
      : generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return new SignJWT(payload).setProtectedHeader({ alg, typ: 'JWT' }).sign(privateKey);
}

function me(input: Omit<HttpEventInput, 'path'>) {
  return invoke(meHandler, { path: '/wechat/me', ...input });
}

function updateInfo(token: string | undefined, input: Omit<HttpEventInput, 'method' | 'path' | 'token'>) {
  return invoke(updateInfoHandler, { method: 'PUT', path: '/wechat/info', token, ...input });
}

beforeAll(async () => {
  config = await loadConfig();
  alice = await signInUser();
  bob = await signInUser();
});

beforeEach(() => {
  counter = countDynamoCalls();
});

afterEach(() => {
  counter.stop();
});

describe('a well-formed token (control)', () => {
  it('is accepted when built by hand the way the server builds it', async () => {
    // Act
    const result = await me({ headers: { authorization: `Bearer ${hmacToken(claims(alice.user.id))}` } });
    // Assess
    expect(result.status).toBe(200);
    expect(result.data?.user.id).toBe(alice.user.id);
  });
});

type Forgery = {
  row: string;
  name: string;
  authorization: () => Promise<string | undefined> | string | undefined;
};

const bearer = (token: string) => `Bearer ${token}`;

/** §2.2: every row is a 401 on GET /wechat/me. */
const FORGERIES: Forgery[] = [
  { row: 'J1', name: 'alg none', authorization: () => bearer(unsigned('none', claims(alice.user.id))) },
  { row: 'J1', name: 'alg None', authorization: () => bearer(unsigned('None', claims(alice.user.id))) },
  { row: 'J1', name: 'alg NONE', authorization: () => bearer(unsigned('NONE', claims(alice.user.id))) },
  {
    row: 'J1',
    name: 'alg none with a signature attached',
    authorization: () => {
      const [, , signature] = alice.token.split('.');
      return bearer(`${unsigned('none', claims(alice.user.id))}${signature}`);
    },
  },
  {
    row: 'J2',
    name: 'HS384 with our key',
    authorization: () => bearer(hmacToken(claims(alice.user.id), { alg: 'HS384' })),
  },
  {
    row: 'J2',
    name: 'HS512 with our key',
    authorization: () => bearer(hmacToken(claims(alice.user.id), { alg: 'HS512' })),
  },
  {
    row: 'J2',
    name: 'RS256, validly signed',
    authorization: async () => bearer(await asymmetricToken('RS256', claims(alice.user.id))),
  },
  {
    row: 'J2',
    name: 'ES256, validly signed',
    authorization: async () => bearer(await asymmetricToken('ES256', claims(alice.user.id))),
  },
  {
    row: 'J3',
    name: 'sub swapped to another user, signature kept',
    authorization: () => bearer(withPayload(alice.token, claims(bob.user.id))),
  },
  {
    row: 'J3',
    name: 'aud swapped, signature kept',
    authorization: () => bearer(withPayload(alice.token, claims(alice.user.id, { aud: 'admin' }))),
  },
  {
    row: 'J4',
    name: 'exp 60 s in the past (beyond the 30 s tolerance)',
    authorization: () => bearer(hmacToken(claims(alice.user.id, { iat: now() - 3600, exp: now() - 60 }))),
  },
  {
    row: 'J4',
    name: 'exp missing',
    authorization: () => bearer(hmacToken(claims(alice.user.id, { exp: undefined }))),
  },
  {
    row: 'J5',
    name: 'nbf an hour ahead',
    authorization: () => bearer(hmacToken(claims(alice.user.id, { nbf: now() + 3600 }))),
  },
  {
    row: 'J5',
    name: 'iat an hour ahead',
    authorization: () => bearer(hmacToken(claims(alice.user.id, { iat: now() + 3600, exp: now() + 7200 }))),
  },
  {
    row: 'J5',
    name: 'iat older than the session lifetime (exp still ahead)',
    authorization: () =>
      bearer(
        hmacToken(claims(alice.user.id, { iat: now() - config.jwtTtlSeconds - 3600, exp: now() + 3600 })),
      ),
  },
  {
    row: 'J5',
    name: 'iat missing',
    authorization: () => bearer(hmacToken(claims(alice.user.id, { iat: undefined }))),
  },
  {
    row: 'J6',
    name: 'wrong iss',
    authorization: () => bearer(hmacToken(claims(alice.user.id, { iss: 'someone-else' }))),
  },
  {
    row: 'J6',
    name: 'wrong aud',
    authorization: () => bearer(hmacToken(claims(alice.user.id, { aud: 'another-app' }))),
  },
  {
    row: 'J6',
    name: 'aud array without ours',
    authorization: () => bearer(hmacToken(claims(alice.user.id, { aud: ['another-app', 'admin'] }))),
  },
  {
    row: 'J7',
    name: 'typ refresh+jwt',
    authorization: () => bearer(hmacToken(claims(alice.user.id), { typ: 'refresh+jwt' })),
  },
  {
    row: 'J7',
    name: 'typ missing',
    authorization: () => bearer(hmacToken(claims(alice.user.id), { typ: undefined })),
  },
  {
    row: 'J8',
    name: 'signed with another (rotated-out) key',
    authorization: () =>
      bearer(hmacToken(claims(alice.user.id), { key: 'a-rotated-out-jwt-secret-of-at-least-32-bytes' })),
  },
  {
    row: 'J8',
    name: 'signed with the literal key "undefined"',
    authorization: () => bearer(hmacToken(claims(alice.user.id), { key: 'undefined' })),
  },
  {
    row: 'J8',
    name: 'signed with an empty key',
    authorization: () => bearer(hmacToken(claims(alice.user.id), { key: '' })),
  },
  {
    row: 'J10',
    name: 'two segments',
    authorization: () => bearer(alice.token.split('.').slice(0, 2).join('.')),
  },
  {
    row: 'J10',
    name: 'four segments',
    authorization: () => bearer(`${alice.token}.${alice.token.split('.')[2]}`),
  },
  {
    row: 'J10',
    name: 'non-base64url characters',
    authorization: () => bearer(alice.token.replace(/-|_/g, '+').replace(/\.([^.]*)$/, '.$1=')),
  },
  {
    row: 'J10',
    name: 'base64url that is not JSON',
    authorization: () =>
      bearer(`${Buffer.from('not json').toString('base64url')}.${alice.token.split('.')[1]}.x`),
  },
  {
    row: 'J10',
    name: 'duplicate Authorization headers (joined by API Gateway)',
    authorization: () => `Bearer ${alice.token},Bearer ${alice.token}`,
  },
  { row: 'J10', name: 'Basic scheme', authorization: () => `Basic ${Buffer.from('a:b').toString('base64')}` },
  { row: 'J10', name: 'token without a scheme', authorization: () => alice.token },
  {
    row: 'J11',
    name: 'a validly signed token over 4 KB',
    authorization: () => bearer(hmacToken(claims(alice.user.id, { pad: 'x'.repeat(4096) }))),
  },
  { row: 'J12', name: 'sub a number', authorization: () => bearer(hmacToken(claims(12345))) },
  { row: 'J12', name: 'sub an array', authorization: () => bearer(hmacToken(claims([alice.user.id]))) },
  {
    row: 'J12',
    name: 'sub an object',
    authorization: () => bearer(hmacToken(claims({ id: alice.user.id }))),
  },
  { row: 'J12', name: 'sub not a user id', authorization: () => bearer(hmacToken(claims('admin'))) },
  {
    row: 'J12',
    name: 'sub with key-injection characters',
    authorization: () => bearer(hmacToken(claims(`${alice.user.id}#ADMIN`))),
  },
  { row: 'J14', name: 'no Authorization header', authorization: () => undefined },
  { row: 'J14', name: 'an empty Bearer', authorization: () => 'Bearer ' },
];

describe('§2.2 session tokens on GET /wechat/me', () => {
  it.each(FORGERIES)('$row $name → 401, nothing read or written', async (forgery) => {
    // Prepare
    const authorization = await forgery.authorization();
    // Act
    const result = await me({ headers: authorization === undefined ? {} : { authorization } });
    // Assess
    expect(result).toMatchObject({ status: 401, success: false });
    expect(result.code).toMatch(/^(UNAUTHORIZED|INVALID_TOKEN|TOKEN_EXPIRED)$/);
    expect(result.message).toEqual(expect.any(String));
    expect(result.data).toBeUndefined();
    expect(counter.calls()).toEqual([]);
  });

  it('J4 an expired token answers TOKEN_EXPIRED', async () => {
    // Act
    const result = await me({
      headers: {
        authorization: bearer(hmacToken(claims(alice.user.id, { iat: now() - 3600, exp: now() - 60 }))),
      },
    });
    // Assess
    expect(result).toMatchObject({ status: 401, code: 'TOKEN_EXPIRED' });
  });

  it('J10 a token in the query string is not a session', async () => {
    // Act
    const result = await me({ queryStringParameters: { token: alice.token, access_token: alice.token } });
    // Assess
    expect(result).toMatchObject({ status: 401, success: false, code: 'UNAUTHORIZED' });
    expect(counter.calls()).toEqual([]);
  });

  it('J12 a validly signed token for an unknown user → 401 USER_NOT_FOUND, read only', async () => {
    // Prepare
    const token = hmacToken(claims('uUnknownUser0000000000'));
    // Act
    const result = await me({ token });
    // Assess
    expect(result).toMatchObject({ status: 401, success: false, code: 'USER_NOT_FOUND' });
    expect(counter.calls()).toEqual(['GetItem']);
    expect(counter.writes()).toEqual([]);
  });

  it('J12 the token of a deleted user → 401 USER_NOT_FOUND, read only', async () => {
    // Prepare
    const { token, user } = await signInUser();
    counter.stop();
    await dynamo().send(new DeleteCommand({ TableName: config.usersTable, Key: { id: user.id } }));
    counter = countDynamoCalls();
    // Act
    const result = await me({ token });
    // Assess
    expect(result).toMatchObject({ status: 401, success: false, code: 'USER_NOT_FOUND' });
    expect(counter.writes()).toEqual([]);
    expect(await storedUser(user.id)).toBeUndefined();
  });

  it('J12 a token for an unknown user cannot create one through PUT /wechat/info', async () => {
    // Prepare
    const id = 'uNeverSignedIn00000000';
    // Act
    const result = await updateInfo(hmacToken(claims(id)), { body: { nickname: 'ghost' } });
    // Assess
    expect(result).toMatchObject({ status: 401, success: false, code: 'USER_NOT_FOUND' });
    expect(await storedUser(id)).toBeUndefined();
  });

  it.each([
    ['J1 alg none', () => unsigned('none', claims(bob.user.id))],
    ['J3 sub swapped', () => withPayload(alice.token, claims(bob.user.id))],
    ['J2 HS512', () => hmacToken(claims(bob.user.id), { alg: 'HS512' })],
    ['J8 empty key', () => hmacToken(claims(bob.user.id), { key: '' })],
  ])('%s cannot update another user through PUT /wechat/info', async (_name, forge) => {
    // Prepare
    const before = await storedUser(bob.user.id);
    counter.reset();
    // Act
    const result = await invoke(updateInfoHandler, {
      method: 'PUT',
      path: '/wechat/info',
      headers: { authorization: bearer(forge()) },
      body: { nickname: 'pwned' },
    });
    // Assess
    expect(result).toMatchObject({ status: 401, success: false });
    expect(counter.calls()).toEqual([]);
    expect(await storedUser(bob.user.id)).toEqual(before);
  });
});

describe('§2.2 J13 routes take no user id', () => {
  it('a body naming another user changes only the caller', async () => {
    // Prepare
    const bobBefore = await storedUser(bob.user.id);
    // Act
    const result = await updateInfo(alice.token, {
      body: { id: bob.user.id, userId: bob.user.id, openid: 'oHijack000', nickname: '爱丽丝' },
      queryStringParameters: { userId: bob.user.id },
      pathParameters: { id: bob.user.id },
    });
    // Assess
    expect(result.status).toBe(200);
    expect(result.data?.user).toMatchObject({ id: alice.user.id, nickname: '爱丽丝' });
    expect(await storedUser(alice.user.id)).toMatchObject({ id: alice.user.id, nickname: '爱丽丝' });
    expect((await storedUser(alice.user.id))?.openid).not.toBe('oHijack000');
    expect(await storedUser(bob.user.id)).toEqual(bobBefore);
    expect(await storedUser('oHijack000')).toBeUndefined();
  });

  it('a body naming only another user is 400 NO_CHANGES and writes nothing', async () => {
    // Prepare
    const bobBefore = await storedUser(bob.user.id);
    counter.reset();
    // Act
    const result = await updateInfo(alice.token, { body: { id: bob.user.id, userId: bob.user.id } });
    // Assess
    expect(result).toMatchObject({ status: 400, success: false, code: 'NO_CHANGES' });
    expect(counter.writes()).toEqual([]);
    expect(await storedUser(bob.user.id)).toEqual(bobBefore);
  });

  it('GET /wechat/me with another user id in the query answers the caller', async () => {
    // Act
    const result = await me({
      token: alice.token,
      queryStringParameters: { userId: bob.user.id, id: bob.user.id },
    });
    // Assess
    expect(result.status).toBe(200);
    expect(result.data?.user.id).toBe(alice.user.id);
  });
});

const JSON_TYPE = { 'content-type': 'application/json' };
const MASS_ASSIGNMENT = {
  memberUntil: '2099-01-01T00:00:00.000Z',
  membershipExpiredAt: '2099-01-01T00:00:00.000Z',
  paidDays: 3650,
  openid: 'oAttacker000',
  unionid: 'oAttackerUnion',
  id: 'uAttacker000000000000',
  userId: 'uAttacker000000000000',
  role: 1,
  isAdmin: true,
  createdAt: '2000-01-01T00:00:00.000Z',
  updatedAt: '2000-01-01T00:00:00.000Z',
  version: 99,
};
const INJECTION_NAMES = { 'a.b': 'x', '#x': 'x', ':v': 'x', '[0]': 'x', [`n${'x'.repeat(299)}`]: 'x' };

/** §2.3: every row is refused with the stored user left as it was. */
const BAD_UPDATES: {
  row: string;
  name: string;
  input: Omit<HttpEventInput, 'method' | 'path' | 'token'>;
  status: number;
  code: string;
}[] = [
  {
    row: 'P1',
    name: 'non-JSON',
    input: { body: 'nickname=x', headers: JSON_TYPE },
    status: 400,
    code: 'INVALID_JSON',
  },
  {
    row: 'P1',
    name: 'truncated JSON',
    input: { body: '{"nickname":', headers: JSON_TYPE },
    status: 400,
    code: 'INVALID_JSON',
  },
  {
    row: 'P1',
    name: 'a JSON array',
    input: { body: '[{"nickname":"x"}]' },
    status: 400,
    code: 'VALIDATION_ERROR',
  },
  { row: 'P1', name: 'a JSON string', input: { body: '"x"' }, status: 400, code: 'VALIDATION_ERROR' },
  { row: 'P1', name: 'a JSON number', input: { body: '1' }, status: 400, code: 'VALIDATION_ERROR' },
  { row: 'P1', name: 'JSON null', input: { body: 'null' }, status: 400, code: 'VALIDATION_ERROR' },
  { row: 'P1', name: 'JSON true', input: { body: 'true' }, status: 400, code: 'VALIDATION_ERROR' },
  {
    row: 'P1',
    name: 'an empty body',
    input: { body: '', headers: JSON_TYPE },
    status: 400,
    code: 'INVALID_JSON',
  },
  { row: 'P1', name: 'no body', input: { headers: JSON_TYPE }, status: 400, code: 'INVALID_JSON' },
  {
    row: 'P2',
    name: 'body over 16 KB',
    input: { body: { nickname: 'x', introduce: 'y'.repeat(17 * 1024) } },
    status: 413,
    code: 'PAYLOAD_TOO_LARGE',
  },
  {
    row: 'P2',
    name: 'non-JSON body over 16 KB',
    input: { body: '{'.repeat(17 * 1024), headers: JSON_TYPE },
    status: 413,
    code: 'PAYLOAD_TOO_LARGE',
  },
  // Product decision (lib/users.ts): unknown fields are ignored, so mass assignment alone has nothing to change.
  {
    row: 'P3',
    name: 'only protected fields',
    input: { body: MASS_ASSIGNMENT },
    status: 400,
    code: 'NO_CHANGES',
  },
  {
    row: 'P4',
    name: '__proto__',
    input: { body: '{"__proto__":{"isAdmin":true}}', headers: JSON_TYPE },
    status: 400,
    code: 'INVALID_JSON',
  },
  {
    row: 'P4',
    name: '__proto__ next to a valid field',
    input: { body: '{"nickname":"proto","__proto__":{"role":1}}', headers: JSON_TYPE },
    status: 400,
    code: 'INVALID_JSON',
  },
  {
    row: 'P4',
    name: 'constructor.prototype',
    input: { body: '{"constructor":{"prototype":{"isAdmin":true}}}', headers: JSON_TYPE },
    status: 400,
    code: 'INVALID_JSON',
  },
  {
    row: 'P5',
    name: 'nickname a number',
    input: { body: { nickname: 1 } },
    status: 400,
    code: 'VALIDATION_ERROR',
  },
  {
    row: 'P5',
    name: 'nickname an array',
    input: { body: { nickname: ['x'] } },
    status: 400,
    code: 'VALIDATION_ERROR',
  },
  {
    row: 'P5',
    name: 'nickname an object',
    input: { body: { nickname: { $set: 'x' } } },
    status: 400,
    code: 'VALIDATION_ERROR',
  },
  {
    row: 'P5',
    name: 'nickname null',
    input: { body: { nickname: null } },
    status: 400,
    code: 'VALIDATION_ERROR',
  },
  {
    row: 'P5',
    name: 'nickname a boolean',
    input: { body: { nickname: true } },
    status: 400,
    code: 'VALIDATION_ERROR',
  },
  { row: 'P5', name: 'sex a string', input: { body: { sex: '1' } }, status: 400, code: 'VALIDATION_ERROR' },
  { row: 'P5', name: 'sex out of range', input: { body: { sex: 3 } }, status: 400, code: 'VALIDATION_ERROR' },
  { row: 'P5', name: 'sex a fraction', input: { body: { sex: 1.5 } }, status: 400, code: 'VALIDATION_ERROR' },
  {
    row: 'P5',
    name: 'avatar a number',
    input: { body: { avatar: 1 } },
    status: 400,
    code: 'VALIDATION_ERROR',
  },
  {
    row: 'P5',
    name: 'company an array',
    input: { body: { company: [] } },
    status: 400,
    code: 'VALIDATION_ERROR',
  },
  {
    row: 'P5',
    name: 'one bad field among good ones',
    input: { body: { nickname: 'fine', company: 'fine', introduce: 42 } },
    status: 400,
    code: 'VALIDATION_ERROR',
  },
  {
    row: 'P6',
    name: 'nickname over 32 characters',
    input: { body: { nickname: '字'.repeat(33) } },
    status: 400,
    code: 'VALIDATION_ERROR',
  },
  {
    row: 'P6',
    name: 'introduce over 256 characters',
    input: { body: { introduce: 'a'.repeat(257) } },
    status: 400,
    code: 'VALIDATION_ERROR',
  },
  {
    row: 'P6',
    name: 'company over 64 characters',
    input: { body: { company: 'a'.repeat(65) } },
    status: 400,
    code: 'VALIDATION_ERROR',
  },
  {
    row: 'P6',
    name: 'NUL',
    input: { body: { nickname: 'a\u0000b' } },
    status: 400,
    code: 'VALIDATION_ERROR',
  },
  {
    row: 'P6',
    name: 'escape',
    input: { body: { nickname: 'a\u001bb' } },
    status: 400,
    code: 'VALIDATION_ERROR',
  },
  { row: 'P6', name: 'newline', input: { body: { company: 'a\nb' } }, status: 400, code: 'VALIDATION_ERROR' },
  {
    row: 'P6',
    name: 'bidi override U+202E',
    input: { body: { nickname: 'abc\u202Egnp.exe' } },
    status: 400,
    code: 'VALIDATION_ERROR',
  },
  {
    row: 'P6',
    name: 'lone surrogate',
    input: { body: { nickname: 'a\ud800b' } },
    status: 400,
    code: 'VALIDATION_ERROR',
  },
  {
    row: 'P6',
    name: 'zero-width only',
    input: { body: { nickname: '\u200b\u200c\u200d' } },
    status: 400,
    code: 'VALIDATION_ERROR',
  },
  {
    row: 'P6',
    name: 'spaces only',
    input: { body: { nickname: '   ' } },
    status: 400,
    code: 'VALIDATION_ERROR',
  },
  {
    row: 'P6',
    name: 'empty nickname',
    input: { body: { nickname: '' } },
    status: 400,
    code: 'VALIDATION_ERROR',
  },
  ...[
    'javascript:alert(1)',
    'data:image/png;base64,iVBORw0KGgo=',
    'file:///etc/passwd',
    'http://169.254.169.254/latest/meta-data/',
    'http://thirdwx.qlogo.cn/avatar.png',
    'ftp://example.com/a.png',
    'https://user:pass@example.com/a.png',
    'https://localhost/a.png',
    '//example.com/a.png',
    'not a url',
    `https://example.com/${'a'.repeat(600)}`,
  ].map((avatar) => ({
    row: 'P7',
    name: `avatar ${avatar.slice(0, 48)}`,
    input: { body: { avatar } },
    status: 400,
    code: 'VALIDATION_ERROR',
  })),
  // Unknown names are ignored (never reach an expression), so these bodies have nothing to change.
  {
    row: 'P8',
    name: 'expression-injection names',
    input: { body: INJECTION_NAMES },
    status: 400,
    code: 'NO_CHANGES',
  },
  { row: 'P9', name: '{}', input: { body: {} }, status: 400, code: 'NO_CHANGES' },
  {
    row: 'P9',
    name: 'only unknown look-alike keys (wx.getUserProfile names)',
    input: { body: { nickName: 'camel', avatarUrl: 'https://example.com/a.png', gender: 1 } },
    status: 400,
    code: 'NO_CHANGES',
  },
];

describe('§2.3 bad profile updates on PUT /wechat/info', () => {
  it.each(BAD_UPDATES)('$row $name → $status $code, stored user unchanged', async (bad) => {
    // Prepare
    const before = await storedUser(alice.user.id);
    counter.reset();
    // Act
    const result = await updateInfo(alice.token, bad.input);
    // Assess
    expect(result).toMatchObject({ status: bad.status, success: false, code: bad.code });
    expect(result.message).toEqual(expect.any(String));
    expect(result.data).toBeUndefined();
    expect(counter.writes()).toEqual([]);
    expect(await storedUser(alice.user.id)).toEqual(before);
  });

  it('P3 protected fields next to an allowed one: only the allowed one is stored', async () => {
    // Prepare
    const before = (await storedUser(alice.user.id)) ?? {};
    // Act
    const result = await updateInfo(alice.token, { body: { ...MASS_ASSIGNMENT, nickname: '只改昵称' } });
    // Assess
    expect(result.status).toBe(200);
    expect(result.data?.user).toMatchObject({ id: alice.user.id, role: 0, membershipExpiredAt: null });
    const after = (await storedUser(alice.user.id)) ?? {};
    const { nickname, updatedAt, ...rest } = after;
    const { nickname: _n, updatedAt: _u, ...restBefore } = before;
    expect(nickname).toBe('只改昵称');
    expect(updatedAt).not.toBe(MASS_ASSIGNMENT.updatedAt);
    expect(rest).toEqual(restBefore);
    expect(Object.keys(after).filter((key) => !(key in before))).toEqual([]);
  });

  it('P4 leaves Object.prototype untouched', () => {
    expect(({} as Record<string, unknown>).isAdmin).toBeUndefined();
    expect(({} as Record<string, unknown>).role).toBeUndefined();
  });

  it('P6 stores accepted text exactly as sent', async () => {
    // Prepare
    const changes = {
      nickname: `😀${'字'.repeat(30)}é`,
      company: `O'Brien & "Sons" <b>`,
      introduce: '  leading and trailing spaces kept; emoji 👨‍👩‍👧 and 中文 ',
    };
    // Act
    const result = await updateInfo(alice.token, { body: changes });
    // Assess
    expect(result.status).toBe(200);
    expect(result.data?.user).toMatchObject(changes);
    expect(await storedUser(alice.user.id)).toMatchObject(changes);
    expect((await me({ token: alice.token })).data?.user).toMatchObject(changes);
  });

  it('P8 expression-injection names next to an allowed field never become attributes', async () => {
    // Prepare
    const before = (await storedUser(alice.user.id)) ?? {};
    // Act
    const result = await updateInfo(alice.token, { body: { ...INJECTION_NAMES, company: 'ACME' } });
    // Assess
    expect(result.status).toBe(200);
    const after = (await storedUser(alice.user.id)) ?? {};
    expect(after.company).toBe('ACME');
    expect(Object.keys(after).sort()).toEqual(Object.keys(before).sort());
  });

  it('P9 resubmitting the current values is a 200 that leaves the profile as it was', async () => {
    // Prepare (an avatar is set first: the default '' is not accepted back, see the report)
    await updateInfo(alice.token, { body: { avatar: 'https://thirdwx.qlogo.cn/mmopen/p9.png' } });
    const before = (await storedUser(alice.user.id)) ?? {};
    const { nickname, avatar, sex, company, introduce } = before;
    // Act
    const result = await updateInfo(alice.token, { body: { nickname, avatar, sex, company, introduce } });
    // Assess
    expect(result.status).toBe(200);
    expect(await storedUser(alice.user.id)).toMatchObject({ nickname, avatar, sex, company, introduce });
  });

  it('P7 accepts an https avatar', async () => {
    // Act
    const avatar = 'https://thirdwx.qlogo.cn/mmopen/vi_32/abc/132';
    const result = await updateInfo(alice.token, { body: { avatar } });
    // Assess
    expect(result.status).toBe(200);
    expect(await storedUser(alice.user.id)).toMatchObject({ avatar });
  });
});
