import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  fetchJsapiTicket,
  fetchPhoneNumber,
  fetchStableToken,
  InvalidAccessTokenError,
} from '#lib/clients/wechat-api';
import { ServiceUnavailableError, TooManyRequestsError, UpstreamError } from '#lib/errors';
import { type ScriptedServer, startScripted } from '#test/helpers/scripted-server';

/** The access_token-bearing WeChat calls against a scripted server: request shapes and every answer's mapping. */

let wechat: ScriptedServer;
const TEXT = { 'content-type': 'text/plain' };
const answer = (body: unknown, status = 200) => wechat.next(status, JSON.stringify(body), TEXT);

beforeAll(async () => {
  wechat = await startScripted();
});
afterAll(() => wechat.close());
beforeEach(() => {
  wechat.requests.length = 0;
});

describe('fetchStableToken', () => {
  it('posts normal mode (force_refresh false) as JSON and reads the token and its lifetime', async () => {
    // Arrange
    answer({ access_token: 'ACCESS_TOKEN_VALUE', expires_in: 345 });

    // Act
    const token = await fetchStableToken(wechat.url, 'wxAPPID', 'SECRET');

    // Assess
    expect(token).toEqual({ value: 'ACCESS_TOKEN_VALUE', expiresInSeconds: 345 });
    expect(wechat.requests[0]).toMatchObject({ method: 'POST', url: '/cgi-bin/stable_token' });
    expect(JSON.parse(wechat.requests[0]?.body ?? '')).toEqual({
      grant_type: 'client_credential',
      appid: 'wxAPPID',
      secret: 'SECRET',
      force_refresh: false,
    });
  });

  it('retries -1 once, then answers 503; keeps errcodes and secrets out of the message', async () => {
    // Arrange
    answer({ errcode: -1, errmsg: 'system error' });
    answer({ errcode: -1, errmsg: 'system error' });

    // Act / Assess
    const error = await fetchStableToken(wechat.url, 'wxAPPID', 'SECRET').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ServiceUnavailableError);
    expect(wechat.requests).toHaveLength(2);
    expect(JSON.stringify(error)).not.toContain('SECRET');
  });

  it.each([
    [{ errcode: 40164, errmsg: 'invalid ip' }, UpstreamError],
    [{ errcode: 45009, errmsg: 'reach max api daily quota limit' }, TooManyRequestsError],
    [{ access_token: '', expires_in: 7200 }, UpstreamError],
    [{ access_token: 'T', expires_in: 0 }, UpstreamError],
    [{ access_token: 'T', expires_in: '7200s' }, UpstreamError],
  ])('maps %j to %o', async (body, kind) => {
    // Arrange
    answer(body);

    // Act / Assess
    await expect(fetchStableToken(wechat.url, 'wxAPPID', 'SECRET')).rejects.toBeInstanceOf(kind);
  });
});

describe('fetchJsapiTicket', () => {
  it('asks for type=jsapi with the token and reads the ticket', async () => {
    // Arrange
    answer({ errcode: 0, errmsg: 'ok', ticket: 'TICKET', expires_in: 7200 });

    // Act
    const ticket = await fetchJsapiTicket(wechat.url, 'TOKEN');

    // Assess
    expect(ticket).toEqual({ value: 'TICKET', expiresInSeconds: 7200 });
    expect(wechat.requests[0]?.url).toBe('/cgi-bin/ticket/getticket?access_token=TOKEN&type=jsapi');
  });

  it.each([40001, 42001])('reports a refused token (%i) to the broker', async (errcode) => {
    // Arrange
    answer({ errcode, errmsg: 'invalid credential' });

    // Act / Assess
    await expect(fetchJsapiTicket(wechat.url, 'TOKEN')).rejects.toBeInstanceOf(InvalidAccessTokenError);
  });
});

describe('fetchPhoneNumber', () => {
  it('sends the code and the openid, and accepts countryCode as a string or a number', async () => {
    // Arrange
    answer({ errcode: 0, errmsg: 'ok', phone_info: { purePhoneNumber: '13800138000', countryCode: '86' } });
    answer({ errcode: 0, errmsg: 'ok', phone_info: { purePhoneNumber: '4155550123', countryCode: 1 } });

    // Act
    const first = await fetchPhoneNumber(wechat.url, 'TOKEN', 'CODE', 'oOPENID');
    const second = await fetchPhoneNumber(wechat.url, 'TOKEN', 'CODE2', 'oOPENID');

    // Assess
    expect(first).toEqual({ purePhoneNumber: '13800138000', countryCode: '86' });
    expect(second).toEqual({ purePhoneNumber: '4155550123', countryCode: '1' });
    expect(wechat.requests[0]).toMatchObject({
      method: 'POST',
      url: '/wxa/business/getuserphonenumber?access_token=TOKEN',
    });
    expect(JSON.parse(wechat.requests[0]?.body ?? '')).toEqual({ code: 'CODE', openid: 'oOPENID' });
  });

  it.each([
    [{ errcode: 40029, errmsg: 'invalid code' }, 400, 'INVALID_CODE'],
    [{ errcode: 45011, errmsg: 'api minute-quota reach limit' }, 429, 'WECHAT_RATE_LIMITED'],
    [{ errcode: -1, errmsg: 'system error' }, 503, 'WECHAT_UNAVAILABLE'],
    [{ errcode: 40013, errmsg: 'invalid appid' }, 502, 'WECHAT_ERROR'],
    [
      { errcode: 0, errmsg: 'ok', phone_info: { purePhoneNumber: '138-0013', countryCode: '86' } },
      502,
      'WECHAT_ERROR',
    ],
    [{ errcode: 0, errmsg: 'ok' }, 502, 'WECHAT_ERROR'],
  ])(
    'maps %j to %i %s, with one call (never retried: the code is single-use)',
    async (body, status, code) => {
      // Arrange
      answer(body);

      // Act / Assess
      await expect(fetchPhoneNumber(wechat.url, 'TOKEN', 'CODE', 'oOPENID')).rejects.toMatchObject({
        status,
        code,
      });
      expect(wechat.requests).toHaveLength(1);
    },
  );

  it('answers 503 on a 5xx and 502 on a non-JSON page', async () => {
    // Arrange
    wechat.next(502, '<html>bad gateway</html>', { 'content-type': 'text/html' });
    wechat.next(200, '<html>login</html>', { 'content-type': 'text/html' });

    // Act / Assess
    await expect(fetchPhoneNumber(wechat.url, 'TOKEN', 'CODE', 'oOPENID')).rejects.toMatchObject({
      status: 503,
    });
    await expect(fetchPhoneNumber(wechat.url, 'TOKEN', 'CODE', 'oOPENID')).rejects.toMatchObject({
      status: 502,
    });
  });
});
