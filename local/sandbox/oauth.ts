import { randomBytes } from 'node:crypto';
import { controlBody, json, type Sandbox, type SandboxReply, type SandboxRequest } from './server';

/**
 * Plays WeChat web OAuth for official-account H5 pages (wechat-protocol.md §8): open.weixin.qq.com's
 * `/connect/oauth2/authorize` (302 back to redirect_uri with code and state, or with state only when the user
 * refuses), and api.weixin.qq.com's `/sns/oauth2/access_token` (single-use codes that live 5 minutes) and
 * `/sns/userinfo`, with WeChat's errcodes. `POST /sandbox/oauth/identity` decides who consents next.
 */

export interface OAuthSettings {
  /** The official account's AppID and AppSecret (WECHAT_MP_APPID, WECHAT_MP_SECRET). */
  appId: string;
  secret: string;
}

/** Who consents at the next authorize; `deny`: the user refuses. */
export interface OAuthIdentity {
  openid: string;
  unionid?: string;
  nickname?: string;
  headimgurl?: string;
  deny?: boolean;
}

type Scope = 'snsapi_base' | 'snsapi_userinfo';

const CODE_LIFETIME_MS = 5 * 60 * 1000;
const TOKEN_LIFETIME_S = 7200;

const randomOpenid = () => `o${randomBytes(14).toString('base64url')}`;

/** The sandbox's web OAuth state: the next consent, issued codes, web access tokens. */
export class OAuthState {
  next?: OAuthIdentity;
  private readonly codes = new Map<
    string,
    { identity: OAuthIdentity; scope: Scope; expiresAt: number; used: boolean }
  >();
  private readonly tokens = new Map<string, { identity: OAuthIdentity; scope: Scope; expiresAt: number }>();

  /** Who each browser's WeChat user is, by the openid in the sandbox's own cookie (see authorize). */
  private readonly browsers = new Map<string, OAuthIdentity>();

  /**
   * The user consents: a code for them (the next identity set by the control route, else the user of the
   * browser that consented before, `browserOpenid`, else a random openid).
   */
  consent(scope: Scope, browserOpenid?: string): { identity: OAuthIdentity; code?: string } {
    const identity = this.next ??
      (browserOpenid ? this.browsers.get(browserOpenid) : undefined) ?? { openid: randomOpenid() };
    this.next = undefined;
    this.browsers.set(identity.openid, { ...identity, deny: undefined });
    if (identity.deny) return { identity };
    // `oc` + 32 hex (tokens `wt`/`rt` + 48 hex): shapes the test log sink refuses in any log line.
    const code = `oc${randomBytes(16).toString('hex')}`;
    this.codes.set(code, { identity, scope, expiresAt: Date.now() + CODE_LIFETIME_MS, used: false });
    return { identity, code };
  }

  /** Spends a code: a web access token for its identity, or why it cannot be used. */
  redeem(code: string): { token: string; identity: OAuthIdentity; scope: Scope } | 'used' | 'invalid' {
    const entry = this.codes.get(code);
    if (entry?.used) return 'used';
    if (!entry || entry.expiresAt < Date.now()) return 'invalid';
    entry.used = true;
    const token = `wt${randomBytes(24).toString('hex')}`;
    this.tokens.set(token, {
      identity: entry.identity,
      scope: entry.scope,
      expiresAt: Date.now() + TOKEN_LIFETIME_S * 1000,
    });
    return { token, identity: entry.identity, scope: entry.scope };
  }

  /** A live web access token's grant. */
  grant(token: string): { identity: OAuthIdentity; scope: Scope } | undefined {
    const entry = this.tokens.get(token);
    return entry && entry.expiresAt > Date.now() ? entry : undefined;
  }
}

/** WeChat answers JSON labelled text/plain. */
function wechat(body: unknown): SandboxReply {
  return json(200, body, 'text/plain');
}

/** The sandbox's cookie on its authorize page: which WeChat user this browser is (WeChat's client knows it). */
const BROWSER_COOKIE = 'sandbox_wechat_user';

/**
 * `GET /connect/oauth2/authorize?appid&redirect_uri&response_type=code&scope&state` (the `#wechat_redirect`
 * fragment never reaches a server): 302 to `redirect_uri` with `code` and `state` appended to its query, or
 * `state` only when the user refuses. Refusals of the page itself answer 400 with WeChat's page errcodes. A
 * browser keeps its WeChat user between authorizes (a cookie of the sandbox's own), as the WeChat client does:
 * a second authorize in one sign-in (snsapi_base, then snsapi_userinfo) is the same person.
 */
export function authorize(
  state: OAuthState,
  settings: OAuthSettings,
  { url, headers }: SandboxRequest,
): SandboxReply {
  const q = url.searchParams;
  const redirectUri = q.get('redirect_uri');
  const scope = q.get('scope');
  if (!q.get('appid')) return json(400, { errcode: 10013, errmsg: 'appid missing' });
  if (q.get('appid') !== settings.appId) return json(400, { errcode: 40013, errmsg: 'invalid appid' });
  if (!redirectUri || !URL.canParse(redirectUri)) {
    return json(400, { errcode: 10011, errmsg: 'redirect_uri missing or invalid' });
  }
  if (q.get('response_type') !== 'code')
    return json(400, { errcode: 10012, errmsg: 'response_type must be code' });
  if (scope !== 'snsapi_base' && scope !== 'snsapi_userinfo') {
    return json(400, { errcode: 10005, errmsg: 'scope not permitted' });
  }
  const stateValue = q.get('state') ?? '';
  if (!/^[a-zA-Z0-9]{0,128}$/.test(stateValue)) return json(400, { errcode: 10010, errmsg: 'state invalid' });
  const target = new URL(redirectUri);
  const cookie = typeof headers.cookie === 'string' ? headers.cookie : '';
  const known = new RegExp(`(?:^|;\\s*)${BROWSER_COOKIE}=([^;]+)`).exec(cookie)?.[1];
  const { code, identity } = state.consent(scope, known);
  if (code) target.searchParams.set('code', code);
  target.searchParams.set('state', stateValue);
  const remember = `${BROWSER_COOKIE}=${identity.openid}; Path=/connect/oauth2; HttpOnly; SameSite=Lax`;
  return { status: 302, headers: { location: target.href, 'set-cookie': remember }, body: '' };
}

/**
 * `GET /sns/oauth2/access_token?appid&secret&code&grant_type=authorization_code` → `{access_token, expires_in,
 * refresh_token, openid, scope, unionid?}` (unionid only for snsapi_userinfo) or `{errcode, errmsg}`:
 * 40013 appid, 40125 secret, 40002 grant_type, 40029 invalid or expired code, 40163 code used.
 */
export function exchange(state: OAuthState, settings: OAuthSettings, { url }: SandboxRequest): SandboxReply {
  const q = url.searchParams;
  if (q.get('appid') !== settings.appId) return wechat({ errcode: 40013, errmsg: 'invalid appid' });
  if (q.get('secret') !== settings.secret) return wechat({ errcode: 40125, errmsg: 'invalid appsecret' });
  if (q.get('grant_type') !== 'authorization_code')
    return wechat({ errcode: 40002, errmsg: 'invalid grant_type' });
  const grant = state.redeem(q.get('code') ?? '');
  if (grant === 'used') return wechat({ errcode: 40163, errmsg: 'code been used, rid: sandbox' });
  if (grant === 'invalid') return wechat({ errcode: 40029, errmsg: 'invalid code, rid: sandbox' });
  return wechat({
    access_token: grant.token,
    expires_in: TOKEN_LIFETIME_S,
    refresh_token: `rt${randomBytes(24).toString('hex')}`,
    openid: grant.identity.openid,
    scope: grant.scope,
    ...(grant.scope === 'snsapi_userinfo' && grant.identity.unionid
      ? { unionid: grant.identity.unionid }
      : {}),
  });
}

/**
 * `GET /sns/userinfo?access_token&openid&lang` → `{openid, nickname, sex, province, city, country, headimgurl,
 * privilege, unionid?}`; 40001 unknown or expired token, 40003 another openid, 48001 a snsapi_base token.
 */
export function userInfo(state: OAuthState, { url }: SandboxRequest): SandboxReply {
  const q = url.searchParams;
  const grant = state.grant(q.get('access_token') ?? '');
  if (!grant)
    return wechat({ errcode: 40001, errmsg: 'invalid credential, access_token is invalid or not latest' });
  if (q.get('openid') !== grant.identity.openid) return wechat({ errcode: 40003, errmsg: 'invalid openid' });
  if (grant.scope !== 'snsapi_userinfo') return wechat({ errcode: 48001, errmsg: 'api unauthorized' });
  const { identity } = grant;
  return wechat({
    openid: identity.openid,
    nickname: identity.nickname ?? '沙箱用户',
    sex: 0,
    province: '',
    city: '',
    country: '',
    headimgurl: identity.headimgurl ?? '',
    privilege: [],
    ...(identity.unionid ? { unionid: identity.unionid } : {}),
  });
}

/**
 * Registers the web OAuth endpoints and `POST /sandbox/oauth/identity {openid?, unionid?, nickname?,
 * headimgurl?, deny?}` → the identity that consents at the next authorize (openid random when absent); a browser
 * that consented before is that user again at its next authorize unless an identity was set.
 */
export function registerOAuth(sandbox: Sandbox, state: OAuthState, settings: OAuthSettings): void {
  const busy = () => json(200, { errcode: -1, errmsg: 'system error' }, 'text/plain');
  sandbox.route('GET', '/connect/oauth2/authorize', (request) => authorize(state, settings, request));
  sandbox.route('GET', '/sns/oauth2/access_token', (request) => exchange(state, settings, request), busy);
  sandbox.route('GET', '/sns/userinfo', (request) => userInfo(state, request), busy);
  sandbox.route('POST', '/sandbox/oauth/identity', (request) => {
    const body = controlBody(request);
    const text = (name: string) => (typeof body[name] === 'string' ? (body[name] as string) : undefined);
    const identity: OAuthIdentity = {
      openid: text('openid') ?? randomOpenid(),
      ...(text('unionid') ? { unionid: text('unionid') } : {}),
      ...(text('nickname') ? { nickname: text('nickname') } : {}),
      ...(text('headimgurl') ? { headimgurl: text('headimgurl') } : {}),
      ...(body.deny === true ? { deny: true } : {}),
    };
    state.next = identity;
    return json(200, identity);
  });
}
