import { ScanCommand } from '@aws-sdk/lib-dynamodb';
import { decodeJwt, SignJWT } from 'jose';
import { afterEach, describe, expect, it } from 'vitest';
import { handler as meHandler } from '#functions/me';
import { handler as signInHandler } from '#functions/sign-in';
import { handler as updateInfoHandler } from '#functions/update-info';
import { dynamo } from '#lib/clients/dynamodb';
import { loadConfig } from '#lib/config';
import type { HttpEventInput } from '#local/fixtures/events';
import {
  CODE2SESSION,
  clearFaults,
  countDynamoCalls,
  type DynamoCallCounter,
  invoke,
  randomOpenid,
  sandboxCallCount,
  sandboxCalls,
  sandboxLogin,
  sandboxUrl,
  setFault,
  signInUser,
  storedUser,
  storedUserOf,
} from './helpers';

const SIGN_IN = { method: 'POST', path: '/wechat/sign_in' } as const;

function signIn(input: Omit<HttpEventInput, 'method' | 'path'>) {
  return invoke(signInHandler, { ...SIGN_IN, ...input });
}

/** Every stored user item with this openid (a Scan is fine on the small local table). */
async function usersWithOpenid(openid: string): Promise<Record<string, unknown>[]> {
  const { usersTable } = await loadConfig();
  const items: Record<string, unknown>[] = [];
  let ExclusiveStartKey: Record<string, unknown> | undefined;
  do {
    const page = await dynamo().send(
      new ScanCommand({
        TableName: usersTable,
        FilterExpression: 'openid = :openid',
        ExpressionAttributeValues: { ':openid': openid },
        ConsistentRead: true,
        ExclusiveStartKey,
      }),
    );
    items.push(...(page.Items ?? []));
    ExclusiveStartKey = page.LastEvaluatedKey;
  } while (ExclusiveStartKey);
  return items;
}

let counter: DynamoCallCounter | undefined;

afterEach(async () => {
  counter?.stop();
  counter = undefined;
  await clearFaults();
});

describe('sign-in → me → update info → me', () => {
  it('signs a new user in, serves the profile, and shows an update', async () => {
    // Prepare
    const { code, openid } = await sandboxLogin();
    // Act
    const signedIn = await signIn({ body: { code } });
    // Assess: a token and the seed-000 defaults; nothing WeChat-internal leaks
    expect(signedIn.status).toBe(200);
    expect(signedIn.success).toBe(true);
    const { token, user } = signedIn.data ?? {};
    expect(user).toEqual({
      id: (await storedUserOf(openid))?.id,
      nickname: expect.stringMatching(/^微信用户[0-9a-f]{6}$/),
      avatar: '',
      sex: 2,
      role: 0,
      company: '',
      introduce: '',
      membershipExpiredAt: null,
    });
    expect(decodeJwt(token).sub).toBe(user.id);
    expect(signedIn.headers).toMatchObject({ 'content-type': expect.stringContaining('application/json') });
    const raw = JSON.stringify(signedIn);
    expect(raw).not.toContain(openid);
    expect(raw).not.toContain('session_key');

    // Act: me
    const me = await invoke(meHandler, { path: '/wechat/me', token });
    // Assess
    expect(me.status).toBe(200);
    expect(me.data?.user).toEqual(user);

    // Act: update info
    const changes = {
      nickname: '小明',
      avatar: 'https://thirdwx.qlogo.cn/mmopen/avatar.png',
      sex: 1,
      company: '腾讯',
      introduce: 'Hello 👋',
    };
    const updated = await invoke(updateInfoHandler, {
      method: 'PUT',
      path: '/wechat/info',
      token,
      body: changes,
    });
    // Assess
    expect(updated.status).toBe(200);
    expect(updated.data?.user).toEqual({ ...user, ...changes });

    // Act: me again
    const after = await invoke(meHandler, { path: '/wechat/me', token });
    // Assess
    expect(after.status).toBe(200);
    expect(after.data?.user).toEqual({ ...user, ...changes });
    expect(await storedUser(user.id)).toMatchObject({ ...changes, openid, role: 0 });
  });

  it('answers a code used twice with 400 INVALID_CODE and creates no second user', async () => {
    // Prepare
    const { code, openid } = await sandboxLogin();
    const first = await signIn({ body: { code } });
    expect(first.status).toBe(200);
    // Act
    const second = await signIn({ body: { code } });
    // Assess
    expect(second).toMatchObject({ status: 400, success: false, code: 'INVALID_CODE' });
    expect(second.data).toBeUndefined();
    expect(await usersWithOpenid(openid)).toHaveLength(1);
  });

  it('answers a code already redeemed elsewhere with 400 INVALID_CODE and creates no user', async () => {
    // Prepare: the code is spent before our backend sees it
    const { code, openid } = await sandboxLogin();
    const spent = await fetch(
      `${sandboxUrl}${CODE2SESSION}?${new URLSearchParams({
        appid: process.env.WECHAT_APPID ?? '',
        secret: process.env.WECHAT_SECRET ?? '',
        js_code: code,
        grant_type: 'authorization_code',
      })}`,
    );
    expect(((await spent.json()) as { openid?: string }).openid).toBe(openid);
    // Act
    const result = await signIn({ body: { code } });
    // Assess
    expect(result).toMatchObject({ status: 400, success: false, code: 'INVALID_CODE' });
    expect(await storedUserOf(openid)).toBeUndefined();
  });

  it('answers an unknown code with 400 INVALID_CODE', async () => {
    // Act
    const result = await signIn({ body: { code: 'a'.repeat(32) } });
    // Assess
    expect(result).toMatchObject({ status: 400, success: false, code: 'INVALID_CODE' });
  });
});

describe('unionid', () => {
  it('stores the unionid when WeChat sends one, without exposing it', async () => {
    // Prepare
    const openid = randomOpenid();
    const unionid = randomOpenid('oUnion');
    const { code } = await sandboxLogin(openid, unionid);
    // Act
    const result = await signIn({ body: { code } });
    // Assess
    expect(result.status).toBe(200);
    expect(await storedUser(result.data?.user.id)).toMatchObject({ openid, unionid });
    expect(JSON.stringify(result)).not.toContain(unionid);
  });

  it('records a unionid learnt on a later sign-in of an existing user', async () => {
    // Prepare
    const openid = randomOpenid();
    const { user } = await signInUser(openid);
    expect((await storedUser(user.id))?.unionid).toBeUndefined();
    const unionid = randomOpenid('oUnion');
    const { code } = await sandboxLogin(openid, unionid);
    // Act
    const result = await signIn({ body: { code } });
    // Assess
    expect(result.status).toBe(200);
    expect(result.data?.user.id).toBe(user.id);
    expect(await storedUser(user.id)).toMatchObject({ openid, unionid });
  });
});

describe('concurrency and cost', () => {
  it('creates exactly one user for 20 concurrent first sign-ins of one openid', async () => {
    // Prepare: 20 codes for one new openid
    const openid = randomOpenid();
    const codes = await Promise.all(Array.from({ length: 20 }, () => sandboxLogin(openid)));
    // Act
    const results = await Promise.all(codes.map(({ code }) => signIn({ body: { code } })));
    // Assess
    expect(results.map((result) => result.status)).toEqual(Array(20).fill(200));
    const subs = new Set(results.map((result) => decodeJwt(result.data?.token).sub));
    expect([...subs]).toEqual([(await storedUserOf(openid))?.id]);
    expect(new Set(results.map((result) => result.data?.user.nickname)).size).toBe(1);
    const items = await usersWithOpenid(openid);
    expect(items).toHaveLength(1);
    expect(items[0]?.id).toBe((await storedUserOf(openid))?.id);
  });

  it('costs a returning user two reads (the openid link, then the user) and no write', async () => {
    // Prepare
    const openid = randomOpenid();
    const first = await signInUser(openid);
    const { code } = await sandboxLogin(openid);
    counter = countDynamoCalls();
    // Act
    const result = await signIn({ body: { code } });
    // Assess
    expect(result.status).toBe(200);
    expect(result.data?.user).toEqual(first.user);
    expect(counter.calls()).toEqual(['GetItem', 'GetItem']);
  });

  it('costs a returning user ONE read when the previous session token comes along, expired or not', async () => {
    // Prepare: the previous token is past its lifetime (sign-in reads its subject as a hint only)
    const openid = randomOpenid();
    const first = await signInUser(openid);
    const { jwtSecret } = await loadConfig();
    const expired = await new SignJWT({ sv: 0 })
      .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
      .setSubject(first.user.id)
      .setIssuedAt(1_600_000_000)
      .setExpirationTime(1_600_000_600)
      .sign(jwtSecret);
    const { code } = await sandboxLogin(openid);
    counter = countDynamoCalls();
    // Act
    const result = await signIn({ body: { code }, token: expired });
    // Assess
    expect(result.status).toBe(200);
    expect(result.data?.user).toEqual(first.user);
    expect(decodeJwt(result.data?.token as string).sub).toBe(first.user.id);
    expect(counter.calls()).toEqual(['BatchGetItem']);
  });

  it('signs in to the account the openid is linked to whatever user another token names', async () => {
    // Prepare: Alice signs in presenting Bob's (valid) token, or a garbage one
    const alice = await signInUser(randomOpenid());
    const bob = await signInUser(randomOpenid());
    const aliceOpenid = (await storedUser(alice.user.id))?.openid as string;
    // Act
    const withBobs = await signIn({
      body: { code: (await sandboxLogin(aliceOpenid)).code },
      token: bob.token,
    });
    const withGarbage = await signIn({
      body: { code: (await sandboxLogin(aliceOpenid)).code },
      headers: { authorization: 'Bearer not-a.jwt.at-all' },
    });
    // Assess
    expect(withBobs.status).toBe(200);
    expect(withBobs.data?.user.id).toBe(alice.user.id);
    expect(decodeJwt(withBobs.data?.token as string).sub).toBe(alice.user.id);
    expect(withGarbage.status).toBe(200);
    expect(withGarbage.data?.user.id).toBe(alice.user.id);
  });
});

describe('WeChat faults', () => {
  it('retries once when WeChat is busy once, then signs in', async () => {
    // Prepare
    const { code, openid } = await sandboxLogin();
    await setFault(CODE2SESSION, 'busy', 1);
    const before = await sandboxCallCount();
    // Act
    const result = await signIn({ body: { code } });
    // Assess
    expect(result.status).toBe(200);
    expect(result.data?.user.id).toBe((await storedUserOf(openid))?.id);
    expect((await sandboxCallCount()) - before).toBe(2);
  });

  it('answers 503 when WeChat stays busy, after one retry, and creates no user', async () => {
    // Prepare
    const { code, openid } = await sandboxLogin();
    await setFault(CODE2SESSION, 'busy');
    const before = await sandboxCallCount();
    // Act
    const result = await signIn({ body: { code } });
    // Assess
    expect(result).toMatchObject({ status: 503, success: false, code: 'WECHAT_UNAVAILABLE' });
    expect((await sandboxCallCount()) - before).toBe(2);
    expect(await storedUserOf(openid)).toBeUndefined();
  });

  it('answers 503 when WeChat keeps answering 5xx, and creates no user', async () => {
    // Prepare
    const { code, openid } = await sandboxLogin();
    await setFault(CODE2SESSION, '5xx');
    const before = await sandboxCallCount();
    // Act
    const result = await signIn({ body: { code } });
    // Assess
    expect(result).toMatchObject({ status: 503, success: false, code: 'WECHAT_UNAVAILABLE' });
    expect((await sandboxCallCount()) - before).toBe(2);
    expect(await storedUserOf(openid)).toBeUndefined();
  });

  // Two attempts of at most 3 s each, plus the jittered pause between them.
  it('answers 503 when WeChat times out twice, and creates no user', { timeout: 15_000 }, async () => {
    // Prepare
    const { code, openid } = await sandboxLogin();
    await setFault(CODE2SESSION, 'timeout', 2);
    const before = await sandboxCallCount();
    // Act
    const result = await signIn({ body: { code } });
    // Assess
    expect(result).toMatchObject({ status: 503, success: false, code: 'WECHAT_UNAVAILABLE' });
    expect((await sandboxCallCount()) - before).toBe(2);
    expect(await storedUserOf(openid)).toBeUndefined();
  });
});

const JSON_TYPE = { 'content-type': 'application/json' };

/** §2.1 S1–S3 and S10: each is refused before any outbound call or DynamoDB request. */
const BAD_INPUTS: {
  row: string;
  name: string;
  input: Omit<HttpEventInput, 'method' | 'path'>;
  status: number;
  code: string;
}[] = [
  { row: 'S1', name: '{}', input: { body: {} }, status: 400, code: 'VALIDATION_ERROR' },
  { row: 'S1', name: 'empty code', input: { body: { code: '' } }, status: 400, code: 'VALIDATION_ERROR' },
  { row: 'S1', name: 'no body', input: { headers: JSON_TYPE }, status: 400, code: 'INVALID_JSON' },
  {
    row: 'S1',
    name: 'empty body',
    input: { body: '', headers: JSON_TYPE },
    status: 400,
    code: 'INVALID_JSON',
  },
  // No body and no content-type: middy's JSON parser refuses the media type first (lib/http.ts maps it to 415).
  { row: 'S1', name: 'no body, no content-type', input: {}, status: 415, code: 'UNSUPPORTED_MEDIA_TYPE' },
  { row: 'S2', name: 'code 123', input: { body: { code: 123 } }, status: 400, code: 'VALIDATION_ERROR' },
  { row: 'S2', name: 'code ["a"]', input: { body: { code: ['a'] } }, status: 400, code: 'VALIDATION_ERROR' },
  {
    row: 'S2',
    name: 'code {"$ne":""}',
    input: { body: { code: { $ne: '' } } },
    status: 400,
    code: 'VALIDATION_ERROR',
  },
  { row: 'S2', name: 'code null', input: { body: { code: null } }, status: 400, code: 'VALIDATION_ERROR' },
  { row: 'S2', name: 'a JSON array', input: { body: '["abc"]' }, status: 400, code: 'VALIDATION_ERROR' },
  { row: 'S2', name: 'a JSON string', input: { body: '"abc"' }, status: 400, code: 'VALIDATION_ERROR' },
  { row: 'S2', name: 'JSON null', input: { body: 'null' }, status: 400, code: 'VALIDATION_ERROR' },
  {
    row: 'S3',
    name: '129-char code',
    input: { body: { code: 'a'.repeat(129) } },
    status: 400,
    code: 'VALIDATION_ERROR',
  },
  {
    row: 'S3',
    name: 'parameter injection',
    input: { body: { code: 'abc&appid=evil' } },
    status: 400,
    code: 'VALIDATION_ERROR',
  },
  {
    row: 'S3',
    name: 'secret injection',
    input: { body: { code: 'abc&secret=x' } },
    status: 400,
    code: 'VALIDATION_ERROR',
  },
  { row: 'S3', name: '%0d%0a', input: { body: { code: '%0d%0a' } }, status: 400, code: 'VALIDATION_ERROR' },
  {
    row: 'S3',
    name: 'CRLF',
    input: { body: { code: 'abc\r\nX: y' } },
    status: 400,
    code: 'VALIDATION_ERROR',
  },
  { row: 'S3', name: 'spaces', input: { body: { code: 'abc def' } }, status: 400, code: 'VALIDATION_ERROR' },
  {
    row: 'S3',
    name: 'non-ASCII',
    input: { body: { code: '登录码' } },
    status: 400,
    code: 'VALIDATION_ERROR',
  },
  {
    row: 'S10',
    name: 'body over 1 KB',
    input: { body: { code: 'a'.repeat(1100) } },
    status: 413,
    code: 'PAYLOAD_TOO_LARGE',
  },
  {
    row: 'S10',
    name: 'non-JSON body over 1 KB',
    input: { body: 'x'.repeat(2000), headers: JSON_TYPE },
    status: 413,
    code: 'PAYLOAD_TOO_LARGE',
  },
  {
    row: 'S10',
    name: 'base64 body over 1 KB',
    input: {
      body: Buffer.from(JSON.stringify({ code: 'a'.repeat(1100) })).toString('base64'),
      headers: JSON_TYPE,
      isBase64Encoded: true,
    },
    status: 413,
    code: 'PAYLOAD_TOO_LARGE',
  },
  {
    row: 'S10',
    name: 'non-JSON body',
    input: { body: '{code: abc', headers: JSON_TYPE },
    status: 400,
    code: 'INVALID_JSON',
  },
  // Wrong content-type: middy's JSON parser refuses it; lib/http.ts answers 415 (the matrix says 400/413).
  {
    row: 'S10',
    name: 'text/plain content-type',
    input: { body: '{"code":"abc"}', headers: { 'content-type': 'text/plain' } },
    status: 415,
    code: 'UNSUPPORTED_MEDIA_TYPE',
  },
  {
    row: 'S10',
    name: 'form content-type',
    input: { body: 'code=abc', headers: { 'content-type': 'application/x-www-form-urlencoded' } },
    status: 415,
    code: 'UNSUPPORTED_MEDIA_TYPE',
  },
];

describe('§2.1 bad sign-in input', () => {
  it.each(BAD_INPUTS)('$row $name → $status $code, no WeChat call, no DynamoDB call', async (bad) => {
    // Prepare
    const callsBefore = (await sandboxCalls()).length;
    counter = countDynamoCalls();
    // Act
    const result = await signIn(bad.input);
    // Assess
    expect(result).toMatchObject({ status: bad.status, success: false, code: bad.code });
    expect(result.message).toEqual(expect.any(String));
    expect(result.data).toBeUndefined();
    expect(counter.calls()).toEqual([]);
    expect((await sandboxCalls()).length).toBe(callsBefore);
  });
});
