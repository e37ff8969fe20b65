import { httpHandler, ok } from '#lib/http';
import { publicPlans } from '#lib/plans';

export const handler = httpHandler(async () => ok({ plans: publicPlans() }, '查询会员套餐成功'));
