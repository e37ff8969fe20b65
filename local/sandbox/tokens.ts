import { randomBytes } from 'node:crypto';
import { controlBody, json, type Sandbox, type SandboxReply, type SandboxRequest } from './server';

/**
 * Plays api.weixin.qq.com's credentials: getAccessToken (`GET /cgi-bin/token`), getStableAccessToken (`POST
 * /cgi-bin/stable_token`) and the jsapi_ticket (`GET /cgi-bin/ticket/getticket`), with WeChat's errcodes.
 * Tokens live TOKEN_LIFETIME_S. `/cgi-bin/token` and a stable_token `force_refresh` invalidate the previous
 * token of their kind at once (the two kinds are isolated, as at WeChat); stable_token in normal mode returns the
 * same token while it has more than 5 minutes left, then a new one (the old one stays valid until it expires).
 * Other endpoints check tokens with `check()`: unknown or invalidated → 40001, expired → 42001.
 */

export const TOKEN_LIFETIME_S = 7200;
/** stable_token rolls its token in the last 5 minutes. */
const ROLL_WINDOW_S = 300;

/** AppID → AppSecret of the apps the sandbox knows (the mini-program and the official account). */
export type SandboxApps = Record<string, string>;

interface Issued {
  appId: string;
  expiresAt: number;
  kind: 'stable' | 'plain';
}

/** WeChat answers JSON labelled text/plain. */
function wechat(body: unknown): SandboxReply {
  return json(200, body, 'text/plain');
}

const nowS = () => Math.floor(Date.now() / 1000);

export class TokenStore {
  /** Every token still accepted, with its app and expiry (seconds). */
  private readonly valid = new Map<string, Issued>();
  /** The current token of each app and kind. */
  private readonly current = new Map<string, string>();
  private readonly tickets = new Map<string, { ticket: string; expiresAt: number }>();

  constructor(readonly apps: SandboxApps) {}

  private issue(appId: string, kind: Issued['kind']): string {
    // Real tokens are opaque, about 136 characters of [A-Za-z0-9_-].
    const token = randomBytes(102).toString('base64url');
    this.valid.set(token, { appId, kind, expiresAt: nowS() + TOKEN_LIFETIME_S });
    this.current.set(`${kind}#${appId}`, token);
    return token;
  }

  private revoke(appId: string, kind: Issued['kind']): number {
    const token = this.current.get(`${kind}#${appId}`);
    if (!token) return 0;
    this.current.delete(`${kind}#${appId}`);
    return this.valid.delete(token) ? 1 : 0;
  }

  /** `/cgi-bin/token`: a new token; the previous one from this endpoint stops working at once. */
  plainToken(appId: string): { token: string; expiresIn: number } {
    this.revoke(appId, 'plain');
    return { token: this.issue(appId, 'plain'), expiresIn: TOKEN_LIFETIME_S };
  }

  /** `/cgi-bin/stable_token`: normal mode reuses the current token while it has > 5 minutes left. */
  stableToken(appId: string, forceRefresh: boolean): { token: string; expiresIn: number } {
    if (forceRefresh) this.revoke(appId, 'stable');
    const current = this.current.get(`stable#${appId}`);
    const issued = current ? this.valid.get(current) : undefined;
    if (current && issued && issued.expiresAt - nowS() > ROLL_WINDOW_S) {
      return { token: current, expiresIn: issued.expiresAt - nowS() };
    }
    return { token: this.issue(appId, 'stable'), expiresIn: TOKEN_LIFETIME_S };
  }

  /** The app a token belongs to, or WeChat's errcode for it (40001 unknown or invalidated, 42001 expired). */
  check(token: string | null): { appId: string } | { errcode: number; errmsg: string } {
    const issued = token ? this.valid.get(token) : undefined;
    if (!issued) {
      return {
        errcode: 40001,
        errmsg: 'invalid credential, access_token is invalid or not latest, rid: sandbox',
      };
    }
    if (issued.expiresAt <= nowS()) return { errcode: 42001, errmsg: 'access_token expired, rid: sandbox' };
    return { appId: issued.appId };
  }

  /** Invalidates an app's current tokens (both kinds), as a force_refresh elsewhere would; how many were valid. */
  invalidate(appId: string): number {
    return this.revoke(appId, 'stable') + this.revoke(appId, 'plain');
  }

  /** The app's jsapi_ticket: the current one while it has > 5 minutes left, else a new one. */
  ticket(appId: string): { ticket: string; expiresIn: number } {
    const held = this.tickets.get(appId);
    if (held && held.expiresAt - nowS() > ROLL_WINDOW_S) {
      return { ticket: held.ticket, expiresIn: held.expiresAt - nowS() };
    }
    const ticket = randomBytes(64).toString('base64url');
    this.tickets.set(appId, { ticket, expiresAt: nowS() + TOKEN_LIFETIME_S });
    return { ticket, expiresIn: TOKEN_LIFETIME_S };
  }
}

/** The credential checks both token endpoints share: grant_type, appid, secret. */
function credentialError(
  store: TokenStore,
  grantType: unknown,
  appId: unknown,
  secret: unknown,
): SandboxReply | undefined {
  if (grantType !== 'client_credential') return wechat({ errcode: 40002, errmsg: 'invalid grant_type' });
  if (typeof appId !== 'string' || !(appId in store.apps)) {
    return wechat({ errcode: 40013, errmsg: 'invalid appid' });
  }
  if (secret !== store.apps[appId]) return wechat({ errcode: 40125, errmsg: 'invalid appsecret' });
  return undefined;
}

/** `POST /cgi-bin/stable_token {grant_type, appid, secret, force_refresh?}` (JSON body only). */
export function stableToken(store: TokenStore, request: SandboxRequest): SandboxReply {
  if (request.method !== 'POST') return wechat({ errcode: 43002, errmsg: 'require POST method' });
  let body: Record<string, unknown>;
  try {
    body = JSON.parse(request.body) as Record<string, unknown>;
  } catch {
    return wechat({ errcode: 47001, errmsg: 'data format error' });
  }
  const refused = credentialError(store, body.grant_type, body.appid, body.secret);
  if (refused) return refused;
  const { token, expiresIn } = store.stableToken(body.appid as string, body.force_refresh === true);
  return wechat({ access_token: token, expires_in: expiresIn });
}

/** `GET /cgi-bin/token?grant_type=client_credential&appid&secret`. */
export function plainToken(store: TokenStore, { url }: SandboxRequest): SandboxReply {
  const q = url.searchParams;
  const refused = credentialError(store, q.get('grant_type'), q.get('appid'), q.get('secret'));
  if (refused) return refused;
  const { token, expiresIn } = store.plainToken(q.get('appid') as string);
  return wechat({ access_token: token, expires_in: expiresIn });
}

/** `GET /cgi-bin/ticket/getticket?access_token&type=jsapi` → `{errcode: 0, errmsg: 'ok', ticket, expires_in}`. */
export function getTicket(store: TokenStore, { url }: SandboxRequest): SandboxReply {
  const checked = store.check(url.searchParams.get('access_token'));
  if ('errcode' in checked) return wechat(checked);
  if (url.searchParams.get('type') !== 'jsapi') return wechat({ errcode: 40097, errmsg: 'invalid args' });
  const { ticket, expiresIn } = store.ticket(checked.appId);
  return wechat({ errcode: 0, errmsg: 'ok', ticket, expires_in: expiresIn });
}

const busy = () => wechat({ errcode: -1, errmsg: 'system error' });

/**
 * Registers the credential endpoints and their controls: `GET /sandbox/jsapi-ticket?appid=` → `{ticket}` (the
 * current one, default the official account `mpAppId`), `POST /sandbox/tokens/invalidate {appid?}` → `{appid,
 * invalidated}` (the app's current tokens answer 40001 from now on; default the mini-program `appId`).
 */
export function registerTokens(
  sandbox: Sandbox,
  store: TokenStore,
  defaults: { appId: string; mpAppId: string },
): void {
  sandbox.route('POST', '/cgi-bin/stable_token', (request) => stableToken(store, request), busy);
  sandbox.route('GET', '/cgi-bin/stable_token', (request) => stableToken(store, request), busy);
  sandbox.route('GET', '/cgi-bin/token', (request) => plainToken(store, request), busy);
  sandbox.route('GET', '/cgi-bin/ticket/getticket', (request) => getTicket(store, request), busy);
  sandbox.route('GET', '/sandbox/jsapi-ticket', ({ url }) => {
    const appId = url.searchParams.get('appid') || defaults.mpAppId;
    return json(200, { ticket: store.ticket(appId).ticket });
  });
  sandbox.route('POST', '/sandbox/tokens/invalidate', (request) => {
    const body = controlBody(request);
    const appId = typeof body.appid === 'string' && body.appid ? body.appid : defaults.appId;
    return json(200, { appid: appId, invalidated: store.invalidate(appId) });
  });
}
