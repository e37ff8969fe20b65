import { envValue } from '#lib/env';
import { registerBills } from './bill';
import { registerFaultControl, registerLoginControl, registerPayControl } from './control';
import { LoginCodes, registerLogin } from './login';
import { OAuthState, registerOAuth } from './oauth';
import { PayStore } from './pay-store';
import { registerPayV2 } from './pay-v2';
import { payV3SettingsFromEnv, registerPayV3 } from './pay-v3';
import { Sandbox } from './server';
import { registerSite } from './site';

/**
 * A sandbox configured from the same names the app reads (WECHAT_APPID, WECHAT_SECRET, …): the WeChat endpoints,
 * then the /sandbox/ control routes, then the site (simulator page, docs, `/wechat/*` forwarded to the local API at
 * SANDBOX_API_BASE, default http://127.0.0.1:$PORT).
 */
export function createConfiguredSandbox(): Sandbox {
  const sandbox = new Sandbox();
  const store = new PayStore();
  const codes = new LoginCodes();
  registerLogin(sandbox, codes, { appId: envValue('WECHAT_APPID'), secret: envValue('WECHAT_SECRET') });
  registerOAuth(sandbox, new OAuthState(), {
    appId: envValue('WECHAT_MP_APPID'),
    secret: envValue('WECHAT_MP_SECRET'),
  });
  const v2Settings = {
    appId: envValue('WECHAT_APPID'),
    mpAppId: envValue('WECHAT_MP_APPID'),
    mchId: envValue('WECHAT_MCH_ID'),
    mchKey: envValue('WECHAT_MCH_KEY'),
  };
  const v3Settings = payV3SettingsFromEnv();
  registerPayV2(sandbox, store, v2Settings);
  registerPayV3(sandbox, store, v3Settings);
  registerBills(sandbox, store, v2Settings, v3Settings);
  registerFaultControl(sandbox);
  registerLoginControl(sandbox, codes);
  registerPayControl(sandbox, store);
  registerSite(sandbox, envValue('SANDBOX_API_BASE') || `http://127.0.0.1:${envValue('PORT', '3000')}`);
  return sandbox;
}
