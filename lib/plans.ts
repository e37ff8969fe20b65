/** A membership plan. Prices live only here, as integer fen; clients never send an amount. */
export interface Plan {
  id: string;
  name: string;
  months: number;
  /** Price in fen (1 CNY = 100 fen). */
  totalFee: number;
}

/** The catalog sold through `POST /wechat/pay`. */
export const PLANS: readonly Plan[] = [
  { id: 'monthly', name: '月度会员', months: 1, totalFee: 1800 },
  { id: 'quarterly', name: '季度会员', months: 3, totalFee: 4800 },
  { id: 'yearly', name: '年度会员', months: 12, totalFee: 16800 },
];

/** The plan with this id, or undefined. */
export function findPlan(id: string): Plan | undefined {
  return PLANS.find((plan) => plan.id === id);
}
