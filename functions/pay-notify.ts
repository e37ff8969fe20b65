import { notifyHandler } from '#lib/notify';

/** WeChat Pay's notify_url (a Lambda Function URL in AWS; POST /wechat/notify locally). */
export const handler = notifyHandler();
