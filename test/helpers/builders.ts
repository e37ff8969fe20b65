import { createHash } from 'node:crypto';
import type { Session } from '#lib/auth';
import type { OrderRecord } from '#lib/repositories/order-repository';
import type { UserRecord } from '#lib/repositories/user-repository';

/** When the built records were created (ISO 8601 UTC). */
export const BUILT_AT = '2026-11-21T08:00:00.000Z';
const DEFAULT_OPENID = 'oUnitTestOpenid0000001';

/** A user id for a test openid: fixed per openid, so tests can name it before building the user. */
export function testUserId(openid = DEFAULT_OPENID): string {
  return `u${createHash('sha256').update(openid).digest('base64url').slice(0, 22)}`;
}

/** A live session of a user (the generation the user is on). */
export function sessionOf(user: Pick<UserRecord, 'id' | 'sessionVersion'>): Session {
  return { userId: user.id, sessionVersion: user.sessionVersion ?? 0 };
}

/**
 * A stored user with the seed defaults (non-member, version 0). The id is derived from the openid unless
 * `overrides` sets it.
 */
export function aUser(overrides: Partial<UserRecord> = {}): UserRecord {
  const openid = overrides.openid ?? DEFAULT_OPENID;
  return {
    id: testUserId(openid),
    openid,
    nickname: '微信用户a1b2c3',
    avatar: '',
    sex: 2,
    role: 0,
    company: '',
    introduce: '',
    version: 0,
    createdAt: BUILT_AT,
    updatedAt: BUILT_AT,
    ...overrides,
  };
}

/**
 * A stored PENDING v2 order of the monthly plan (1800 fen) owned by `aUser()`, created at BUILT_AT and
 * payable for two hours.
 */
export function anOrder(overrides: Partial<OrderRecord> = {}): OrderRecord {
  const owner = aUser();
  return {
    outTradeNo: 'M20261121080000abcdefABCDEF',
    userId: owner.id,
    openid: owner.openid,
    planId: 'monthly',
    description: '会员-月度会员',
    totalFee: 1800,
    status: 'PENDING',
    payVersion: 'v2',
    clientIp: '203.0.113.7',
    createdAt: BUILT_AT,
    timeExpire: '2026-11-21T10:00:00.000Z',
    ...overrides,
  };
}
