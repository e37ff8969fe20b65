import { DeleteCommand } from '@aws-sdk/lib-dynamodb';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { handler as jssdkHandler } from '#functions/jssdk-config';
import { dynamo } from '#lib/clients/dynamodb';
import { type Config, loadConfig, resetConfigCache } from '#lib/config';
import { tokenBroker } from '#lib/tokens';
import { jssdkSignature } from '#lib/wechat/jssdk';
import { forbidInLogs } from '#test/helpers/log-sink';
import { invoke, sandboxCallCount, sandboxUrl, storedUser } from './helpers';

/** GET /wechat/jssdk/config against the sandbox's getticket, through the token broker. */

const GETTICKET = '/cgi-bin/ticket/getticket';
const STABLE_TOKEN = '/cgi-bin/stable_token';

let config: Config;

const jssdk = (url?: string) =>
  invoke(jssdkHandler, {
    path: '/wechat/jssdk/config',
    ...(url === undefined ? {} : { queryStringParameters: { url } }),
  });

async function sandboxTicket(): Promise<string> {
  const { ticket } = (await (await fetch(`${sandboxUrl}/sandbox/jsapi-ticket`)).json()) as { ticket: string };
  forbidInLogs(ticket);
  return ticket;
}

async function forbidStoredValues(): Promise<void> {
  for (const id of [`access_token#${config.mpAppId}`, `jsapi_ticket#${config.mpAppId}`]) {
    const item = await storedUser(id);
    if (typeof item?.value === 'string') forbidInLogs(item.value);
  }
}

beforeAll(async () => {
  config = await loadConfig();
  for (const id of [`access_token#${config.mpAppId}`, `jsapi_ticket#${config.mpAppId}`]) {
    await dynamo().send(new DeleteCommand({ TableName: config.usersTable, Key: { id } }));
  }
  tokenBroker(config.usersTable).forget();
});

describe('GET /wechat/jssdk/config', () => {
  it('signs the page with the official account’s jsapi_ticket (no session needed)', async () => {
    // Arrange
    const url = `${config.h5Origins[0]}/h5/pay.html?plan=monthly&from=share`;

    // Act
    const result = await jssdk(`${url}#/step/2`);

    // Assess
    expect(result.status).toBe(200);
    const data = result.data as { appId: string; timestamp: number; nonceStr: string; signature: string };
    expect(data.appId).toBe(config.mpAppId);
    expect(Math.abs(data.timestamp - Date.now() / 1000)).toBeLessThan(10);
    expect(data.nonceStr).toMatch(/^[A-Za-z0-9_-]{16}$/);
    const expected = jssdkSignature({
      jsapiTicket: await sandboxTicket(),
      nonceStr: data.nonceStr,
      timestamp: data.timestamp,
      url,
    });
    expect(data.signature).toBe(expected.signature);
    await forbidStoredValues();
  });

  it('fetches the ticket once for many pages and callers', async () => {
    // Arrange
    await jssdk(`${config.h5Origins[0]}/warm`);
    const before = await sandboxCallCount(GETTICKET);

    // Act
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) => jssdk(`${config.h5Origins[i % config.h5Origins.length]}/p/${i}`)),
    );

    // Assess
    expect(results.every((result) => result.status === 200)).toBe(true);
    expect(await sandboxCallCount(GETTICKET)).toBe(before);
    await forbidStoredValues();
  });

  it('refuses pages outside H5_ORIGINS with 400 URL_NOT_ALLOWED, without calling WeChat', async () => {
    // Arrange
    const origin = config.h5Origins[0] as string;
    const host = new URL(origin).host;
    const calls = async () => (await sandboxCallCount(GETTICKET)) + (await sandboxCallCount(STABLE_TOKEN));
    const before = await calls();

    // Act
    const results = await Promise.all(
      [
        '//evil.example/page',
        'https://evil.example/page',
        `http://${host}.evil.example/`,
        `http://${host}@evil.example/`,
        `https://${host}/`,
        `http://user:pw@${host}/`,
        `javascript:alert(document.cookie)//${origin}`,
        encodeURIComponent(`${origin}/page`),
        `http:%2F%2F${host}/`,
        `http:\\\\${host}/`,
        `${origin}\\@evil.example/`,
        `data:text/html,${origin}`,
        `${origin}/a b`,
        `${origin}/${'a'.repeat(2100)}`,
      ].map((url) => jssdk(url)),
    );

    // Assess
    for (const result of results) {
      expect(result.status).toBe(400);
      expect(result.code).toBe('URL_NOT_ALLOWED');
    }
    expect(await calls()).toBe(before);
  });

  it('asks for the url when it is missing (400 VALIDATION_ERROR)', async () => {
    // Act
    const result = await jssdk();

    // Assess
    expect(result.status).toBe(400);
    expect(result.code).toBe('VALIDATION_ERROR');
    expect(result.message).toBe('缺少参数 url');
  });
});

describe('without an official account', () => {
  const saved = { ...process.env };

  afterEach(() => {
    process.env.WECHAT_MP_APPID = saved.WECHAT_MP_APPID;
    process.env.WECHAT_MP_SECRET = saved.WECHAT_MP_SECRET;
    process.env.H5_ORIGINS = saved.H5_ORIGINS;
    resetConfigCache();
  });

  it.each([
    ['WECHAT_MP_APPID', 'WECHAT_MP_APPID'],
    ['WECHAT_MP_SECRET', 'WECHAT_MP_SECRET'],
    ['H5_ORIGINS', 'H5_ORIGINS'],
  ])('answers 404 FEATURE_DISABLED when %s is empty', async (name) => {
    // Arrange
    process.env[name] = '';
    resetConfigCache();
    const before = await sandboxCallCount(GETTICKET);

    // Act
    const result = await jssdk(`${saved.H5_ORIGINS?.split(',')[0]}/page`);

    // Assess
    expect(result.status).toBe(404);
    expect(result.code).toBe('FEATURE_DISABLED');
    expect(await sandboxCallCount(GETTICKET)).toBe(before);
  });
});
