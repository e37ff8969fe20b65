import { liveUser, type Session, USER_ID } from './auth';
import type { Config } from './config';
import { ConflictError, NotFoundError, UnauthorizedError } from './errors';
import { logger } from './logger';
import { closePendingOrder } from './payments/close';
import { type Providers, type PublicOrder, providerFor, toPublicOrder } from './payments/rules';
import type { OrderRecord } from './repositories/order-repository';
import * as orders from './repositories/order-repository';
import type { UserRecord } from './repositories/user-repository';
import * as users from './repositories/user-repository';
import { type PublicUser, toPublicUser } from './users';

/** Who asked for a deletion: the user (`DELETE /wechat/me`) or an operator (`DELETE /admin/users/{id}`). */
export type DeletedBy = 'user' | 'operator';

/**
 * Cancels an account (PIPL art. 47): closes its PENDING orders at WeChat first, then deletes the user and
 * its identity links (openids, unionid) in one transaction (profile, phone number, unionid and every session
 * go with them), then pseudonymises its orders (openid and payer IP removed; user id and money kept for the
 * books). Idempotent: an absent user only has its orders pseudonymised again. Throws ConflictError
 * ORDER_JUST_PAID when WeChat reports an order paid while closing it (settled as usual) or a payment is
 * credited meanwhile (nothing deleted then), and UpstreamError / ServiceUnavailableError when WeChat fails.
 */
export async function deleteAccount(
  config: Config,
  providers: Providers,
  userId: string,
  by: DeletedBy,
  now = new Date(),
): Promise<void> {
  const user = await users.getUser(config.usersTable, userId);
  if (user) {
    let justPaid = false;
    for (const order of await orders.listAllOrdersByUser(config.ordersTable, userId)) {
      const provider = providerFor(order, providers);
      if (order.status !== 'PENDING' || !provider) continue;
      const closed = await closePendingOrder(config, provider, order, now);
      justPaid ||= closed.kind === 'paid';
    }
    if (justPaid || !(await users.deleteUserAndLink(config.usersTable, user))) {
      throw new ConflictError('有订单刚刚支付成功，请确认后再注销', 'ORDER_JUST_PAID');
    }
  }
  // After the user is gone, so that an order opened meanwhile is pseudonymised too (and again on a retry).
  for (const order of await orders.listAllOrdersByUser(config.ordersTable, userId)) {
    await orders.pseudonymiseOrder(config.ordersTable, order.outTradeNo);
  }
  logger.info('account deleted', { userId, by, existed: !!user });
}

/** `DELETE /admin/users/{id}`: an operator cancels an account (support request); same effects. */
export async function deleteAccountForAdmin(config: Config, providers: Providers, userId: string) {
  if (!USER_ID.test(userId)) throw new NotFoundError('用户不存在', 'USER_NOT_FOUND');
  await deleteAccount(config, providers, userId, 'operator');
}

/** `DELETE /wechat/me`: the caller cancels the account; a retry after the deletion answers the same success. */
export async function deleteOwnAccount(
  config: Config,
  providers: Providers,
  session: Session,
): Promise<void> {
  const user = await users.getUser(config.usersTable, session.userId);
  if (user) liveUser(user, session);
  await deleteAccount(config, providers, session.userId, 'user');
}

/** `POST /wechat/sign_out`: ends every session of the caller on every device. Throws UnauthorizedError. */
export async function signOut(config: Config, session: Session): Promise<void> {
  if (!(await users.revokeSessions(config.usersTable, session.userId, session.sessionVersion))) {
    throw new UnauthorizedError('登录已失效，请重新登录', 'SESSION_REVOKED');
  }
}

/** The stored order without the index bookkeeping: what the export and the support view show. */
function heldOrder(order: OrderRecord): Record<string, unknown> {
  const {
    reconcileAt: _at,
    lastQueryAt: _query,
    reconcileShard: _shard,
    ...held
  } = order as OrderRecord & {
    reconcileShard?: string;
  };
  return held;
}

/** A membership period bought by a paid order. */
interface MembershipPeriod {
  outTradeNo: string;
  planId: string;
  paidAt: string | undefined;
}

/**
 * `GET /wechat/me/export` (PIPL art. 45): everything held about the caller, as held: the profile (with the bound
 * phone number), the WeChat identities, timestamps, every order, and the membership history (paid orders, oldest
 * first). Throws UnauthorizedError for a session that is not live.
 */
export async function exportData(config: Config, session: Session) {
  const [user, owned] = await Promise.all([
    users.getUser(config.usersTable, session.userId),
    orders.listAllOrdersByUser(config.ordersTable, session.userId),
  ]);
  const stored = liveUser(user, session);
  const membership: MembershipPeriod[] = owned
    .filter((order) => order.paidAt)
    .map((order) => ({ outTradeNo: order.outTradeNo, planId: order.planId, paidAt: order.paidAt }))
    .reverse();
  return {
    profile: toPublicUser(stored),
    identities: {
      openid: stored.openid ?? null,
      officialAccountOpenid: stored.mpOpenid ?? null,
      unionid: stored.unionid ?? null,
    },
    createdAt: stored.createdAt,
    updatedAt: stored.updatedAt,
    membership: { expiredAt: stored.membershipExpiredAt ?? null, history: membership },
    orders: owned.map(heldOrder),
    exportedAt: new Date().toISOString(),
  };
}

/** What support sees of a user: the public profile (membership included), its timestamps, and the orders. */
export interface AdminUserView extends Pick<UserRecord, 'createdAt' | 'updatedAt'> {
  user: PublicUser;
  orders: PublicOrder[];
}

/** A user view without the phone number (operators' views). */
function withoutPhone({ phoneNumber: _phone, countryCode: _country, ...rest }: PublicUser): PublicUser {
  return rest;
}

/** `GET /admin/users/{id}`: a user for support (profile, membership, orders). Throws NotFoundError. */
export async function getUserForAdmin(config: Config, userId: string): Promise<AdminUserView> {
  if (!USER_ID.test(userId)) throw new NotFoundError('用户不存在', 'USER_NOT_FOUND');
  const [user, owned] = await Promise.all([
    users.getUser(config.usersTable, userId),
    orders.listAllOrdersByUser(config.ordersTable, userId),
  ]);
  if (!user) throw new NotFoundError('用户不存在', 'USER_NOT_FOUND');
  return {
    // The phone number is shown only to its owner: support does not see it.
    user: withoutPhone(toPublicUser(user)),
    createdAt: user.createdAt,
    updatedAt: user.updatedAt,
    orders: owned.map(toPublicOrder),
  };
}
