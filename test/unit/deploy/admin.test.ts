import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Hash } from '@smithy/hash-node';
import { SignatureV4 } from '@smithy/signature-v4';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type Credentials,
  type Io,
  parseAdminArgs,
  prepare,
  requestFor,
  run,
  type Target,
  UsageError,
} from '../../../deploy/admin';

const SESSION = {
  accessKeyId: 'AKIDEXAMPLE',
  secretAccessKey: 'secret/example',
  sessionToken: 'token+session',
};
const AT = new Date('2030-01-02T03:04:05Z');
const API = 'https://abc123.execute-api.ap-southeast-1.amazonaws.com';

describe('parseAdminArgs', () => {
  it.each([
    [['reconcile'], { command: { name: 'reconcile', all: false } }],
    [['reconcile', '--all'], { command: { name: 'reconcile', all: true } }],
    [
      ['order', 'WX20300102abc', '--stage', 'prod'],
      { command: { name: 'order', outTradeNo: 'WX20300102abc' }, stage: 'prod' },
    ],
    [['exceptions'], { command: { name: 'exceptions', limit: undefined, cursor: undefined } }],
    [['user', 'uAbCdEfGh_-12'], { command: { name: 'user', id: 'uAbCdEfGh_-12' } }],
    [
      ['refund', 'WX20300102abc', '--amount', '600', '--reason', '用户申请', '--key', 'op-1'],
      {
        command: {
          name: 'refund',
          outTradeNo: 'WX20300102abc',
          amount: 600,
          reason: '用户申请',
          key: 'op-1',
        },
      },
    ],
    [
      ['delete-user', 'uAbCdEfGh_-12', '--stage', 'prod'],
      { command: { name: 'delete-user', id: 'uAbCdEfGh_-12' }, stage: 'prod' },
    ],
    [
      ['bill', '2026-11-28', '--stage', 'prod'],
      { command: { name: 'bill', date: '2026-11-28' }, stage: 'prod' },
    ],
    [
      ['exceptions', '--limit', '20', '--cursor', 'eyJh_b-c'],
      { command: { name: 'exceptions', limit: 20, cursor: 'eyJh_b-c' } },
    ],
  ])('%j', (argv, expected) => {
    expect(parseAdminArgs(argv)).toEqual(expected);
  });

  it.each([
    [[], /no command/],
    [['refunds'], /unknown command "refunds"/],
    [['refund'], /refund takes one outTradeNo/],
    [['refund', 'WX20300102abc', '--amount', '1.5'], /--amount 1.5/],
    [['refund', 'WX20300102abc', '--amount', '0'], /--amount 0/],
    [['refund', 'WX20300102abc', '--reason', 'x'.repeat(81)], /at most 80/],
    [['order', 'WX20300102abc', '--amount', '5'], /--amount does not apply to order/],
    [['order'], /order takes one outTradeNo/],
    [['order', 'a', 'b'], /order takes one outTradeNo/],
    [['order', '../users/1'], /not an outTradeNo/],
    [['user'], /user takes one user id/],
    [['delete-user', 'openid#oAbc123456'], /not a user id/],
    [['reconcile', 'now'], /unexpected argument "now"/],
    [['bill'], /bill takes one date/],
    [['bill', '20261128'], /not a date YYYY-MM-DD/],
    [['reconcile', '--limit', '3'], /--limit does not apply to reconcile/],
    [['exceptions', '--all'], /--all does not apply to exceptions/],
    [['exceptions', '--limit', '0'], /--limit 0/],
    [['exceptions', '--limit', '101'], /--limit 101/],
    [['exceptions', '--limit', '2.5'], /--limit 2.5/],
    [['exceptions', '--cursor', 'a&b=c'], /--cursor/],
    [['reconcile', '--stage', 'Prod!'], /--stage "Prod!"/],
    [['reconcile', '--stage'], /--stage/],
    [['reconcile', '--verbose'], /verbose/],
  ])('refuses %j', (argv, message) => {
    expect(() => parseAdminArgs(argv)).toThrow(UsageError);
    expect(() => parseAdminArgs(argv)).toThrow(message);
  });
});

describe('requestFor', () => {
  it('maps each command to its admin route', () => {
    expect(requestFor({ name: 'reconcile', all: true })).toEqual({
      method: 'POST',
      path: '/admin/reconcile',
      query: {},
      body: '{"all":true}',
    });
    expect(requestFor({ name: 'order', outTradeNo: 'WX2030|01*x' })).toEqual({
      method: 'GET',
      path: '/admin/orders/WX2030%7C01%2Ax',
      query: {},
    });
    expect(requestFor({ name: 'exceptions', limit: 5, cursor: 'abc' })).toEqual({
      method: 'GET',
      path: '/admin/exceptions',
      query: { limit: '5', cursor: 'abc' },
    });
    expect(requestFor({ name: 'exceptions' }).query).toEqual({});
    expect(requestFor({ name: 'user', id: 'uAbCdEfGh_-12' })).toEqual({
      method: 'GET',
      path: '/admin/users/uAbCdEfGh_-12',
      query: {},
    });
    expect(requestFor({ name: 'delete-user', id: 'uAbCdEfGh_-12' }).method).toBe('DELETE');
    expect(requestFor({ name: 'bill', date: '2026-11-28' })).toEqual({
      method: 'GET',
      path: '/admin/bill',
      query: { date: '2026-11-28' },
    });
    expect(requestFor({ name: 'refund', outTradeNo: 'WX20300102abc', amount: 600, key: 'op-1' })).toEqual({
      method: 'POST',
      path: '/admin/refunds',
      query: {},
      body: '{"outTradeNo":"WX20300102abc","amount":600}',
      headers: { 'idempotency-key': 'op-1' },
    });
  });

  it('gives a refund without --key a fresh Idempotency-Key each time', () => {
    // Act
    const first = parseAdminArgs(['refund', 'WX20300102abc']).command;
    const second = parseAdminArgs(['refund', 'WX20300102abc']).command;
    // Assess
    expect(first).toMatchObject({ name: 'refund', outTradeNo: 'WX20300102abc' });
    expect(first.name === 'refund' && second.name === 'refund' && first.key !== second.key).toBe(true);
  });

  it('signs the Idempotency-Key with the rest of the request', async () => {
    // Act
    const { init } = await prepare(
      requestFor({ name: 'refund', outTradeNo: 'WX20300102abc', key: 'op-1' }),
      { baseUrl: API, signing: { region: 'ap-southeast-1', credentials: SESSION } },
      AT,
    );
    // Assess
    const headers = init.headers as Record<string, string>;
    expect(headers['idempotency-key']).toBe('op-1');
    expect(headers.authorization).toMatch(/SignedHeaders=[a-z0-9;-]*idempotency-key/);
  });
});

describe('prepare (SigV4 for execute-api)', () => {
  const signed = (credentials: Credentials) =>
    prepare(
      requestFor({ name: 'exceptions', limit: 5 }),
      { baseUrl: API, signing: { region: 'ap-southeast-1', credentials } },
      AT,
    );

  it('signs with AWS4-HMAC-SHA256, execute-api in the scope, x-amz-date and the session token', async () => {
    // Act
    const { url, init } = await signed(SESSION);
    // Assess
    const headers = init.headers as Record<string, string>;
    expect(url).toBe(`${API}/admin/exceptions?limit=5`);
    expect(headers.authorization).toMatch(
      /^AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE\/20300102\/ap-southeast-1\/execute-api\/aws4_request, SignedHeaders=[a-z0-9;-]*host[a-z0-9;-]*, Signature=[0-9a-f]{64}$/,
    );
    expect(headers.authorization).toMatch(/SignedHeaders=.*x-amz-date.*x-amz-security-token/);
    expect(headers['x-amz-date']).toBe('20300102T030405Z');
    expect(headers['x-amz-security-token']).toBe('token+session');
    expect(headers).not.toHaveProperty('host');
  });

  it('sends no session token for long-term credentials, and resolves a credential provider', async () => {
    const { init } = await signed(async () => ({ accessKeyId: 'AKIDLONG', secretAccessKey: 'long' }));
    const headers = init.headers as Record<string, string>;
    expect(headers.authorization).toMatch(/^AWS4-HMAC-SHA256 Credential=AKIDLONG\/20300102\//);
    expect(headers).not.toHaveProperty('x-amz-security-token');
  });

  it('signs nothing for the local stack', async () => {
    const { url, init } = await prepare(requestFor({ name: 'reconcile', all: false }), {
      baseUrl: 'http://127.0.0.1:3000',
    });
    expect(url).toBe('http://127.0.0.1:3000/admin/reconcile');
    expect(init).toEqual({
      method: 'POST',
      headers: { accept: 'application/json', 'content-type': 'application/json' },
      body: '{"all":false}',
    });
  });
});

describe('run against a server that answers like the admin routes', () => {
  interface Seen {
    method: string;
    url: string;
    headers: IncomingMessage['headers'];
    body: string;
  }
  const seen: Seen[] = [];
  let server: Server;
  let base: string;

  const answers: Record<string, [number, unknown]> = {
    'POST /admin/reconcile': [
      200,
      {
        success: true,
        message: '对账完成',
        data: { checked: 2, credited: 1, closed: 0, stillPending: 1, exceptions: 0 },
      },
    ],
    'GET /admin/orders/WX20300102abc': [
      200,
      { success: true, message: '查询订单成功', data: { order: { outTradeNo: 'WX20300102abc' } } },
    ],
    'GET /admin/orders/WX20300102nope': [
      404,
      { success: false, message: '订单不存在', code: 'ORDER_NOT_FOUND' },
    ],
    'GET /admin/exceptions?limit=1': [
      200,
      { success: true, message: '查询支付异常成功', data: { exceptions: [], nextCursor: 'NEXT_1' } },
    ],
  };

  beforeAll(async () => {
    server = createServer(async (req, res) => {
      const chunks: Buffer[] = [];
      for await (const chunk of req) chunks.push(chunk as Buffer);
      seen.push({
        method: req.method ?? '',
        url: req.url ?? '',
        headers: req.headers,
        body: Buffer.concat(chunks).toString(),
      });
      const [status, body] = answers[`${req.method} ${req.url}`] ?? [403, { message: 'Forbidden' }];
      res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  afterAll(() => new Promise((resolve) => server.close(resolve)));

  function cli(stageTarget?: (stage: string) => Promise<Target>) {
    const out: string[] = [];
    const err: string[] = [];
    const io: Io = {
      env: { PORT: base.split(':').at(-1) },
      out: (text) => out.push(text),
      err: (text) => err.push(text),
      stageTarget: stageTarget ?? (() => Promise.reject(new Error('no stage here'))),
    };
    return { io, out, err };
  }

  it('reconcile --all: POST /admin/reconcile {all:true} on the local stack, unsigned; prints the data', async () => {
    // Prepare
    const { io, out } = cli();
    seen.length = 0;
    // Act
    const code = await run(['reconcile', '--all'], io);
    // Assess
    expect(code).toBe(0);
    expect(seen).toHaveLength(1);
    expect(seen[0]).toMatchObject({ method: 'POST', url: '/admin/reconcile', body: '{"all":true}' });
    expect(seen[0]?.headers['content-type']).toBe('application/json');
    expect(seen[0]?.headers).not.toHaveProperty('authorization');
    expect(out[0]).toBe('对账完成');
    expect(JSON.parse(out[1] ?? '')).toEqual({
      checked: 2,
      credited: 1,
      closed: 0,
      stillPending: 1,
      exceptions: 0,
    });
  });

  it('order <no> --stage: GET /admin/orders/{no}, signed so that the server can verify the signature', async () => {
    // Prepare
    const credentials = SESSION;
    const { io, out } = cli(async (stage) => {
      expect(stage).toBe('prod');
      return { baseUrl: base, signing: { region: 'ap-southeast-1', credentials } };
    });
    seen.length = 0;
    // Act
    const code = await run(['order', 'WX20300102abc', '--stage', 'prod'], io);
    // Assess
    expect(code).toBe(0);
    expect(JSON.parse(out[1] ?? '')).toEqual({ order: { outTradeNo: 'WX20300102abc' } });
    const request = seen[0] as Seen;
    expect(request).toMatchObject({ method: 'GET', url: '/admin/orders/WX20300102abc', body: '' });
    expect(request.headers['x-amz-security-token']).toBe('token+session');
    // What API Gateway does: sign the request as received, at its x-amz-date, and compare.
    const date = String(request.headers['x-amz-date']);
    const signingDate = new Date(
      `${date.slice(0, 4)}-${date.slice(4, 6)}-${date.slice(6, 8)}T${date.slice(9, 11)}:${date.slice(11, 13)}:${date.slice(13, 15)}Z`,
    );
    const signedHeaders = /SignedHeaders=([^,]+)/.exec(String(request.headers.authorization))?.[1] ?? '';
    const headers = Object.fromEntries(
      signedHeaders.split(';').map((name) => [name, String(request.headers[name])]),
    );
    const url = new URL(request.url, base);
    const expected = await new SignatureV4({
      service: 'execute-api',
      region: 'ap-southeast-1',
      credentials,
      sha256: Hash.bind(null, 'sha256'),
    }).sign(
      {
        method: 'GET',
        protocol: 'http:',
        hostname: url.hostname,
        port: Number(url.port),
        path: url.pathname,
        query: {},
        headers,
      },
      { signingDate },
    );
    expect(request.headers.authorization).toBe(expected.headers.authorization);
  });

  it('exceptions --limit 1: GET /admin/exceptions?limit=1 and the command for the next page', async () => {
    const { io, out, err } = cli();
    seen.length = 0;
    expect(await run(['exceptions', '--limit', '1'], io)).toBe(0);
    expect(seen[0]).toMatchObject({ method: 'GET', url: '/admin/exceptions?limit=1' });
    expect(JSON.parse(out[1] ?? '')).toEqual({ exceptions: [], nextCursor: 'NEXT_1' });
    expect(err).toEqual(['next page: npm run admin -- exceptions --limit 1 --cursor NEXT_1']);
  });

  it("exits 1 with the server's message and code when it refuses", async () => {
    const { io, out, err } = cli();
    expect(await run(['order', 'WX20300102nope'], io)).toBe(1);
    expect(out).toEqual([]);
    expect(err).toEqual(['订单不存在 (ORDER_NOT_FOUND, HTTP 404)']);
  });

  it("exits 1 on API Gateway's own refusal of a deployed stage, naming execute-api:Invoke", async () => {
    const { io, err } = cli(async () => ({
      baseUrl: `${base}/prefix`,
      signing: { region: 'ap-southeast-1', credentials: SESSION },
    }));
    expect(await run(['reconcile', '--stage', 'prod'], io)).toBe(1);
    expect(err.join('\n')).toMatch(
      /HTTP 403 from POST http:.*\/prefix\/admin\/reconcile: .*execute-api:Invoke/,
    );
  });

  it('exits 1 when the stage cannot be found, 2 with the usage on bad arguments', async () => {
    const missing = cli();
    expect(await run(['reconcile', '--stage', 'prod'], missing.io)).toBe(1);
    expect(missing.err).toEqual(['failed: no stage here']);
    const bad = cli();
    expect(await run(['order'], bad.io)).toBe(2);
    expect(bad.err[0]).toMatch(/^order takes one outTradeNo\n\nusage: npm run admin -- <command>/);
  });
});
