import { envValue } from '#lib/config';
import { registerLogin } from './login';
import { registerPayControl } from './pay-control';
import { PayStore } from './pay-store';
import { registerPayV2 } from './pay-v2';
import { payV3SettingsFromEnv, registerPayV3 } from './pay-v3';
import { Sandbox } from './server';

/** A sandbox configured from the same names the app reads (WECHAT_APPID, WECHAT_SECRET, …). */
export function createConfiguredSandbox(): Sandbox {
  const sandbox = new Sandbox();
  const store = new PayStore();
  registerLogin(sandbox, { appId: envValue('WECHAT_APPID'), secret: envValue('WECHAT_SECRET') });
  registerPayV2(sandbox, store, {
    appId: envValue('WECHAT_APPID'),
    mchId: envValue('WECHAT_MCH_ID'),
    mchKey: envValue('WECHAT_MCH_KEY'),
  });
  registerPayV3(sandbox, store, payV3SettingsFromEnv());
  registerPayControl(sandbox, store);
  return sandbox;
}
