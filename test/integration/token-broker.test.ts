import { DeleteCommand, PutCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { dynamo } from '#lib/clients/dynamodb';
import { fetchJsapiTicket, InvalidAccessTokenError } from '#lib/clients/wechat-api';
import { type Config, loadConfig } from '#lib/config';
import { withDeadline } from '#lib/deadline';
import { ServiceUnavailableError, UpstreamError } from '#lib/errors';
import {
  accessTokenSource,
  jsapiTicket,
  LEASE_MS,
  TokenBroker,
  tokenBroker,
  type WechatApp,
  withAccessToken,
} from '#lib/tokens';
import { forbidInLogs } from '#test/helpers/log-sink';
import { countDynamoCalls, sandboxCallCount, sandboxUrl, storedUser } from './helpers';

/**
 * The token broker against DynamoDB Local and the sandbox, under true concurrency: each TokenBroker is one
 * container (its own memory), all sharing the users table; WeChat calls are counted by the sandbox.
 */

const STABLE_TOKEN = '/cgi-bin/stable_token';
const GETTICKET = '/cgi-bin/ticket/getticket';

let config: Config;
let app: WechatApp;
let mp: WechatApp;

const key = (kind: string, appId: string) => `${kind}#${appId}`;

async function clearStore(): Promise<void> {
  for (const id of [
    key('access_token', app.appId),
    key('access_token', mp.appId),
    key('jsapi_ticket', mp.appId),
  ]) {
    await dynamo().send(new DeleteCommand({ TableName: config.usersTable, Key: { id } }));
  }
  tokenBroker(config.usersTable).forget();
}

/** Every value stored so far must never appear in a log line of this test. */
async function forbidStoredValues(): Promise<void> {
  for (const id of [
    key('access_token', app.appId),
    key('access_token', mp.appId),
    key('jsapi_ticket', mp.appId),
  ]) {
    const item = await storedUser(id);
    if (typeof item?.value === 'string') forbidInLogs(item.value);
  }
}

/** n fresh containers. */
const containers = (n: number) => Array.from({ length: n }, () => new TokenBroker(config.usersTable));

async function invalidateAtWechat(appId: string): Promise<void> {
  const response = await fetch(`${sandboxUrl}/sandbox/tokens/invalidate`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ appid: appId }),
  });
  expect(response.status).toBe(200);
}

beforeAll(async () => {
  config = await loadConfig();
  app = { appId: config.appId, secret: config.wechatSecret, apiBase: config.apiBase };
  mp = { appId: config.mpAppId, secret: config.mpSecret, apiBase: config.apiBase };
  // Warm DynamoDB Local's JVM with bursts like the tests' own: a cold one on a loaded machine can stall a
  // first burst past the client's 2 s attempt timeout, which says nothing about the broker.
  for (let burst = 0; burst < 3; burst++) {
    await Promise.allSettled(
      Array.from({ length: 50 }, (_, i) =>
        dynamo().send(
          new UpdateCommand({
            TableName: config.usersTable,
            Key: { id: `warmup#${i}` },
            UpdateExpression: 'SET n = :n',
            ConditionExpression: 'attribute_not_exists(leaseUntil)',
            ExpressionAttributeValues: { ':n': burst },
          }),
        ),
      ),
    );
  }
  await Promise.allSettled(
    Array.from({ length: 50 }, (_, i) =>
      dynamo().send(new DeleteCommand({ TableName: config.usersTable, Key: { id: `warmup#${i}` } })),
    ),
  );
});

beforeEach(clearStore);

describe('cold start', () => {
  it('50 concurrent cold callers in 50 containers make exactly one stable_token call and share its token', async () => {
    // Arrange
    const before = await sandboxCallCount(STABLE_TOKEN);

    // Act
    const tokens = await Promise.all(containers(50).map((broker) => broker.get(accessTokenSource(app))));

    // Assess
    expect(await sandboxCallCount(STABLE_TOKEN)).toBe(before + 1);
    expect(new Set(tokens).size).toBe(1);
    const stored = await storedUser(key('access_token', app.appId));
    expect(stored).toMatchObject({ value: tokens[0], rev: 1 });
    expect(stored?.leaseOwner).toBeUndefined();
    // The sandbox answers a token issued earlier in this run with its remaining lifetime, as WeChat does.
    const lifetime = Number(stored?.expiresAt) - Date.now();
    expect(lifetime).toBeGreaterThan(3600_000);
    expect(lifetime).toBeLessThanOrEqual(7200_000);
    expect(Number(stored?.refreshAt)).toBe(Number(stored?.expiresAt) - 5 * 60_000);
    await forbidStoredValues();
  });

  it('concurrent callers in one container share one read of the store', async () => {
    // Arrange
    await new TokenBroker(config.usersTable).get(accessTokenSource(app));
    const broker = new TokenBroker(config.usersTable);
    const counter = countDynamoCalls();

    // Act
    const tokens = await Promise.all(Array.from({ length: 20 }, () => broker.get(accessTokenSource(app))));

    // Assess
    counter.stop();
    expect(new Set(tokens).size).toBe(1);
    expect(counter.calls()).toEqual(['GetItem']);
    await forbidStoredValues();
  });

  it('a warm container answers from memory, another container from the store, neither calls WeChat', async () => {
    // Arrange
    const [first, second] = [new TokenBroker(config.usersTable), new TokenBroker(config.usersTable)];
    const token = await first.get(accessTokenSource(app));
    const before = await sandboxCallCount(STABLE_TOKEN);

    // Act
    const again = await Promise.all([first.get(accessTokenSource(app)), second.get(accessTokenSource(app))]);

    // Assess
    expect(again).toEqual([token, token]);
    expect(await sandboxCallCount(STABLE_TOKEN)).toBe(before);
    await forbidStoredValues();
  });
});

describe('the lease', () => {
  it('waits for a live lease and takes over once it has ended (a crashed holder blocks nobody for long)', async () => {
    // Arrange: a holder that took the lease and died.
    const until = Date.now() + 1500;
    await dynamo().send(
      new PutCommand({
        TableName: config.usersTable,
        Item: { id: key('access_token', app.appId), leaseOwner: 'crashed', leaseUntil: until },
      }),
    );
    const before = await sandboxCallCount(STABLE_TOKEN);

    // Act
    const tokens = await Promise.all(containers(10).map((broker) => broker.get(accessTokenSource(app))));

    // Assess
    expect(Date.now()).toBeGreaterThanOrEqual(until);
    expect(new Set(tokens).size).toBe(1);
    expect(await sandboxCallCount(STABLE_TOKEN)).toBe(before + 1);
    await forbidStoredValues();
  });

  it('gives up waiting before the invocation’s deadline (503), without calling WeChat', async () => {
    // Arrange
    await dynamo().send(
      new PutCommand({
        TableName: config.usersTable,
        Item: { id: key('access_token', app.appId), leaseOwner: 'slow', leaseUntil: Date.now() + LEASE_MS },
      }),
    );
    const before = await sandboxCallCount(STABLE_TOKEN);
    const started = Date.now();

    // Act
    const waiting = withDeadline({ getRemainingTimeInMillis: () => 2000 }, () =>
      new TokenBroker(config.usersTable).get(accessTokenSource(app)),
    );

    // Assess
    await expect(waiting).rejects.toBeInstanceOf(ServiceUnavailableError);
    expect(Date.now() - started).toBeLessThan(2000);
    expect(await sandboxCallCount(STABLE_TOKEN)).toBe(before);
  });

  it('gives the lease back when the refresh fails, so the next caller refreshes at once', async () => {
    // Arrange
    const broker = new TokenBroker(config.usersTable);
    const failing = { ...accessTokenSource(app), fetch: () => Promise.reject(new UpstreamError()) };

    // Act
    await expect(broker.get(failing)).rejects.toBeInstanceOf(UpstreamError);
    const token = await broker.get(accessTokenSource(app));

    // Assess
    expect(token).toBeTruthy();
    expect((await storedUser(key('access_token', app.appId)))?.leaseOwner).toBeUndefined();
    await forbidStoredValues();
  });
});

describe('refresh ahead of expiry', () => {
  it('one caller refreshes once the refresh time has passed; everyone else keeps using the valid token', async () => {
    // Arrange: a stored token whose refresh time has passed (its last 5 minutes), containers that are cold.
    const token = await new TokenBroker(config.usersTable).get(accessTokenSource(app));
    const expiresAt = Date.now() + 4 * 60_000;
    await dynamo().send(
      new UpdateCommand({
        TableName: config.usersTable,
        Key: { id: key('access_token', app.appId) },
        UpdateExpression: 'SET refreshAt = :past, expiresAt = :soon',
        ExpressionAttributeValues: { ':past': Date.now() - 1000, ':soon': expiresAt },
      }),
    );
    const before = await sandboxCallCount(STABLE_TOKEN);

    // Act
    const tokens = await Promise.all(containers(20).map((broker) => broker.get(accessTokenSource(app))));

    // Assess: normal mode hands back the same (still valid) token, now stored with its real expiry.
    expect(await sandboxCallCount(STABLE_TOKEN)).toBe(before + 1);
    expect(new Set(tokens)).toEqual(new Set([token]));
    const stored = await storedUser(key('access_token', app.appId));
    expect(stored?.rev).toBe(2);
    expect(Number(stored?.refreshAt)).toBeGreaterThan(Date.now());
    expect(Number(stored?.expiresAt)).toBeGreaterThan(expiresAt);
    await forbidStoredValues();
  });

  it('a container refreshes its memory at the refresh time (its own clock), reading the store', async () => {
    // Arrange
    let now = Date.now();
    const broker = new TokenBroker(config.usersTable, () => now);
    await broker.get(accessTokenSource(app));
    const other = new TokenBroker(config.usersTable);
    const stored = await storedUser(key('access_token', app.appId));
    const before = await sandboxCallCount(STABLE_TOKEN);

    // Act: this container's clock passes the refresh time; it refreshes (the store's copy is due too).
    now = Number(stored?.refreshAt) + 1;
    const token = await broker.get(accessTokenSource(app));

    // Assess
    expect(await sandboxCallCount(STABLE_TOKEN)).toBe(before + 1);
    expect(await other.get(accessTokenSource(app))).toBe(token);
    await forbidStoredValues();
  });
});

describe('a token WeChat refuses (40001)', () => {
  it('re-reads the store once, refreshes once, and the call succeeds', async () => {
    // Arrange
    const broker = new TokenBroker(config.usersTable);
    const old = await broker.get(accessTokenSource(app));
    await invalidateAtWechat(app.appId);
    const [tokensBefore, usesBefore] = [
      await sandboxCallCount(STABLE_TOKEN),
      await sandboxCallCount(GETTICKET),
    ];

    // Act
    const ticket = await withAccessToken(broker, app, (token) => fetchJsapiTicket(app.apiBase, token));

    // Assess
    expect(ticket.value).toBeTruthy();
    expect(await sandboxCallCount(STABLE_TOKEN)).toBe(tokensBefore + 1);
    expect(await sandboxCallCount(GETTICKET)).toBe(usesBefore + 2);
    expect((await storedUser(key('access_token', app.appId)))?.value).not.toBe(old);
    forbidInLogs(old);
    await forbidStoredValues();
  });

  it('a container holding the refused token finds another’s fresh one in the store: no WeChat token call', async () => {
    // Arrange
    const [first, second] = [new TokenBroker(config.usersTable), new TokenBroker(config.usersTable)];
    await Promise.all([first.get(accessTokenSource(app)), second.get(accessTokenSource(app))]);
    await invalidateAtWechat(app.appId);
    await withAccessToken(first, app, (token) => fetchJsapiTicket(app.apiBase, token));
    const [tokensBefore, usesBefore] = [
      await sandboxCallCount(STABLE_TOKEN),
      await sandboxCallCount(GETTICKET),
    ];

    // Act
    await withAccessToken(second, app, (token) => fetchJsapiTicket(app.apiBase, token));

    // Assess
    expect(await sandboxCallCount(STABLE_TOKEN)).toBe(tokensBefore);
    expect(await sandboxCallCount(GETTICKET)).toBe(usesBefore + 2);
    await forbidStoredValues();
  });

  it('20 containers refused at once refresh once between them', async () => {
    // Arrange
    const brokers = containers(20);
    await Promise.all(brokers.map((broker) => broker.get(accessTokenSource(app))));
    await invalidateAtWechat(app.appId);
    const before = await sandboxCallCount(STABLE_TOKEN);

    // Act
    const tickets = await Promise.all(
      brokers.map((broker) => withAccessToken(broker, app, (token) => fetchJsapiTicket(app.apiBase, token))),
    );

    // Assess
    expect(await sandboxCallCount(STABLE_TOKEN)).toBe(before + 1);
    expect(tickets).toHaveLength(20);
    await forbidStoredValues();
  });

  it('never loops: a second refusal is a 502 after exactly two uses and one refresh', async () => {
    // Arrange
    const broker = new TokenBroker(config.usersTable);
    await broker.get(accessTokenSource(app));
    const before = await sandboxCallCount(STABLE_TOKEN);
    let uses = 0;

    // Act
    const call = withAccessToken(broker, app, async () => {
      uses += 1;
      throw new InvalidAccessTokenError(40001);
    });

    // Assess
    await expect(call).rejects.toMatchObject({ status: 502, code: 'WECHAT_TOKEN_INVALID' });
    expect(uses).toBe(2);
    expect(await sandboxCallCount(STABLE_TOKEN)).toBe(before + 1);
    await forbidStoredValues();
  });
});

describe('jsapi_ticket', () => {
  it('goes through the same broker: 20 cold containers, one getticket and one stable_token call', async () => {
    // Arrange
    const [tokensBefore, ticketsBefore] = [
      await sandboxCallCount(STABLE_TOKEN),
      await sandboxCallCount(GETTICKET),
    ];

    // Act
    const tickets = await Promise.all(containers(20).map((broker) => jsapiTicket(broker, mp)));

    // Assess
    const shown = (await (await fetch(`${sandboxUrl}/sandbox/jsapi-ticket`)).json()) as { ticket: string };
    expect(new Set(tickets)).toEqual(new Set([shown.ticket]));
    expect(await sandboxCallCount(STABLE_TOKEN)).toBe(tokensBefore + 1);
    expect(await sandboxCallCount(GETTICKET)).toBe(ticketsBefore + 1);
    expect(await storedUser(key('jsapi_ticket', mp.appId))).toMatchObject({ value: shown.ticket, rev: 1 });
    await forbidStoredValues();
  });
});
