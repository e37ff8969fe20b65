import { generateKeyPair, SignJWT } from 'jose';
import { describe, expect, it } from 'vitest';
import {
  authenticate,
  bearerToken,
  issueSessionToken,
  liveUser,
  previousSessionUser,
  verifySessionToken,
} from '#lib/auth';
import { UnauthorizedError } from '#lib/errors';

const config = {
  jwtSecret: new TextEncoder().encode('unit-test-jwt-secret-of-at-least-32-bytes'),
  jwtIssuer: 'wechat-miniprogram-backend',
  jwtAudience: 'miniprogram',
  jwtTtlSeconds: 3600,
};
const USER_ID = 'uAbCdEfGhIjKlMnOpQrStUv';
const NOW = new Date('2026-11-21T08:00:00.000Z');
const NOW_S = Math.floor(NOW.getTime() / 1000);

const b64url = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');

interface ClaimsOptions {
  header?: { alg: string; typ?: string };
  change?: (jwt: SignJWT) => SignJWT;
  payload?: Record<string, unknown>;
}

/** A token builder with every claim valid; `change` adjusts the builder before signing. */
function validClaims({
  header = { alg: 'HS256', typ: 'JWT' },
  change = (jwt) => jwt,
  payload = {},
}: ClaimsOptions = {}) {
  return change(
    new SignJWT(payload)
      .setProtectedHeader(header)
      .setSubject(USER_ID)
      .setIssuer(config.jwtIssuer)
      .setAudience(config.jwtAudience)
      .setIssuedAt(NOW_S)
      .setExpirationTime(NOW_S + config.jwtTtlSeconds),
  );
}

/** Runs the verification and returns the UnauthorizedError it must throw. */
async function rejection(token: string, now = NOW): Promise<UnauthorizedError> {
  const error = await verifySessionToken(token, config, now).catch((caught: unknown) => caught);
  expect(error).toBeInstanceOf(UnauthorizedError);
  expect((error as UnauthorizedError).status).toBe(401);
  return error as UnauthorizedError;
}

describe('issueSessionToken and verifySessionToken', () => {
  it('returns the user id and session generation when a freshly issued token is verified', async () => {
    // Prepare
    const token = await issueSessionToken(USER_ID, config, NOW);

    // Act
    const session = await verifySessionToken(token, config, NOW);

    // Assess
    expect(session).toEqual({ userId: USER_ID, sessionVersion: 0 });
  });

  it('issues an HS256 JWT with sub, iss, aud, iat and exp = iat + ttl', async () => {
    // Act
    const token = await issueSessionToken(USER_ID, config, NOW);

    // Assess
    const [header, payload] = token
      .split('.')
      .slice(0, 2)
      .map((part) => JSON.parse(Buffer.from(part, 'base64url').toString()));
    expect(header).toEqual({ alg: 'HS256', typ: 'JWT' });
    expect(payload).toEqual({
      sv: 0,
      sub: USER_ID,
      iss: config.jwtIssuer,
      aud: config.jwtAudience,
      iat: NOW_S,
      exp: NOW_S + config.jwtTtlSeconds,
    });
  });

  it('accepts a token when it expired less than 30 s ago', async () => {
    // Prepare
    const token = await issueSessionToken(USER_ID, config, new Date(NOW.getTime() - (3600 + 20) * 1000));

    // Act
    const session = await verifySessionToken(token, config, NOW);

    // Assess
    expect(session).toEqual({ userId: USER_ID, sessionVersion: 0 });
  });

  it('rejects with TOKEN_EXPIRED when the token expired more than 30 s ago', async () => {
    // Prepare
    const token = await issueSessionToken(USER_ID, config, new Date(NOW.getTime() - (3600 + 31) * 1000));

    // Act
    const error = await rejection(token);

    // Assess
    expect(error.code).toBe('TOKEN_EXPIRED');
  });

  it('rejects when alg is none and the token is unsigned', async () => {
    // Prepare
    const claims = {
      sub: USER_ID,
      iss: config.jwtIssuer,
      aud: config.jwtAudience,
      iat: NOW_S,
      exp: NOW_S + 60,
    };
    const token = `${b64url({ alg: 'none', typ: 'JWT' })}.${b64url(claims)}.`;

    // Act
    const error = await rejection(token);

    // Assess
    expect(error.code).toBe('INVALID_TOKEN');
  });

  it('rejects when the token is HS512-signed with our key', async () => {
    // Prepare
    const token = await validClaims({ header: { alg: 'HS512', typ: 'JWT' } }).sign(config.jwtSecret);

    // Act
    const error = await rejection(token);

    // Assess
    expect(error.code).toBe('INVALID_TOKEN');
  });

  it('rejects when the token is RS256-signed', async () => {
    // Prepare
    const { privateKey } = await generateKeyPair('RS256');
    const token = await validClaims({ header: { alg: 'RS256', typ: 'JWT' } }).sign(privateKey);

    // Act
    const error = await rejection(token);

    // Assess
    expect(error.code).toBe('INVALID_TOKEN');
  });

  it('rejects when the payload is tampered and the signature kept', async () => {
    // Prepare
    const [header, payload, signature] = (await issueSessionToken(USER_ID, config, NOW)).split('.');
    const claims = JSON.parse(Buffer.from(payload ?? '', 'base64url').toString());
    const forged = `${header}.${b64url({ ...claims, sub: 'uSomeoneElse000000000000' })}.${signature}`;

    // Act
    const error = await rejection(forged);

    // Assess
    expect(error.code).toBe('INVALID_TOKEN');
  });

  it('rejects when the token has no exp', async () => {
    // Prepare
    const token = await new SignJWT({})
      .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
      .setSubject(USER_ID)
      .setIssuer(config.jwtIssuer)
      .setAudience(config.jwtAudience)
      .setIssuedAt(NOW_S)
      .sign(config.jwtSecret);

    // Act
    const error = await rejection(token);

    // Assess
    expect(error.code).toBe('INVALID_TOKEN');
  });

  it('rejects when the token has no iat', async () => {
    // Prepare
    const token = await new SignJWT({})
      .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
      .setSubject(USER_ID)
      .setIssuer(config.jwtIssuer)
      .setAudience(config.jwtAudience)
      .setExpirationTime(NOW_S + 60)
      .sign(config.jwtSecret);

    // Act
    const error = await rejection(token);

    // Assess
    expect(error.code).toBe('INVALID_TOKEN');
  });

  it.each<[string, ClaimsOptions]>([
    ['iss is wrong', { change: (jwt) => jwt.setIssuer('someone-else') }],
    ['aud is wrong', { change: (jwt) => jwt.setAudience('admin-console') }],
    ['aud is an array without ours', { change: (jwt) => jwt.setAudience(['a', 'b']) }],
    ['typ is not JWT', { header: { alg: 'HS256', typ: 'refresh+jwt' } }],
    ['typ is absent', { header: { alg: 'HS256' } }],
    ['nbf is 60 s in the future', { change: (jwt) => jwt.setNotBefore(NOW_S + 60) }],
    ['iat is 60 s in the future', { change: (jwt) => jwt.setIssuedAt(NOW_S + 60) }],
    ['iat is older than the session lifetime', { change: (jwt) => jwt.setIssuedAt(NOW_S - 3600 - 120) }],
  ])('rejects when %s', async (_label, options) => {
    // Prepare
    const token = await validClaims(options).sign(config.jwtSecret);

    // Act
    const error = await rejection(token);

    // Assess
    expect(error.code).toMatch(/^(INVALID_TOKEN|TOKEN_EXPIRED)$/);
  });

  it('accepts a token when nbf is within the 30 s tolerance', async () => {
    // Prepare
    const token = await validClaims({ change: (jwt) => jwt.setNotBefore(NOW_S + 20) }).sign(config.jwtSecret);

    // Act
    const session = await verifySessionToken(token, config, NOW);

    // Assess
    expect(session).toEqual({ userId: USER_ID, sessionVersion: 0 });
  });

  it('rejects when the token is signed with another key', async () => {
    // Prepare
    const otherKey = new TextEncoder().encode('another-jwt-secret-of-at-least-32-bytes!');
    const token = await validClaims().sign(otherKey);

    // Act
    const error = await rejection(token);

    // Assess
    expect(error.code).toBe('INVALID_TOKEN');
  });

  it('rejects before verifying when the token is longer than 4 KB', async () => {
    // Prepare
    const token = await validClaims({ payload: { pad: 'x'.repeat(4096) } }).sign(config.jwtSecret);

    // Act
    const error = await rejection(token);

    // Assess
    expect(token.length).toBeGreaterThan(4096);
    expect(error.detail).toBe('malformed token');
  });

  it.each([2, 4])('rejects when the token has %i segments', async (segments) => {
    // Prepare
    const parts = (await issueSessionToken(USER_ID, config, NOW)).split('.');
    const token = segments === 2 ? parts.slice(0, 2).join('.') : [...parts, parts[2]].join('.');

    // Act
    const error = await rejection(token);

    // Assess
    expect(error.detail).toBe('malformed token');
  });

  it.each(['admin', 'u123', 'u../../etc/passwd', `u${'a'.repeat(65)}`, 'uAbCdEfGh IjKl'])(
    'rejects when sub is %j',
    async (sub) => {
      // Prepare
      const token = await validClaims({ change: (jwt) => jwt.setSubject(sub) }).sign(config.jwtSecret);

      // Act
      const error = await rejection(token);

      // Assess
      expect(error.code).toBe('INVALID_TOKEN');
    },
  );

  it('rejects when sub is not a string', async () => {
    // Prepare
    const token = await new SignJWT({ sub: 12345678901 } as unknown as Record<string, unknown>)
      .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
      .setIssuer(config.jwtIssuer)
      .setAudience(config.jwtAudience)
      .setIssuedAt(NOW_S)
      .setExpirationTime(NOW_S + 60)
      .sign(config.jwtSecret);

    // Act
    const error = await rejection(token);

    // Assess
    expect(error.code).toBe('INVALID_TOKEN');
  });
});

describe('bearerToken', () => {
  it('returns the token when the header is Bearer <jwt>', async () => {
    // Prepare
    const token = await issueSessionToken(USER_ID, config, NOW);

    // Act
    const result = bearerToken({ authorization: `Bearer ${token}` });

    // Assess
    expect(result).toBe(token);
  });

  it.each([
    ['headers are undefined', undefined],
    ['there is no authorization header', {}],
    ['the authorization header is empty', { authorization: '' }],
  ])('throws UNAUTHORIZED when %s', (_label, headers) => {
    // Act
    const act = () => bearerToken(headers);

    // Assess
    expect(act).toThrow(UnauthorizedError);
    expect(act).toThrow(expect.objectContaining({ status: 401, code: 'UNAUTHORIZED' }));
  });

  it.each([
    ['two headers were joined', 'Bearer a.b.c,Bearer d.e.f'],
    ['it uses Basic', 'Basic dXNlcjpwYXNz'],
    ['the scheme is lower case', 'bearer a.b.c'],
    ['the token has 2 segments', 'Bearer a.b'],
    ['there is trailing whitespace', 'Bearer a.b.c '],
  ])('throws INVALID_TOKEN when %s', (_label, authorization) => {
    // Act
    const act = () => bearerToken({ authorization });

    // Assess
    expect(act).toThrow(expect.objectContaining({ status: 401, code: 'INVALID_TOKEN' }));
  });
});

describe('previousSessionUser', () => {
  it('reads the user id of a previous token, expired or not (a hint, unverified)', async () => {
    // Prepare
    const long = await issueSessionToken(USER_ID, config, new Date('2020-01-01T00:00:00Z'));
    // Act / Assess
    expect(previousSessionUser({ authorization: `Bearer ${long}` })).toBe(USER_ID);
  });

  it.each([
    ['no header', undefined],
    ['a malformed header', { authorization: 'Basic dXNlcjpwYXNz' }],
    ['a token that does not decode', { authorization: 'Bearer not-a.jwt.at-all' }],
  ])('gives no hint for %s', (_label, headers) => {
    // Act / Assess
    expect(previousSessionUser(headers)).toBeUndefined();
  });

  it('gives no hint when the subject is not one of our user ids (an identity-link key, say)', async () => {
    // Prepare
    const token = await new SignJWT({})
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject('openid#o1')
      .sign(config.jwtSecret);
    // Act / Assess
    expect(previousSessionUser({ authorization: `Bearer ${token}` })).toBeUndefined();
  });
});

describe('session generation (sv)', () => {
  it('carries the generation it was issued under', async () => {
    // Act
    const session = await verifySessionToken(await issueSessionToken(USER_ID, config, NOW, 7), config, NOW);

    // Assess
    expect(session).toEqual({ userId: USER_ID, sessionVersion: 7 });
  });

  it.each([
    ['the user signed out since', { sessionVersion: 1 }, 'SESSION_REVOKED'],
    ['the user is gone', undefined, 'USER_NOT_FOUND'],
  ])('refuses a session with 401 when %s', (_name, user, code) => {
    // Act
    const act = () => liveUser(user, { userId: USER_ID, sessionVersion: 0 });

    // Assess
    expect(act).toThrow(expect.objectContaining({ status: 401, code }));
  });

  it('accepts a generation-0 session of a user stored before generations existed', () => {
    // Act
    const user = liveUser<{ id: string; sessionVersion?: number }>(
      { id: USER_ID },
      { userId: USER_ID, sessionVersion: 0 },
    );

    // Assess
    expect(user).toEqual({ id: USER_ID });
  });
});

describe('authenticate', () => {
  it('returns the user id when the request carries a valid bearer token', async () => {
    // Prepare
    const token = await issueSessionToken(USER_ID, config);

    // Act
    const session = await authenticate({ headers: { authorization: `Bearer ${token}` } }, config);

    // Assess
    expect(session).toEqual({ userId: USER_ID, sessionVersion: 0 });
  });

  it('rejects with 401 when the request has no authorization header', async () => {
    // Act
    const error = await authenticate({ headers: {} }, config).catch((caught: unknown) => caught);

    // Assess
    expect(error).toBeInstanceOf(UnauthorizedError);
  });
});

describe('verifySessionToken under clock skew (30 s tolerance; research/reliability.md §3.2 F20)', () => {
  const ISSUED = new Date('2026-11-21T08:00:00.000Z');
  const at = (seconds: number) => new Date(ISSUED.getTime() + seconds * 1000);

  it.each<[string, 'accepted' | 'TOKEN_EXPIRED', number]>([
    ['1 s before expiry', 'accepted', -1],
    ['at expiry', 'accepted', 0],
    ['29 s after expiry', 'accepted', 29],
    ['30 s after expiry', 'TOKEN_EXPIRED', 30],
    ['31 s after expiry', 'TOKEN_EXPIRED', 31],
    ['6 min after expiry', 'TOKEN_EXPIRED', 360],
  ])('a token checked %s is %s', async (_name, outcome, afterExpiry) => {
    // Prepare
    const token = await issueSessionToken(USER_ID, config, ISSUED);
    // Act
    const result = await verifySessionToken(token, config, at(config.jwtTtlSeconds + afterExpiry)).catch(
      (error: unknown) => error,
    );
    // Assess
    if (outcome === 'accepted') expect(result).toEqual({ userId: USER_ID, sessionVersion: 0 });
    else {
      expect(result).toBeInstanceOf(UnauthorizedError);
      expect((result as UnauthorizedError).code).toBe(outcome);
    }
  });

  it.each<[string, 'accepted' | 'refused', number]>([
    ['29 s ahead of the verifier', 'accepted', 29],
    ['31 s ahead of the verifier', 'refused', 31],
    ['4 min ahead of the verifier', 'refused', 240],
  ])('a token from an issuer whose clock runs %s is %s', async (_name, outcome, skew) => {
    // Prepare: signed by an instance whose clock is ahead
    const token = await issueSessionToken(USER_ID, config, at(skew));
    // Act
    const result = await verifySessionToken(token, config, ISSUED).catch((error: unknown) => error);
    // Assess
    if (outcome === 'accepted') expect(result).toEqual({ userId: USER_ID, sessionVersion: 0 });
    else expect(result).toBeInstanceOf(UnauthorizedError);
  });
});
