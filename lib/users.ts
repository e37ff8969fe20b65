import { createHash, randomBytes, randomInt } from 'node:crypto';
import * as v from 'valibot';
import { type Channel, issueSessionToken, liveUser, type Session } from './auth';
import { code2Session } from './clients/wechat-auth';
import type { Config } from './config';
import { BadRequestError, ConflictError, UnauthorizedError } from './errors';
import { logger } from './logger';
import type { ProfileChanges, UserRecord } from './repositories/user-repository';
import * as users from './repositories/user-repository';
import { validate } from './validation';

/** The user as the mini-program sees it (DESIGN.md `user`). Never holds openid, unionid or session_key. */
export interface PublicUser {
  id: string;
  nickname: string;
  avatar: string;
  sex: 0 | 1 | 2;
  role: 0 | 1;
  company: string;
  introduce: string;
  membershipExpiredAt: string | null;
  /** The bound phone number (POST /wechat/phone), only in the owner's own views; absent when none is bound. */
  phoneNumber?: string;
  /** Its country code, with phoneNumber. */
  countryCode?: string;
}

/** A new user id: random and opaque (128 bits), never derived from the openid, so a returning ex-user is new. */
export function newUserId(): string {
  return `u${randomBytes(16).toString('base64url')}`;
}

/** A new user with the seed-000 defaults: nickname 微信用户 + 6 chars, sex 2 (unknown), role 0. */
export function newUser(openid: string, unionid: string | undefined, now: string): UserRecord {
  return newUserFor({ channel: 'miniprogram', openid, unionid }, now);
}

/** The placeholder nickname a new user gets (seed 000): 微信用户 + 6 hex characters. */
const PLACEHOLDER_NICKNAME = /^微信用户[0-9a-f]{6}$/;

/**
 * A new user for a WeChat identity of either channel, with the seed-000 defaults; its unionid (when WeChat
 * gave one) is created linked.
 */
export function newUserFor(identity: Identity, now: string): UserRecord {
  return {
    id: newUserId(),
    ...(identity.channel === 'h5' ? { mpOpenid: identity.openid } : { openid: identity.openid }),
    ...(identity.unionid ? { unionid: identity.unionid, unionidLinked: true } : {}),
    nickname: `微信用户${randomBytes(3).toString('hex')}`,
    avatar: '',
    sex: 2,
    role: 0,
    company: '',
    introduce: '',
    version: 0,
    sessionVersion: 0,
    createdAt: now,
    updatedAt: now,
  };
}

/** The user's own view of a stored user (the phone number included); a lapsed membership reads as role 0. */
export function toPublicUser(user: UserRecord, now = new Date()): PublicUser {
  const member = user.role === 1 && !!user.membershipExpiredAt && new Date(user.membershipExpiredAt) > now;
  return {
    id: user.id,
    nickname: user.nickname,
    avatar: user.avatar,
    sex: user.sex,
    role: member ? 1 : 0,
    company: user.company,
    introduce: user.introduce,
    membershipExpiredAt: user.membershipExpiredAt ?? null,
    ...(user.phoneNumber && user.countryCode
      ? { phoneNumber: user.phoneNumber, countryCode: user.countryCode }
      : {}),
  };
}

export const SignInBody = v.object({
  code: v.pipe(
    v.string('请提供微信登录 code'),
    v.minLength(1, '请提供微信登录 code'),
    v.maxLength(128, '微信登录 code 格式不正确'),
    v.regex(/^[A-Za-z0-9_-]+$/, '微信登录 code 格式不正确'),
  ),
});

/**
 * The id a user got before identity links existed (derived from the openid). A user created then keeps it:
 * their first sign-in after the upgrade links the openid to it, so nobody loses an account or membership.
 */
export function legacyUserId(openid: string): string {
  return `u${createHash('sha256').update(`openid:${openid}`).digest('base64url').slice(0, 22)}`;
}

/** A WeChat identity as a sign-in received it: the openid of its channel, and the unionid when WeChat gave one. */
export interface Identity {
  channel: Channel;
  openid: string;
  unionid?: string;
}

/** The user an official-account openid (H5 web OAuth) is linked to, if any: the link read, then the user. */
export function userForMpOpenid(config: Config, mpOpenid: string): Promise<UserRecord | undefined> {
  return users.findUserByLink(config.usersTable, 'mpopenid', mpOpenid);
}

/** How often a first sign-in re-reads after losing a race before answering 409 SIGN_IN_CONFLICT. */
const LINK_ROUNDS = 5;

/**
 * The user of a WeChat identity, found or created: the openid's link (two GetItems, or one BatchGetItem when
 * `likelyUserId`, the user of the caller's previous session, is the one it names: a returning user costs
 * nothing more), else (mini-program) a legacy user, else the user the unionid is linked to, which gets this
 * openid linked (one transaction), else a new user with all its links (one transaction). Concurrent first
 * sign-ins of one person from both channels make one user: a lost race is re-read. Then a unionid WeChat
 * gives for the first time is linked. Throws ConflictError SIGN_IN_CONFLICT when the races do not settle.
 */
export async function userForIdentity(
  config: Config,
  identity: Identity,
  now: Date,
  likelyUserId?: string,
): Promise<UserRecord> {
  const table = config.usersTable;
  const kind = identity.channel === 'h5' ? 'mpopenid' : 'openid';
  let user: UserRecord | undefined;
  for (let round = 0; !user; round++) {
    if (round >= LINK_ROUNDS) throw new ConflictError('登录冲突，请重试', 'SIGN_IN_CONFLICT');
    if (round > 0) await new Promise((resolve) => setTimeout(resolve, randomInt(5, 20 * round + 6)));
    user =
      round === 0 && likelyUserId
        ? await users.findUserByLinkExpecting(table, kind, identity.openid, likelyUserId)
        : await users.findUserByLink(table, kind, identity.openid);
    if (!user && kind === 'openid') {
      user = await users.linkLegacyUser(table, identity.openid, legacyUserId(identity.openid));
    }
    if (user) break;
    const person = identity.unionid
      ? await users.findUserByLink(table, 'unionid', identity.unionid)
      : undefined;
    if (person) {
      const field = kind === 'openid' ? 'openid' : 'mpOpenid';
      if (!person[field] && (await users.linkIdentity(table, person.id, kind, identity.openid))) {
        user = { ...person, [field]: identity.openid };
      } else if (person[field]) {
        // The person already holds another openid of this channel (an unusual WeChat setup): a separate user.
        const created = newUserFor({ channel: identity.channel, openid: identity.openid }, now.toISOString());
        if (await users.createLinkedUser(table, created)) user = created;
      }
      continue;
    }
    const created = newUserFor(identity, now.toISOString());
    if (await users.createLinkedUser(table, created)) user = created;
  }
  if (identity.unionid && !(user.unionid === identity.unionid && user.unionidLinked)) {
    if (await users.linkIdentity(table, user.id, 'unionid', identity.unionid)) {
      user = { ...user, unionid: identity.unionid, unionidLinked: true };
    } else {
      logger.warn('unionid not linked: it belongs to another user, or this user has another', {
        userId: user.id,
      });
    }
  }
  return user;
}

/**
 * wx.login code → session: code2Session, then the user of that openid (userForIdentity: one BatchGetItem for
 * a returning user whose previous session named `likelyUserId`, two GetItems without it), then a session
 * token of the user's session generation. Throws what code2Session throws, and ConflictError SIGN_IN_CONFLICT.
 */
export async function signIn(
  config: Config,
  code: string,
  likelyUserId?: string,
): Promise<{ token: string; user: PublicUser }> {
  const identity = await code2Session(config, code);
  const now = new Date();
  const user = await userForIdentity(config, { channel: 'miniprogram', ...identity }, now, likelyUserId);
  const token = await issueSessionToken(user.id, config, now, user.sessionVersion ?? 0);
  return { token, user: toPublicUser(user, now) };
}

/**
 * Profile defaults from WeChat's user info (snsapi_userinfo), set only on fields the user has not set (the
 * placeholder nickname, an empty avatar) and only when they pass the same checks as `PUT /wechat/info`.
 * Returns the user as now stored (unchanged when nothing applied).
 */
export async function applyProfileDefaults(
  config: Config,
  user: UserRecord,
  info: { nickname?: string; headimgurl?: string },
  now: Date,
): Promise<UserRecord> {
  const valid = (field: 'nickname' | 'avatar', value: string | undefined) => {
    if (value === undefined) return undefined;
    const parsed = v.safeParse(ProfileUpdateBody, { [field]: value });
    return parsed.success ? (parsed.output[field] as string | undefined) : undefined;
  };
  const nickname = PLACEHOLDER_NICKNAME.test(user.nickname) ? valid('nickname', info.nickname) : undefined;
  const avatar = user.avatar === '' ? valid('avatar', info.headimgurl) : undefined;
  const updated = await users.fillProfileDefaults(
    config.usersTable,
    user.id,
    {
      ...(nickname ? { nickname: { value: nickname, replacing: user.nickname } } : {}),
      ...(avatar ? { avatar: { value: avatar, replacing: user.avatar } } : {}),
    },
    now.toISOString(),
  );
  return updated ?? user;
}

/** The signed-in user; a session whose user is gone or signed out is a 401 (UnauthorizedError). */
export async function getCurrentUser(config: Config, session: Session): Promise<UserRecord> {
  return liveUser(await users.getUser(config.usersTable, session.userId), session);
}

// Text people type (nickname, company, introduce): well-formed UTF-16, NFC, and none of the characters that
// hide, reorder or break text: C0/C1 controls, U+2028/U+2029, bidi controls and marks.
// biome-ignore lint/suspicious/noControlCharactersInRegex: refusing control characters is the point.
const UNSAFE_TEXT = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u200e\u200f\u061c\u202a-\u202e\u2066-\u2069]/;
/** Blanks and fillers that render as nothing: a value made only of these is refused. */
const BLANK = /^[\s\u115f\u1160\u200b-\u200d\u2060\u2800\u3164\uffa0\ufeff]*$/u;
/** More than 8 combining marks on one character ("zalgo" text), counted in NFD (precomposed letters included). */
const MARK_PILE = /\p{M}{9,}/u;

function text(field: string, min: number, max: number) {
  return v.pipe(
    v.string(`${field}必须是字符串`),
    v.check((s) => s.isWellFormed() && !UNSAFE_TEXT.test(s), `${field}包含不允许的字符`),
    v.normalize('NFC'),
    v.check((s) => !MARK_PILE.test(s.normalize('NFD')), `${field}包含过多的组合符号`),
    v.check((s) => [...s].length >= min && [...s].length <= max, `${field}长度应为 ${min}–${max} 个字符`),
    v.check((s) => s === '' || !BLANK.test(s), `${field}不能为空白`),
  );
}

/** Host names that never name a public server. */
const PRIVATE_HOST = /(^|\.)(localhost|local|internal|localdomain|home\.arpa)$/;

/**
 * An https URL on a public DNS host name (no credentials, no IP literal, no localhost / .local / .internal);
 * '' clears the avatar.
 */
function isAvatarUrl(value: string): boolean {
  if (value === '') return true;
  if (!URL.canParse(value)) return false;
  const url = new URL(value);
  const host = url.hostname.replace(/\.$/, '');
  const ipLiteral = /^[\d.]+$/.test(host) || host.startsWith('[');
  return (
    url.protocol === 'https:' &&
    !url.username &&
    !url.password &&
    host.includes('.') &&
    !ipLiteral &&
    !PRIVATE_HOST.test(host)
  );
}

/** Allow-listed profile fields; anything else in the body is ignored, never stored. */
export const ProfileUpdateBody = v.object({
  nickname: v.optional(text('昵称', 1, 32)),
  avatar: v.optional(
    v.pipe(
      v.string('头像必须是字符串'),
      v.maxLength(512, '头像地址过长'),
      v.check(isAvatarUrl, '头像必须是公网 https 地址'),
      // Stored as the parsed URL's href: one canonical spelling, whatever the client sent.
      v.transform((value) => (value === '' ? '' : new URL(value).href)),
    ),
  ),
  sex: v.optional(v.picklist([0, 1, 2], '性别只能是 0、1 或 2')),
  company: v.optional(text('公司', 0, 64)),
  introduce: v.optional(text('简介', 0, 256)),
});

/** Validates a profile update body into the allowed changes; throws BadRequestError (400) and writes nothing. */
export function parseProfileUpdate(body: unknown): ProfileChanges {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new BadRequestError('请求体必须是 JSON 对象', 'VALIDATION_ERROR');
  }
  const changes = Object.fromEntries(
    Object.entries(validate(ProfileUpdateBody, body)).filter(([, value]) => value !== undefined),
  ) as ProfileChanges;
  if (Object.keys(changes).length === 0) {
    throw new BadRequestError('没有可更新的字段', 'NO_CHANGES');
  }
  return changes;
}

/**
 * Applies validated profile changes to the signed-in user; throws UnauthorizedError if the user is gone or
 * the session revoked (one conditional UpdateItem: an update racing a deletion never recreates the user).
 */
export async function updateUserProfile(
  config: Config,
  session: Session,
  changes: ProfileChanges,
): Promise<PublicUser> {
  const user = await users.updateProfile(
    config.usersTable,
    session.userId,
    changes,
    new Date().toISOString(),
    session.sessionVersion,
  );
  if (!user) throw new UnauthorizedError('登录已失效，请重新登录', 'USER_NOT_FOUND');
  return toPublicUser(user);
}
