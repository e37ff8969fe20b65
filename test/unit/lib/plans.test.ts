import { describe, expect, it } from 'vitest';
import { findPlan, PLANS } from '#lib/plans';

describe('plans', () => {
  it('prices every plan in whole fen', () => {
    // Assess
    for (const plan of PLANS) {
      expect(Number.isSafeInteger(plan.totalFee)).toBe(true);
      expect(plan.totalFee).toBeGreaterThan(0);
      expect(Number.isInteger(plan.months)).toBe(true);
    }
    expect(findPlan('monthly')?.totalFee).toBe(1800);
    expect(findPlan('nope')).toBeUndefined();
  });
});
