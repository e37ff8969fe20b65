import { readFileSync } from 'node:fs';
import { envValue } from '#lib/env';
import { registerBills } from './bill';
import { registerFaultControl, registerLoginControl, registerPayControl } from './control';
import { LoginCodes, registerLogin } from './login';
import { OAuthState, registerOAuth } from './oauth';
import { PayStore } from './pay-store';
import { registerPayV2 } from './pay-v2';
import { payV3SettingsFromEnv, registerPayV3 } from './pay-v3';
import { PhoneCodes, registerPhone } from './phone';
import { registerRefundControl } from './refunds';
import { Sandbox } from './server';
import { registerSite } from './site';
import { registerTokens, TokenStore } from './tokens';

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
  const apps = { [envValue('WECHAT_APPID')]: envValue('WECHAT_SECRET') };
  if (envValue('WECHAT_MP_APPID')) apps[envValue('WECHAT_MP_APPID')] = envValue('WECHAT_MP_SECRET');
  const tokens = new TokenStore(apps);
  registerTokens(sandbox, tokens, { appId: envValue('WECHAT_APPID'), mpAppId: envValue('WECHAT_MP_APPID') });
  registerPhone(sandbox, tokens, new PhoneCodes(), envValue('WECHAT_APPID'));
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
  registerRefundControl(sandbox, store);
  registerSite(sandbox, envValue('SANDBOX_API_BASE') || `http://127.0.0.1:${envValue('PORT', '3000')}`);
  return sandbox;
}

/**
 * The mutual-TLS listener's certificates (v2 `/secapi/`): the dev server certificate and the sandbox CA the
 * merchant client certificate (WECHAT_MCH_CERT) must be issued by, from local/keys.
 */
export function sandboxTlsFiles(): { cert: string; key: string; ca: string } {
  const file = (name: string) => readFileSync(new URL(`../keys/${name}`, import.meta.url), 'utf8');
  return { cert: file('sandbox-tls-cert.pem'), key: file('sandbox-tls-key.pem'), ca: file('sandbox-ca.pem') };
}

/**
 * The port of the sandbox's mutual-TLS listener: that of WECHAT_PAY_MTLS_BASE when it names this machine over https
 * (`https://127.0.0.1:3101` in .env.example); undefined otherwise (then no TLS listener is started).
 */
export function sandboxTlsPort(): number | undefined {
  const base = envValue('WECHAT_PAY_MTLS_BASE');
  if (!base) return undefined;
  const url = new URL(base);
  const local = url.hostname === '127.0.0.1' || url.hostname === 'localhost';
  return url.protocol === 'https:' && local && url.port ? Number(url.port) : undefined;
}
