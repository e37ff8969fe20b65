import { expectTypeOf, it } from 'vitest';
import type { exportData } from '#lib/account';
import type { PublicOrder } from '#lib/payments/rules';
import type { publicPlans } from '#lib/plans';
import type { PublicUser } from '#lib/users';
import type { AccountExport, Order, Plan, User } from '../../../client/index.js';

/**
 * client/index.d.ts restates the shapes so the helper stays dependency-free; `npm run typecheck` holds them to
 * what the handlers return (the runtime shapes are held by the OpenAPI spec).
 */
it('types what the handlers return', () => {
  expectTypeOf<PublicUser>().toExtend<User>();
  expectTypeOf<PublicOrder>().toExtend<Order>();
  expectTypeOf<ReturnType<typeof publicPlans>[number]>().toExtend<Plan>();
  expectTypeOf<Awaited<ReturnType<typeof exportData>>>().toExtend<AccountExport>();
});
