import { randomBytes } from 'node:crypto';
import { json, type Sandbox, type SandboxReply, type SandboxRequest } from './server';

/**
 * Plays wx.login + auth.code2Session (api.weixin.qq.com): single-use codes that live 5 minutes, with WeChat's
 * errcodes. Codes are issued by the control route `POST /sandbox/login` (control.ts).
 */

export interface LoginSettings {
  appId: string;
  secret: string;
}

const CODE_LIFETIME_MS = 5 * 60 * 1000;

/** The wx.login codes the sandbox has handed out. */
export class LoginCodes {
  private readonly codes = new Map<
    string,
    { openid: string; unionid?: string; expiresAt: number; used: boolean }
  >();

  /** A fresh code for this user (openid default: a random `o…` id) → `{code, openid}`. */
  issue(
    openid = `o${randomBytes(14).toString('base64url')}`,
    unionid?: string,
  ): { code: string; openid: string } {
    const code = randomBytes(16).toString('hex');
    this.codes.set(code, { openid, unionid, expiresAt: Date.now() + CODE_LIFETIME_MS, used: false });
    return { code, openid };
  }

  /** Spends a code: its identity, or why it cannot be used. */
  redeem(code: string): { openid: string; unionid?: string } | 'used' | 'invalid' {
    const entry = this.codes.get(code);
    if (entry?.used) return 'used';
    if (!entry || entry.expiresAt < Date.now()) return 'invalid';
    entry.used = true;
    return { openid: entry.openid, unionid: entry.unionid };
  }
}

/** WeChat answers JSON labelled text/plain. */
function wechat(body: unknown): SandboxReply {
  return json(200, body, 'text/plain');
}

/**
 * `GET /sns/jscode2session?appid&secret&js_code&grant_type=authorization_code` → `{session_key, openid, unionid?}`
 * or `{errcode, errmsg}` (auth.code2Session).
 */
export function code2Session(
  codes: LoginCodes,
  settings: LoginSettings,
  { url }: SandboxRequest,
): SandboxReply {
  const q = url.searchParams;
  if (q.get('appid') !== settings.appId) return wechat({ errcode: 40013, errmsg: 'invalid appid' });
  if (q.get('secret') !== settings.secret) return wechat({ errcode: 40125, errmsg: 'invalid appsecret' });
  if (q.get('grant_type') !== 'authorization_code') {
    return wechat({ errcode: 40002, errmsg: 'invalid grant_type' });
  }
  const identity = codes.redeem(q.get('js_code') ?? '');
  if (identity === 'used') return wechat({ errcode: 40163, errmsg: 'code been used, rid: sandbox' });
  if (identity === 'invalid') return wechat({ errcode: 40029, errmsg: 'invalid code, rid: sandbox' });
  return wechat({
    session_key: randomBytes(16).toString('base64'),
    openid: identity.openid,
    ...(identity.unionid ? { unionid: identity.unionid } : {}),
  });
}

/** Registers the WeChat login endpoint; its busy fault answers `{errcode: -1, errmsg: 'system error'}`. */
export function registerLogin(sandbox: Sandbox, codes: LoginCodes, settings: LoginSettings): void {
  sandbox.route(
    'GET',
    '/sns/jscode2session',
    (request) => code2Session(codes, settings, request),
    () => json(200, { errcode: -1, errmsg: 'system error' }, 'text/plain'),
  );
}
