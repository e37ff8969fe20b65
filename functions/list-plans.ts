import { httpHandler, ok } from '../lib/http';
import { PLANS } from '../lib/plans';

export const handler = httpHandler(async () => ok({ plans: PLANS }, '查询会员套餐成功'));
