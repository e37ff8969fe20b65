/**
 * G4 sign-in race: 50 new openids × 20 concurrent sign-ins; one user item and one `sub` per openid.
 */
import type { APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { sandboxCode, signInThroughHandler, useFreshTables } from '#load/app';
import { type Ctx, count, latencyFields, newResult, type Result } from '#load/harness';
import { runPool, seededRandom, shuffle } from '#load/util';

function tokenSubject(token: string): string | undefined {
  try {
    const payload = JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString('utf8')) as {
      sub?: unknown;
    };
    return typeof payload.sub === 'string' ? payload.sub : undefined;
  } catch {
    return undefined;
  }
}

export async function g4(ctx: Ctx): Promise<Result> {
  const result = newResult('G4');
  const random = seededRandom(ctx.seed * 101 + 5);
  const openidCount = count(ctx, 50);
  const perOpenid = 20;
  const tables = await useFreshTables(ctx.app, ctx.endpoint, 'g4');
  const openids = Array.from(
    { length: openidCount },
    (_, i) => `oLoadG4s${ctx.seed}r${String(i).padStart(4, '0')}`,
  );
  const attempts: { openid: string; code: string }[] = [];
  for (const openid of openids) for (let i = 0; i < perOpenid; i++) attempts.push({ openid, code: '' });
  await runPool(attempts, 32, async (attempt) => {
    attempt.code = await sandboxCode(ctx.sandboxUrl, attempt.openid);
  });
  shuffle(attempts, random);
  const replies: { openid: string; status: number; sub?: string; userId?: string; token?: string }[] = [];
  ctx.counter.reset();
  const started = performance.now();
  // Everything at once: 1 000 first sign-ins racing on 50 new user items.
  const latencies = await runPool(attempts, attempts.length, async ({ openid, code }) => {
    const reply = await signInThroughHandler(ctx.app, ctx.sandboxUrl, openid, code);
    replies.push({
      openid,
      status: reply.status,
      sub: reply.signedIn ? tokenSubject(reply.signedIn.token) : undefined,
      userId: reply.signedIn?.userId,
      token: reply.signedIn?.token,
    });
  });
  const wallMs = performance.now() - started;
  const puts = ctx.counter.get('Put');

  const statuses = new Map<number, number>();
  for (const reply of replies) statuses.set(reply.status, (statuses.get(reply.status) ?? 0) + 1);
  const failed = replies.filter((reply) => reply.status !== 200);
  if (failed.length > 0) {
    result.failures.push(
      `${failed.length} sign-ins failed: ${[...statuses].map(([s, n]) => `${s}×${n}`).join(', ')}`,
    );
  }
  const tokensFor = new Map<string, typeof replies>();
  for (const reply of replies) tokensFor.set(reply.openid, [...(tokensFor.get(reply.openid) ?? []), reply]);
  let mismatched = 0;
  for (const openid of openids) {
    const expected = await ctx.app.userIdOf(openid);
    const subs = new Set((tokensFor.get(openid) ?? []).filter((r) => r.status === 200).map((r) => r.sub));
    const ids = new Set((tokensFor.get(openid) ?? []).filter((r) => r.status === 200).map((r) => r.userId));
    if (subs.size !== 1 || !subs.has(expected) || ids.size !== 1 || !ids.has(expected)) {
      mismatched++;
      if (mismatched <= 5)
        result.failures.push(`openid ${openid}: subs ${[...subs].join('|')}, ids ${[...ids].join('|')}`);
    }
  }
  // The user items (each openid also has its link item, `openid#…`).
  const items = (await ctx.ledger.scan(tables.users)).filter(
    (item) => !String(item.id).startsWith('openid#'),
  );
  if (items.length !== openidCount)
    result.failures.push(`${items.length} user items, expected ${openidCount}`);
  const itemOpenids = new Set(items.map((item) => String(item.openid)));
  if (itemOpenids.size !== items.length || openids.some((openid) => !itemOpenids.has(openid))) {
    result.failures.push('user items do not map one-to-one onto the openids');
  }
  // Each token works: /wechat/me resolves it to the same user.
  let meOk = 0;
  for (const openid of openids) {
    const token = tokensFor.get(openid)?.find((r) => r.token)?.token;
    if (!token) continue;
    const me = (await ctx.app.handlers.me(
      ctx.app.httpEvent({ path: '/wechat/me', token }),
      ctx.app.context,
    )) as APIGatewayProxyStructuredResultV2;
    const id = (JSON.parse(me.body ?? '{}') as { data?: { user?: { id?: string } } }).data?.user?.id;
    if (me.statusCode === 200 && id === (await ctx.app.userIdOf(openid))) meOk++;
  }
  if (meOk !== openidCount) result.failures.push(`/wechat/me resolved ${meOk} of ${openidCount} tokens`);
  latencyFields(result, wallMs, latencies, [
    ['users', String(items.length)],
    ['puts', String(puts)],
    ['mismatchedSubs', String(mismatched)],
  ]);
  result.notes.push(
    `${openidCount} new openids × ${perOpenid} sign-ins all at once (code2Session on the sandbox, the openid link read, one transaction for the first)`,
  );
  return result;
}
