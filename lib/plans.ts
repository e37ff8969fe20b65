/** A membership plan. Prices live only here, as integer fen; clients never send an amount. */
export interface Plan {
  id: string;
  name: string;
  /** What the plan is sold as. */
  months: number;
  /**
   * What a payment adds to the membership. Fixed days (31 per month, 366 per year), never calendar
   * months: concurrent payments then extend by the same total in any order, and no one gets less than
   * the months they bought.
   */
  days: number;
  /** Price in fen (1 CNY = 100 fen). */
  totalFee: number;
}

/** The catalog sold through `POST /wechat/pay`. */
export const PLANS: readonly Plan[] = [
  { id: 'monthly', name: '月度会员', months: 1, days: 31, totalFee: 1800 },
  { id: 'quarterly', name: '季度会员', months: 3, days: 92, totalFee: 4800 },
  { id: 'yearly', name: '年度会员', months: 12, days: 366, totalFee: 16800 },
];

/** The plans as `GET /wechat/plans` shows them. */
export function publicPlans(): {
  id: string;
  name: string;
  months: number;
  days: number;
  totalFee: number;
}[] {
  return PLANS.map(({ id, name, months, days, totalFee }) => ({ id, name, months, days, totalFee }));
}

/** The plan with this id, or undefined. */
export function findPlan(id: string): Plan | undefined {
  return PLANS.find((plan) => plan.id === id);
}
