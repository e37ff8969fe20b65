import { createSecretKey, type KeyObject } from 'node:crypto';
import { decodeJwt, errors as joseErrors, jwtVerify, SignJWT } from 'jose';
import type { Config } from './config';
import { UnauthorizedError } from './errors';

type SessionConfig = Pick<Config, 'jwtSecret' | 'jwtIssuer' | 'jwtAudience' | 'jwtTtlSeconds'>;

const ALG = 'HS256';
const TYP = 'JWT';
const CLOCK_TOLERANCE_SECONDS = 30;
const MAX_TOKEN_CHARS = 4096;
/** Our user ids: `u` and base64url characters (never an identity-link key). */
export const USER_ID = /^u[0-9A-Za-z_-]{8,64}$/;

/**
 * Where a session was opened: the mini-program (`wx.login`), or an H5 page in WeChat through the official
 * account's web OAuth (claim `ch: 'h5'`; tokens without `ch` are mini-program sessions).
 */
export type Channel = 'miniprogram' | 'h5';

/**
 * A verified session: whose it is, the user's session generation it was issued under (`sv`, 0 when absent),
 * and its channel (which AppID and openid pay for it).
 */
export interface Session {
  userId: string;
  sessionVersion: number;
  /** Absent for mini-program sessions (every token issued before channels existed is one). */
  channel?: Channel;
}

/**
 * Issues a session token: HS256 JWT with sub = user id, sv = the user's session generation, iss, aud, iat,
 * exp (now + jwtTtlSeconds), and `ch: 'h5'` for an H5 session (mini-program tokens carry no `ch`).
 */
export async function issueSessionToken(
  userId: string,
  config: SessionConfig,
  now = new Date(),
  sessionVersion = 0,
  channel: Channel = 'miniprogram',
): Promise<string> {
  const iat = Math.floor(now.getTime() / 1000);
  return new SignJWT(channel === 'h5' ? { sv: sessionVersion, ch: 'h5' } : { sv: sessionVersion })
    .setProtectedHeader({ alg: ALG, typ: TYP })
    .setSubject(userId)
    .setIssuer(config.jwtIssuer)
    .setAudience(config.jwtAudience)
    .setIssuedAt(iat)
    .setExpirationTime(iat + config.jwtTtlSeconds)
    .sign(jwtKey(config.jwtSecret));
}

/**
 * Verifies a session token and returns its session (user id and session generation). Only HS256 with our key, iss, aud and typ; exp, iat
 * and sub required; 30 s clock tolerance; tokens older than the configured lifetime are refused.
 * Throws UnauthorizedError (401) for anything else.
 */
export async function verifySessionToken(
  token: string,
  config: SessionConfig,
  now = new Date(),
): Promise<Session> {
  if (token.length > MAX_TOKEN_CHARS || token.split('.').length !== 3) {
    throw new UnauthorizedError('登录已失效，请重新登录', 'INVALID_TOKEN', 'malformed token');
  }
  try {
    const { payload } = await jwtVerify(token, jwtKey(config.jwtSecret), {
      algorithms: [ALG],
      typ: TYP,
      issuer: config.jwtIssuer,
      audience: config.jwtAudience,
      requiredClaims: ['exp', 'iat', 'sub'],
      clockTolerance: CLOCK_TOLERANCE_SECONDS,
      maxTokenAge: config.jwtTtlSeconds,
      currentDate: now,
    });
    if (typeof payload.sub !== 'string' || !USER_ID.test(payload.sub)) {
      throw new UnauthorizedError('登录已失效，请重新登录', 'INVALID_TOKEN', 'bad sub');
    }
    const sv = payload.sv ?? 0;
    if (typeof sv !== 'number' || !Number.isSafeInteger(sv) || sv < 0) {
      throw new UnauthorizedError('登录已失效，请重新登录', 'INVALID_TOKEN', 'bad sv');
    }
    const ch = payload.ch ?? 'miniprogram';
    if (ch !== 'miniprogram' && ch !== 'h5') {
      throw new UnauthorizedError('登录已失效，请重新登录', 'INVALID_TOKEN', 'bad ch');
    }
    return ch === 'h5'
      ? { userId: payload.sub, sessionVersion: sv, channel: 'h5' }
      : { userId: payload.sub, sessionVersion: sv };
  } catch (error) {
    if (error instanceof UnauthorizedError) throw error;
    const expired = error instanceof joseErrors.JWTExpired;
    throw new UnauthorizedError(
      expired ? '登录已过期，请重新登录' : '登录已失效，请重新登录',
      expired ? 'TOKEN_EXPIRED' : 'INVALID_TOKEN',
      (error as Error).name,
    );
  }
}

/**
 * The user id a previous session token names (`sub`), expired or not, WITHOUT verifying it: a hint only, for a
 * sign-in to read that user together with the identity link (the link decides whose account it is).
 * Undefined when there is no bearer token or it is not one of ours in shape.
 */
export function previousSessionUser(
  headers: Record<string, string | undefined> | undefined,
): string | undefined {
  try {
    const sub = decodeJwt(bearerToken(headers)).sub;
    return sub && USER_ID.test(sub) ? sub : undefined;
  } catch {
    return undefined;
  }
}

/** Reads `Authorization: Bearer <token>` (one header, one token); throws UnauthorizedError when absent or malformed. */
export function bearerToken(headers: Record<string, string | undefined> | undefined): string {
  const value = headers?.authorization;
  if (!value) throw new UnauthorizedError('请先登录', 'UNAUTHORIZED', 'no authorization header');
  const match = /^Bearer ([A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*)$/.exec(value);
  if (!match?.[1])
    throw new UnauthorizedError('登录已失效，请重新登录', 'INVALID_TOKEN', 'malformed authorization');
  return match[1];
}

/**
 * The session of the request's token (signature and claims only); throws UnauthorizedError (401). Whether
 * the session is still live is checked where the route reads the user (`liveUser`).
 */
export async function authenticate(
  event: { headers?: Record<string, string | undefined> },
  config: SessionConfig,
): Promise<Session> {
  return verifySessionToken(bearerToken(event.headers), config);
}

/**
 * The session's user as read, if the session is still live: throws UnauthorizedError USER_NOT_FOUND when
 * the user is gone (deleted) and SESSION_REVOKED when the user signed out after the token was issued.
 */
export function liveUser<U extends { sessionVersion?: number }>(user: U | undefined, session: Session): U {
  if (!user) throw new UnauthorizedError('用户不存在，请重新登录', 'USER_NOT_FOUND');
  if ((user.sessionVersion ?? 0) !== session.sessionVersion) {
    throw new UnauthorizedError('登录已失效，请重新登录', 'SESSION_REVOKED');
  }
  return user;
}

/** The JWT secret imported once per container: jose imports a raw Uint8Array again on every call. */
const importedSecrets = new WeakMap<Uint8Array, KeyObject>();

/** The HS256 key of `secret` (config.jwtSecret, at least 32 bytes), imported on first use and then reused. */
function jwtKey(secret: Uint8Array): KeyObject {
  let key = importedSecrets.get(secret);
  if (!key) {
    key = createSecretKey(secret);
    importedSecrets.set(secret, key);
  }
  return key;
}
