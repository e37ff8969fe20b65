/**
 * Deadlines (issue 12), AWS side: the DynamoDB (and SSM) client pointed at a socket that accepts and never
 * answers (this file's own module graph, so its client singleton is built against that socket). A stalled
 * call fails (SSM's too), inside an invocation before its deadline, outside one after its attempts' timeouts (the
 * request timeout is an error, not a logged warning); payNotify answers FAIL, which WeChat retries, inside
 * its 4 s Lambda timeout. Bounds are generous: only "before the deadline" matters.
 */
import { GetCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { handler as payNotifyHandler } from '#functions/pay-notify';
import { DYNAMO_ATTEMPT_TIMEOUT_MS, DYNAMO_MAX_ATTEMPTS, dynamo } from '#lib/clients/dynamodb';
import { getSecureParameters, SsmDeadlineError } from '#lib/clients/ssm';
import { resetConfigCache } from '#lib/config';
import { ANSWER_MARGIN_MS, withDeadline } from '#lib/deadline';
import { httpEvent, lambdaContext } from '#local/fixtures/events';
import { v2NotifyXml } from '#local/fixtures/notify';
import { type StalledServer, startStalled } from '#test/helpers/stalled-server';

let stalled: StalledServer;
/** The variables this file points at the stalled socket (SSM with fake credentials), restored after. */
const saved = Object.fromEntries(
  ['DYNAMODB_ENDPOINT', 'AWS_ENDPOINT_URL_SSM', 'AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY'].map((name) => [
    name,
    process.env[name],
  ]),
);

beforeAll(async () => {
  stalled = await startStalled();
  Object.assign(process.env, {
    DYNAMODB_ENDPOINT: stalled.url,
    AWS_ENDPOINT_URL_SSM: stalled.url,
    AWS_ACCESS_KEY_ID: 'local',
    AWS_SECRET_ACCESS_KEY: 'local',
  });
  resetConfigCache();
});

afterAll(async () => {
  for (const [name, value] of Object.entries(saved)) {
    if (value === undefined) delete process.env[name];
    else process.env[name] = value;
  }
  resetConfigCache();
  await stalled.close();
});

/** How long `work` took to settle, milliseconds, and its rejection (undefined when it resolved). */
async function timedFailure(work: () => Promise<unknown>): Promise<{ error: unknown; ms: number }> {
  const started = performance.now();
  let error: unknown;
  try {
    await work();
  } catch (caught) {
    error = caught;
  }
  return { error, ms: Math.round(performance.now() - started) };
}

const getItem = () =>
  dynamo().send(new GetCommand({ TableName: 'orders', Key: { outTradeNo: 'T0000000000000001' } }));

describe('a DynamoDB that accepts and never answers', () => {
  it('fails a GetItem before the invocation deadline (1.5 s left)', async () => {
    // Act
    const { error, ms } = await timedFailure(() =>
      withDeadline({ getRemainingTimeInMillis: () => 1500 }, getItem),
    );
    // Assess
    console.info(`GetItem, stalled DynamoDB, 1.5 s left: failed after ${ms} ms (${(error as Error)?.name})`);
    expect(error).toBeInstanceOf(Error);
    expect(ms).toBeLessThan(1500 - ANSWER_MARGIN_MS + 250);
  });

  it('fails a GetItem without a deadline after its attempts time out (never hangs)', async () => {
    // Act
    const { error, ms } = await timedFailure(getItem);
    // Assess
    console.info(`GetItem, stalled DynamoDB, no deadline: failed after ${ms} ms (${(error as Error)?.name})`);
    expect((error as Error)?.name).toBe('TimeoutError');
    expect(ms).toBeLessThan(DYNAMO_MAX_ATTEMPTS * DYNAMO_ATTEMPT_TIMEOUT_MS + 2000);
  }, 15_000);

  it('makes payNotify answer FAIL (WeChat retries) within its 4 s Lambda timeout', async () => {
    // Prepare: a genuine v2 notify; its settle reads the order from the stalled DynamoDB
    const xml = v2NotifyXml({ outTradeNo: 'T0000000000000002', totalFee: 1 });
    const event = httpEvent({
      method: 'POST',
      path: '/wechat/notify',
      body: xml,
      headers: { 'content-type': 'text/xml' },
    });
    // Act
    const started = performance.now();
    const result = await payNotifyHandler(event, lambdaContext(4000));
    const ms = Math.round(performance.now() - started);
    // Assess
    console.info(`payNotify, stalled DynamoDB, 4 s Lambda: ${result.statusCode} after ${ms} ms`);
    // v2 answers FAIL as XML with HTTP 200; WeChat delivers again until it reads SUCCESS.
    expect(result.body).toContain('<return_code><![CDATA[FAIL]]></return_code>');
    expect(ms).toBeLessThan(4000);
  });
});

describe('an SSM that accepts and never answers', () => {
  it('fails the secrets read before the invocation deadline (1.5 s left, a 3 s SSM budget)', async () => {
    // Prepare
    const before = stalled.requests().length;
    // Act
    const { error, ms } = await timedFailure(() =>
      withDeadline({ getRemainingTimeInMillis: () => 1500 }, () =>
        getSecureParameters(['/wechat-miniprogram-backend/test/JWT_SECRET'], { timeoutMs: 3000 }),
      ),
    );
    // Assess
    console.info(`GetParameters, stalled SSM, 1.5 s left: failed after ${ms} ms (${(error as Error)?.name})`);
    expect(error).toBeInstanceOf(SsmDeadlineError);
    expect(ms).toBeLessThan(1500 - ANSWER_MARGIN_MS + 250);
    expect(
      stalled
        .requests()
        .slice(before)
        .some((line) => line.startsWith('POST /')),
    ).toBe(true);
  });
});
