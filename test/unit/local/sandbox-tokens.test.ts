import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  fetchJsapiTicket,
  fetchPhoneNumber,
  fetchStableToken,
  InvalidAccessTokenError,
} from '#lib/clients/wechat-api';
import { BadRequestError, ServiceUnavailableError, TooManyRequestsError, UpstreamError } from '#lib/errors';
import { registerFaultControl } from '#local/sandbox/control';
import { PhoneCodes, registerPhone } from '#local/sandbox/phone';
import { Sandbox } from '#local/sandbox/server';
import { registerTokens, TokenStore } from '#local/sandbox/tokens';

/** The sandbox's credential and phone endpoints, driven by the real clients over HTTP (wire formats, errcodes). */

const APP = { appId: 'wx5a1d0c0ffee0d0e1', secret: 'sandbox0appsecret0000000000000000' };
const MP = { appId: 'wx0f0ca1ac0ffee0d2', secret: 'sandbox0mpsecret00000000000000000' };

let sandbox: Sandbox;
let base = '';
let tokens: TokenStore;
let codes: PhoneCodes;

async function post(path: string, body: unknown): Promise<Record<string, unknown>> {
  const response = await fetch(`${base}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return (await response.json()) as Record<string, unknown>;
}

beforeAll(async () => {
  sandbox = new Sandbox();
  tokens = new TokenStore({ [APP.appId]: APP.secret, [MP.appId]: MP.secret });
  codes = new PhoneCodes();
  registerTokens(sandbox, tokens, { appId: APP.appId, mpAppId: MP.appId });
  registerPhone(sandbox, tokens, codes, APP.appId);
  registerFaultControl(sandbox);
  base = await sandbox.listen(0);
});

afterAll(() => sandbox.close());

describe('stable_token and token', () => {
  it('answers the same token in normal mode while it is valid, with its remaining lifetime', async () => {
    // Act
    const first = await fetchStableToken(base, APP.appId, APP.secret);
    const second = await fetchStableToken(base, APP.appId, APP.secret);

    // Assess
    expect(second.value).toBe(first.value);
    expect(first.expiresInSeconds).toBeGreaterThan(7000);
    expect(first.expiresInSeconds).toBeLessThanOrEqual(7200);
  });

  it('invalidates the previous token on force_refresh (40001 afterwards), and keeps the two apps apart', async () => {
    // Arrange
    const old = await fetchStableToken(base, APP.appId, APP.secret);
    const mp = await fetchStableToken(base, MP.appId, MP.secret);

    // Act
    const forced = await post('/cgi-bin/stable_token', {
      grant_type: 'client_credential',
      appid: APP.appId,
      secret: APP.secret,
      force_refresh: true,
    });

    // Assess
    expect(forced.access_token).not.toBe(old.value);
    await expect(fetchJsapiTicket(base, old.value)).rejects.toThrow(InvalidAccessTokenError);
    await expect(fetchJsapiTicket(base, mp.value)).resolves.toMatchObject({ expiresInSeconds: 7200 });
  });

  it('/cgi-bin/token invalidates its own previous token, not the stable one', async () => {
    // Arrange
    const stable = await fetchStableToken(base, MP.appId, MP.secret);
    const url = `${base}/cgi-bin/token?grant_type=client_credential&appid=${MP.appId}&secret=${MP.secret}`;
    const first = (await (await fetch(url)).json()) as { access_token: string };

    // Act
    const second = (await (await fetch(url)).json()) as { access_token: string };

    // Assess
    expect(second.access_token).not.toBe(first.access_token);
    await expect(fetchJsapiTicket(base, first.access_token)).rejects.toMatchObject({ errcode: 40001 });
    await expect(fetchJsapiTicket(base, second.access_token)).resolves.toBeDefined();
    await expect(fetchJsapiTicket(base, stable.value)).resolves.toBeDefined();
  });

  it('refuses a wrong secret, an unknown appid and a wrong grant_type with WeChat’s errcodes', async () => {
    // Act / Assess
    await expect(fetchStableToken(base, APP.appId, 'wrong')).rejects.toMatchObject({
      detail: 'stable_token: errcode 40125',
    });
    await expect(fetchStableToken(base, 'wx0000000000000000', APP.secret)).rejects.toBeInstanceOf(
      UpstreamError,
    );
    expect(
      await post('/cgi-bin/stable_token', { grant_type: 'x', appid: APP.appId, secret: APP.secret }),
    ).toEqual({
      errcode: 40002,
      errmsg: 'invalid grant_type',
    });
  });

  it('invalidates on the control route: the token answers 40001 and normal mode gives a new one', async () => {
    // Arrange
    const old = await fetchStableToken(base, APP.appId, APP.secret);

    // Act
    const answer = await post('/sandbox/tokens/invalidate', { appid: APP.appId });

    // Assess
    expect(answer).toEqual({ appid: APP.appId, invalidated: 1 });
    await expect(fetchJsapiTicket(base, old.value)).rejects.toMatchObject({ errcode: 40001 });
    expect((await fetchStableToken(base, APP.appId, APP.secret)).value).not.toBe(old.value);
  });

  it('maps busy (after one retry) to 503 and the minute quota to 429', async () => {
    // Arrange
    await post('/sandbox/faults', { endpoint: '/cgi-bin/stable_token', mode: 'busy', count: 2 });

    // Act / Assess
    await expect(fetchStableToken(base, APP.appId, APP.secret)).rejects.toBeInstanceOf(
      ServiceUnavailableError,
    );
    await post('/sandbox/faults', { endpoint: '/cgi-bin/stable_token', mode: 'quota', count: 1 });
    await expect(fetchStableToken(base, APP.appId, APP.secret)).rejects.toBeInstanceOf(TooManyRequestsError);
  });
});

describe('getticket', () => {
  it('answers the ticket GET /sandbox/jsapi-ticket shows, the same while it is valid', async () => {
    // Arrange
    const token = await fetchStableToken(base, MP.appId, MP.secret);

    // Act
    const ticket = await fetchJsapiTicket(base, token.value);
    const again = await fetchJsapiTicket(base, token.value);
    const shown = (await (await fetch(`${base}/sandbox/jsapi-ticket`)).json()) as { ticket: string };

    // Assess
    expect(again.value).toBe(ticket.value);
    expect(shown.ticket).toBe(ticket.value);
  });
});

describe('getuserphonenumber', () => {
  it('answers phone_info once per code, then 40029 (INVALID_CODE)', async () => {
    // Arrange
    const { value: token } = await fetchStableToken(base, APP.appId, APP.secret);
    const { code } = (await post('/sandbox/phone-code', {
      openid: 'oUser1',
      phoneNumber: '13900001111',
    })) as {
      code: string;
    };

    // Act
    const phone = await fetchPhoneNumber(base, token, code, 'oUser1');

    // Assess
    expect(phone).toEqual({ purePhoneNumber: '13900001111', countryCode: '86' });
    await expect(fetchPhoneNumber(base, token, code, 'oUser1')).rejects.toMatchObject({
      status: 400,
      code: 'INVALID_CODE',
    });
  });

  it('refuses another user’s code, an unknown code, and the official account’s token', async () => {
    // Arrange
    const { value: token } = await fetchStableToken(base, APP.appId, APP.secret);
    const { value: mpToken } = await fetchStableToken(base, MP.appId, MP.secret);
    const bobs = codes.issue({ openid: 'oBob' });
    const mine = codes.issue({ openid: 'oAlice' });

    // Act / Assess
    await expect(fetchPhoneNumber(base, token, bobs, 'oAlice')).rejects.toBeInstanceOf(BadRequestError);
    await expect(fetchPhoneNumber(base, token, 'unknown-code', 'oAlice')).rejects.toBeInstanceOf(
      BadRequestError,
    );
    await expect(fetchPhoneNumber(base, mpToken, mine, 'oAlice')).rejects.toBeInstanceOf(BadRequestError);
  });

  it('checks the token (40001 / 42001 surface as InvalidAccessTokenError) and keeps the code unspent', async () => {
    // Arrange
    const code = codes.issue({ openid: 'oCarol', phoneNumber: '5551234', countryCode: '1' });
    const { value: token } = await fetchStableToken(base, APP.appId, APP.secret);

    // Act / Assess
    await expect(fetchPhoneNumber(base, 'not-a-token', code, 'oCarol')).rejects.toBeInstanceOf(
      InvalidAccessTokenError,
    );
    expect(await fetchPhoneNumber(base, token, code, 'oCarol')).toEqual({
      purePhoneNumber: '5551234',
      countryCode: '1',
    });
  });

  it('maps -1 to 503 without a retry, and 45011 to 429', async () => {
    // Arrange
    const { value: token } = await fetchStableToken(base, APP.appId, APP.secret);
    const code = codes.issue();
    const path = '/wxa/business/getuserphonenumber';
    const before = sandbox.calls.filter((call) => call.path === path).length;
    await post('/sandbox/faults', { endpoint: path, mode: 'busy', count: 1 });

    // Act / Assess
    await expect(fetchPhoneNumber(base, token, code, 'oX')).rejects.toBeInstanceOf(ServiceUnavailableError);
    expect(sandbox.calls.filter((call) => call.path === path).length - before).toBe(1);
    await post('/sandbox/faults', { endpoint: path, mode: 'quota', count: 1 });
    await expect(fetchPhoneNumber(base, token, code, 'oX')).rejects.toMatchObject({
      status: 429,
      code: 'WECHAT_RATE_LIMITED',
    });
  });
});

describe('token lifetimes (TokenStore, the clock moved)', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('rolls the stable token in its last 5 minutes (the old one still works), then the old one expires (42001)', () => {
    // Arrange
    vi.useFakeTimers({ toFake: ['Date'] });
    const store = new TokenStore({ [APP.appId]: APP.secret });
    const first = store.stableToken(APP.appId, false);

    // Act
    vi.setSystemTime(Date.now() + (7200 - 299) * 1000);
    const rolled = store.stableToken(APP.appId, false);
    const oldDuringOverlap = store.check(first.token);
    vi.setSystemTime(Date.now() + 300 * 1000);
    const oldAfter = store.check(first.token);

    // Assess
    expect(first.expiresIn).toBe(7200);
    expect(rolled.token).not.toBe(first.token);
    expect(rolled.expiresIn).toBe(7200);
    expect(oldDuringOverlap).toEqual({ appId: APP.appId });
    expect(oldAfter).toMatchObject({ errcode: 42001 });
    expect(store.check(rolled.token)).toEqual({ appId: APP.appId });
  });

  it('answers the remaining lifetime in normal mode before the roll', () => {
    // Arrange
    vi.useFakeTimers({ toFake: ['Date'] });
    const store = new TokenStore({ [APP.appId]: APP.secret });
    const first = store.stableToken(APP.appId, false);

    // Act
    vi.setSystemTime(Date.now() + 6855 * 1000);
    const again = store.stableToken(APP.appId, false);

    // Assess
    expect(again).toEqual({ token: first.token, expiresIn: 345 });
  });
});
