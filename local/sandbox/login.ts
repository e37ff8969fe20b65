import { randomBytes } from 'node:crypto';
import { controlBody, json, type Sandbox } from './server';

export interface LoginSettings {
  appId: string;
  secret: string;
}

const CODE_LIFETIME_MS = 5 * 60 * 1000;

/** Plays wx.login + auth.code2Session: single-use codes that live 5 minutes, with WeChat's errcodes. */
export function registerLogin(sandbox: Sandbox, settings: LoginSettings): void {
  const codes = new Map<string, { openid: string; unionid?: string; expiresAt: number; used: boolean }>();
  // WeChat answers JSON labelled text/plain.
  const wechat = (body: unknown) => json(200, body, 'text/plain');

  sandbox.route('POST', '/sandbox/login', (request) => {
    const body = controlBody(request);
    const openid =
      typeof body.openid === 'string' ? body.openid : `o${randomBytes(14).toString('base64url')}`;
    const unionid = typeof body.unionid === 'string' ? body.unionid : undefined;
    const code = randomBytes(16).toString('hex');
    codes.set(code, { openid, unionid, expiresAt: Date.now() + CODE_LIFETIME_MS, used: false });
    return json(200, { code, openid });
  });

  sandbox.route(
    'GET',
    '/sns/jscode2session',
    ({ url }) => {
      const q = url.searchParams;
      if (q.get('appid') !== settings.appId) return wechat({ errcode: 40013, errmsg: 'invalid appid' });
      if (q.get('secret') !== settings.secret) return wechat({ errcode: 40125, errmsg: 'invalid appsecret' });
      if (q.get('grant_type') !== 'authorization_code') {
        return wechat({ errcode: 40002, errmsg: 'invalid grant_type' });
      }
      const code = q.get('js_code') ?? '';
      const entry = codes.get(code);
      if (entry?.used) return wechat({ errcode: 40163, errmsg: 'code been used, rid: sandbox' });
      if (!entry || entry.expiresAt < Date.now())
        return wechat({ errcode: 40029, errmsg: 'invalid code, rid: sandbox' });
      entry.used = true;
      return wechat({
        session_key: randomBytes(16).toString('base64'),
        openid: entry.openid,
        ...(entry.unionid ? { unionid: entry.unionid } : {}),
      });
    },
    () => json(200, { errcode: -1, errmsg: 'system error' }, 'text/plain'),
  );
}
