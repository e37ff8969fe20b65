import { signOut } from '#lib/account';
import { authenticate } from '#lib/auth';
import { loadConfig } from '#lib/config';
import { httpHandler, noContent } from '#lib/http';

/** `POST /wechat/sign_out`: ends every session of the caller (all devices) → 204. */
export const handler = httpHandler(async (event) => {
  const config = await loadConfig();
  await signOut(config, await authenticate(event, config));
  return noContent();
});
