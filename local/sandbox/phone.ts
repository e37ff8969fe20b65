import { randomBytes, randomInt } from 'node:crypto';
import { controlBody, json, type Sandbox, type SandboxReply, type SandboxRequest } from './server';
import type { TokenStore } from './tokens';

/**
 * Plays getPhoneNumber (`POST /wxa/business/getuserphonenumber?access_token=`): the token is checked (40001 /
 * 42001), each code works once within 5 minutes and only for the mini-program it was issued for (40029
 * otherwise), and when the request names an openid the code must be that user's (40029). Codes come from the
 * control route `POST /sandbox/phone-code {openid?, phoneNumber?, countryCode?}` → `{code}` (plays the user
 * tapping `<button open-type="getPhoneNumber">`).
 */

const CODE_LIFETIME_MS = 5 * 60 * 1000;

interface PhoneGrant {
  openid?: string;
  purePhoneNumber: string;
  countryCode: string;
  expiresAt: number;
  used: boolean;
}

/** The phone-number codes handed out. */
export class PhoneCodes {
  private readonly codes = new Map<string, PhoneGrant>();

  /** A fresh code for a number (default: a random 138… mainland number, country code 86). */
  issue(input: { openid?: string; phoneNumber?: string; countryCode?: string } = {}): string {
    const code = randomBytes(32).toString('hex');
    this.codes.set(code, {
      openid: input.openid,
      purePhoneNumber: input.phoneNumber ?? `138${String(randomInt(100_000_000)).padStart(8, '0')}`,
      countryCode: input.countryCode ?? '86',
      expiresAt: Date.now() + CODE_LIFETIME_MS,
      used: false,
    });
    return code;
  }

  /** Spends a code (for `openid` when given): its grant, or undefined (unknown, expired, used, another user's). */
  redeem(code: string, openid: string | undefined): PhoneGrant | undefined {
    const grant = this.codes.get(code);
    if (!grant || grant.used || grant.expiresAt < Date.now()) return undefined;
    if (openid !== undefined && grant.openid !== undefined && grant.openid !== openid) return undefined;
    grant.used = true;
    return grant;
  }
}

function wechat(body: unknown): SandboxReply {
  return json(200, body, 'text/plain');
}

/** `POST /wxa/business/getuserphonenumber?access_token {code, openid?}` → `{errcode: 0, errmsg, phone_info}`. */
export function getUserPhoneNumber(
  tokens: TokenStore,
  codes: PhoneCodes,
  appId: string,
  request: SandboxRequest,
): SandboxReply {
  const checked = tokens.check(request.url.searchParams.get('access_token'));
  if ('errcode' in checked) return wechat(checked);
  let body: { code?: unknown; openid?: unknown };
  try {
    body = JSON.parse(request.body) as typeof body;
  } catch {
    return wechat({ errcode: 47001, errmsg: 'data format error' });
  }
  const invalid = { errcode: 40029, errmsg: 'invalid code, rid: sandbox' };
  // A token of another app (the official account) cannot redeem the mini-program's codes.
  if (checked.appId !== appId || typeof body.code !== 'string') return wechat(invalid);
  const grant = codes.redeem(body.code, typeof body.openid === 'string' ? body.openid : undefined);
  if (!grant) return wechat(invalid);
  const phoneNumber =
    grant.countryCode === '86' ? grant.purePhoneNumber : `+${grant.countryCode}${grant.purePhoneNumber}`;
  return wechat({
    errcode: 0,
    errmsg: 'ok',
    phone_info: {
      phoneNumber,
      purePhoneNumber: grant.purePhoneNumber,
      // The official example sends a number here (the field table says string): the client accepts both.
      countryCode: Number(grant.countryCode),
      watermark: { timestamp: Math.floor(Date.now() / 1000), appid: appId },
    },
  });
}

/** Registers getuserphonenumber (busy fault: errcode -1) and `POST /sandbox/phone-code`. */
export function registerPhone(sandbox: Sandbox, tokens: TokenStore, codes: PhoneCodes, appId: string): void {
  sandbox.route(
    'POST',
    '/wxa/business/getuserphonenumber',
    (request) => getUserPhoneNumber(tokens, codes, appId, request),
    () => wechat({ errcode: -1, errmsg: 'system error' }),
  );
  sandbox.route('POST', '/sandbox/phone-code', (request) => {
    const body = controlBody(request);
    const text = (name: string) =>
      typeof body[name] === 'string' && body[name] ? (body[name] as string) : undefined;
    const phoneNumber = text('phoneNumber');
    const countryCode = text('countryCode');
    if ((phoneNumber && !/^\d{4,20}$/.test(phoneNumber)) || (countryCode && !/^\d{1,4}$/.test(countryCode))) {
      return json(400, { error: 'phoneNumber and countryCode are digits' });
    }
    return json(200, { code: codes.issue({ openid: text('openid'), phoneNumber, countryCode }) });
  });
}
