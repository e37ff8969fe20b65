import { envValue } from '../../lib/config';
import { registerLogin } from './login';
import { Sandbox } from './server';

/** A sandbox configured from the same names the app reads (WECHAT_APPID, WECHAT_SECRET, …). */
export function createConfiguredSandbox(): Sandbox {
  const sandbox = new Sandbox();
  registerLogin(sandbox, { appId: envValue('WECHAT_APPID'), secret: envValue('WECHAT_SECRET') });
  return sandbox;
}
