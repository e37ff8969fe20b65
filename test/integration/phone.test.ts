import { randomInt } from 'node:crypto';
import { decodeJwt } from 'jose';
import { beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { handler as adminGetUserHandler } from '#functions/admin-get-user';
import { handler as bindPhoneHandler } from '#functions/bind-phone';
import { handler as deleteMeHandler } from '#functions/delete-me';
import { handler as exportMeHandler } from '#functions/export-me';
import { handler as meHandler } from '#functions/me';
import { type Config, loadConfig } from '#lib/config';
import { forbidInLogs } from '#test/helpers/log-sink';
import {
  clearFaults,
  invoke,
  randomOpenid,
  sandboxCallCount,
  sandboxUrl,
  scanTable,
  setFault,
  signInUser,
  storedUser,
} from './helpers';

/** POST /wechat/phone against the sandbox's getuserphonenumber, through the shared access_token. */

const PHONE = '/wxa/business/getuserphonenumber';
const STABLE_TOKEN = '/cgi-bin/stable_token';

let config: Config;

async function sandboxPost<T>(path: string, body: unknown): Promise<T> {
  const response = await fetch(`${sandboxUrl}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  expect(response.status).toBe(200);
  return (await response.json()) as T;
}

/** A mainland mobile number nobody else in this run has. */
const randomPhone = () => `139${String(randomInt(100_000_000)).padStart(8, '0')}`;

/** Plays the user tapping getPhoneNumber: a code for this openid and number (forbidden in logs from now on). */
async function phoneCode(input: {
  openid?: string;
  phoneNumber?: string;
  countryCode?: string;
}): Promise<string> {
  const { code } = await sandboxPost<{ code: string }>('/sandbox/phone-code', input);
  forbidInLogs(code, ...(input.phoneNumber ? [input.phoneNumber] : []));
  return code;
}

const bindPhone = (token: string | undefined, body: unknown) =>
  invoke(bindPhoneHandler, { method: 'POST', path: '/wechat/phone', token, body: body as object });

/** The shared access_token must not appear in any log line of the test either. */
async function forbidAccessToken(): Promise<void> {
  const item = await storedUser(`access_token#${config.appId}`);
  if (typeof item?.value === 'string') forbidInLogs(item.value);
}

beforeAll(async () => {
  config = await loadConfig();
});

beforeEach(async () => {
  await clearFaults();
});

describe('POST /wechat/phone', () => {
  it('binds the number: the owner sees it in /me and the export; support and tokens never do', async () => {
    // Arrange
    const openid = randomOpenid();
    const { token, user } = await signInUser(openid);
    const phoneNumber = randomPhone();
    const code = await phoneCode({ openid, phoneNumber });

    // Act
    const result = await bindPhone(token, { code });

    // Assess
    expect(result.status).toBe(200);
    expect(result.data?.user).toMatchObject({ id: user.id, phoneNumber, countryCode: '86' });
    const me = await invoke(meHandler, { path: '/wechat/me', token });
    expect(me.data?.user).toMatchObject({ phoneNumber, countryCode: '86' });
    const exported = await invoke(exportMeHandler, { path: '/wechat/me/export', token });
    expect(exported.data?.export?.profile).toMatchObject({ phoneNumber, countryCode: '86' });
    expect(await storedUser(user.id)).toMatchObject({ phoneNumber, countryCode: '86' });
    const admin = await invoke(adminGetUserHandler, {
      path: `/admin/users/${user.id}`,
      pathParameters: { id: user.id },
    });
    expect(admin.status).toBe(200);
    expect(JSON.stringify(admin.data)).not.toContain(phoneNumber);
    const again = await signInUser(openid);
    expect(JSON.stringify(decodeJwt(again.token))).not.toContain(phoneNumber);
    expect(again.user).toMatchObject({ phoneNumber });
    await forbidAccessToken();
  });

  it('keeps an international number with its country code, and a later binding replaces the number', async () => {
    // Arrange
    const openid = randomOpenid();
    const { token } = await signInUser(openid);
    await bindPhone(token, { code: await phoneCode({ openid, phoneNumber: randomPhone() }) });
    const code = await phoneCode({ openid, phoneNumber: '4155550123', countryCode: '1' });

    // Act
    const result = await bindPhone(token, { code });

    // Assess
    expect(result.status).toBe(200);
    expect(result.data?.user).toMatchObject({ phoneNumber: '4155550123', countryCode: '1' });
    await forbidAccessToken();
  });

  it('refuses a reused code, another user’s code and an unknown code with 400 INVALID_CODE, changing nothing', async () => {
    // Arrange
    const openid = randomOpenid();
    const { token, user } = await signInUser(openid);
    const phoneNumber = randomPhone();
    const code = await phoneCode({ openid, phoneNumber });
    expect((await bindPhone(token, { code })).status).toBe(200);
    const stored = await storedUser(user.id);
    const someoneElses = await phoneCode({ openid: randomOpenid(), phoneNumber: randomPhone() });

    // Act
    const results = [
      await bindPhone(token, { code }),
      await bindPhone(token, { code: someoneElses }),
      await bindPhone(token, { code: 'never-issued-code' }),
    ];

    // Assess
    for (const result of results) {
      expect(result.status).toBe(400);
      expect(result.code).toBe('INVALID_CODE');
      expect(result.message).toMatch(/[\u4e00-\u9fff]/);
    }
    expect(await storedUser(user.id)).toEqual(stored);
    await forbidAccessToken();
  });

  it('refuses bad input (400) and a missing session (401) before any WeChat call', async () => {
    // Arrange
    const { token } = await signInUser();
    const calls = async () => (await sandboxCallCount(PHONE)) + (await sandboxCallCount(STABLE_TOKEN));
    const before = await calls();

    // Act
    const results = [
      await bindPhone(token, {}),
      await bindPhone(token, { code: '' }),
      await bindPhone(token, { code: 42 }),
      await bindPhone(token, { code: 'a'.repeat(129) }),
      await bindPhone(token, { code: 'bad code!' }),
      await bindPhone(undefined, { code: 'valid-looking' }),
    ];

    // Assess
    expect(results.map((result) => result.status)).toEqual([400, 400, 400, 400, 400, 401]);
    expect(results[0]?.code).toBe('VALIDATION_ERROR');
    expect(await calls()).toBe(before);
  });

  it('maps 45011 to 429 WECHAT_RATE_LIMITED and -1 to 503; the code is still good afterwards', async () => {
    // Arrange
    const openid = randomOpenid();
    const { token } = await signInUser(openid);
    const phoneNumber = randomPhone();
    const code = await phoneCode({ openid, phoneNumber });

    // Act
    await setFault(PHONE, 'quota', 1);
    const limited = await bindPhone(token, { code });
    await setFault(PHONE, 'busy', 1);
    const busy = await bindPhone(token, { code });
    const bound = await bindPhone(token, { code });

    // Assess
    expect(limited.status).toBe(429);
    expect(limited.code).toBe('WECHAT_RATE_LIMITED');
    expect(limited.headers['retry-after']).toBe('60');
    expect(busy.status).toBe(503);
    expect(bound.status).toBe(200);
    expect(bound.data?.user).toMatchObject({ phoneNumber });
    await forbidAccessToken();
  });

  it('on 40001 re-reads the store, refreshes the token once and binds', async () => {
    // Arrange
    const openid = randomOpenid();
    const { token } = await signInUser(openid);
    await bindPhone(token, { code: await phoneCode({ openid, phoneNumber: randomPhone() }) });
    const old = (await storedUser(`access_token#${config.appId}`))?.value as string;
    forbidInLogs(old);
    await sandboxPost('/sandbox/tokens/invalidate', { appid: config.appId });
    const phoneNumber = randomPhone();
    const code = await phoneCode({ openid, phoneNumber });
    const [tokensBefore, phonesBefore] = [
      await sandboxCallCount(STABLE_TOKEN),
      await sandboxCallCount(PHONE),
    ];

    // Act
    const result = await bindPhone(token, { code });

    // Assess
    expect(result.status).toBe(200);
    expect(result.data?.user).toMatchObject({ phoneNumber });
    expect(await sandboxCallCount(STABLE_TOKEN)).toBe(tokensBefore + 1);
    expect(await sandboxCallCount(PHONE)).toBe(phonesBefore + 2);
    expect((await storedUser(`access_token#${config.appId}`))?.value).not.toBe(old);
    await forbidAccessToken();
  });

  it('erases the number with the account', async () => {
    // Arrange
    const openid = randomOpenid();
    const { token, user } = await signInUser(openid);
    const phoneNumber = randomPhone();
    await bindPhone(token, { code: await phoneCode({ openid, phoneNumber }) });

    // Act
    const deleted = await invoke(deleteMeHandler, { method: 'DELETE', path: '/wechat/me', token });

    // Assess
    expect(deleted.status).toBe(200);
    const items = await scanTable(config.usersTable);
    expect(JSON.stringify(items)).not.toContain(phoneNumber);
    expect(items.some((item) => item.id === user.id)).toBe(false);
    await forbidAccessToken();
  });
});
