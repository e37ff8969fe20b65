import { jssdkSignature } from '#lib/wechat/jssdk';
import { localEnv } from './env';

/**
 * `npm run demo`: plays the mini-program, then an H5 page in WeChat (web OAuth sign-in, H5 pay), against a running
 * local stack (`npm start`), one line per step, using only our HTTP API and the sandbox control API, so it works
 * for either WECHAT_PAY_VERSION. Exits 1 at the first wrong answer. API http://127.0.0.1:$PORT, sandbox http://127.0.0.1:$SANDBOX_PORT (.env.example < .env < env).
 */
const env = localEnv();
const API = `http://127.0.0.1:${env.PORT ?? '3000'}`;
const SANDBOX = `http://127.0.0.1:${env.SANDBOX_PORT ?? '3100'}`;
const REQUEST_TIMEOUT_MS = 15_000;
const PAID_WITHIN_MS = 15_000;

interface Answer {
  status: number;
  body: Record<string, unknown>;
  text: string;
}

/** Our envelope (DESIGN.md): `data` on success, `code` + `message` on failure. */
interface Envelope<T> {
  success?: boolean;
  message?: string;
  code?: string;
  data?: T;
}

interface User {
  id: string;
  nickname: string;
  role: number;
  membershipExpiredAt: string | null;
  phoneNumber?: string;
  countryCode?: string;
}

interface Order {
  outTradeNo: string;
  totalFee: number;
  status: string;
  paidAt: string | null;
  transactionId: string | null;
}

interface Plan {
  id: string;
  totalFee: number;
}

interface PayParams {
  appId?: string;
  timeStamp: string;
  nonceStr: string;
  package: string;
  signType: string;
  paySign: string;
}

class DemoFailure extends Error {}

function fail(message: string): never {
  throw new DemoFailure(message);
}

function check(condition: unknown, message: string): asserts condition {
  if (!condition) fail(message);
}

function step(name: string, detail: string): void {
  console.log(`✔ ${name} — ${detail}`);
}

async function request(
  base: string,
  method: string,
  path: string,
  body?: unknown,
  token?: string,
): Promise<Answer> {
  let response: Response;
  try {
    response = await fetch(`${base}${path}`, {
      method,
      headers: {
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        ...(token ? { authorization: `Bearer ${token}` } : {}),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    });
  } catch (error) {
    const cause = (error as { cause?: { code?: string } }).cause?.code ?? (error as Error).name;
    fail(`${method} ${base}${path} did not answer (${cause}); is the stack running (npm start)?`);
  }
  const text = await response.text();
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = undefined;
  }
  return {
    status: response.status,
    body: typeof parsed === 'object' && parsed !== null ? (parsed as Record<string, unknown>) : {},
    text,
  };
}

/** Our API: expects `status` (200 by default) and the envelope's `success` to match it. */
async function api<T>(
  method: string,
  path: string,
  options: { body?: unknown; token?: string; status?: number } = {},
): Promise<Envelope<T>> {
  const expected = options.status ?? 200;
  const answer = await request(API, method, path, options.body, options.token);
  if (answer.status !== expected) {
    fail(`${method} ${path} answered ${answer.status}, expected ${expected}: ${answer.text.slice(0, 300)}`);
  }
  check(
    answer.body.success === expected < 400,
    `${method} ${path}: envelope success is not ${expected < 400}: ${answer.text.slice(0, 300)}`,
  );
  return answer.body as Envelope<T>;
}

/** The sandbox control API: expects 200, returns the JSON body. */
async function sandbox(method: string, path: string, body?: unknown): Promise<Record<string, unknown>> {
  const answer = await request(SANDBOX, method, path, body);
  if (answer.status !== 200) {
    fail(`sandbox ${method} ${path} answered ${answer.status}: ${answer.text.slice(0, 300)}`);
  }
  return answer.body;
}

async function main(): Promise<void> {
  console.log(`demo: API ${API}, sandbox ${SANDBOX}`);

  // The same person on both sides: the mini-program and the official account are bound to one Open Platform account.
  const unionid = `oDemoUnion${Math.floor(Math.random() * 1e9)}`;
  const login = await sandbox('POST', '/sandbox/login', { unionid });
  check(typeof login.code === 'string' && login.code !== '', 'sandbox login gave no code');
  step('wx.login (sandbox)', `code ${login.code.slice(0, 8)}…, openid ${String(login.openid)}`);

  const signedIn = (
    await api<{ token: string; user: User }>('POST', '/wechat/sign_in', { body: { code: login.code } })
  ).data;
  check(typeof signedIn?.token === 'string' && signedIn.token.length > 20, 'sign_in returned no token');
  check(typeof signedIn.user?.id === 'string', 'sign_in returned no user.id');
  const { token } = signedIn;
  const userId = signedIn.user.id;
  step('POST /wechat/sign_in', `user ${userId}, token ${token.slice(0, 12)}…`);

  const me = (await api<{ user: User }>('GET', '/wechat/me', { token })).data?.user;
  check(me?.id === userId, `GET /wechat/me returned user ${me?.id}, expected ${userId}`);
  step('GET /wechat/me', `role ${me.role}, membershipExpiredAt ${me.membershipExpiredAt}`);

  const nickname = `演示用户${Math.floor(Math.random() * 10_000)}`;
  const updated = (await api<{ user: User }>('PUT', '/wechat/info', { body: { nickname }, token })).data
    ?.user;
  check(
    updated?.nickname === nickname,
    `PUT /wechat/info returned nickname ${updated?.nickname}, expected ${nickname}`,
  );
  const reread = (await api<{ user: User }>('GET', '/wechat/me', { token })).data?.user;
  check(reread?.nickname === nickname, `GET /wechat/me after the update shows nickname ${reread?.nickname}`);
  step('PUT /wechat/info', `nickname "${nickname}" saved and read back`);

  const phoneCode = await sandbox('POST', '/sandbox/phone-code', { openid: login.openid });
  check(typeof phoneCode.code === 'string', 'sandbox phone-code gave no code');
  const withPhone = (
    await api<{ user: User }>('POST', '/wechat/phone', { body: { code: phoneCode.code }, token })
  ).data?.user;
  check(/^\d{11}$/.test(withPhone?.phoneNumber ?? ''), 'POST /wechat/phone returned no phoneNumber');
  const phone = withPhone?.phoneNumber ?? '';
  step('POST /wechat/phone', `bound +${withPhone?.countryCode} ${phone.slice(0, 3)}****${phone.slice(-4)}`);

  const h5Origin = (env.H5_ORIGINS ?? '').split(',')[0]?.trim();
  if (env.WECHAT_MP_APPID && h5Origin) {
    const page = `${h5Origin}/h5/demo.html?from=demo`;
    const config = (
      await api<{ appId: string; timestamp: number; nonceStr: string; signature: string }>(
        'GET',
        `/wechat/jssdk/config?url=${encodeURIComponent(`${page}#/home`)}`,
      )
    ).data;
    const { ticket } = await sandbox('GET', '/sandbox/jsapi-ticket');
    const expected = config
      ? jssdkSignature({
          jsapiTicket: String(ticket),
          nonceStr: config.nonceStr,
          timestamp: config.timestamp,
          url: page,
        })
      : undefined;
    check(
      config?.signature === expected?.signature,
      'GET /wechat/jssdk/config: the signature does not verify',
    );
    step('GET /wechat/jssdk/config', `wx.config for ${page}: appId ${config?.appId}, signature verified`);
  }

  const plans = (await api<{ plans: Plan[] }>('GET', '/wechat/plans')).data?.plans;
  check(Array.isArray(plans) && plans.length > 0, 'GET /wechat/plans returned no plans');
  const plan = plans[0];
  check(
    plan && Number.isSafeInteger(plan.totalFee) && plan.totalFee > 0,
    'the first plan has no integer totalFee',
  );
  step('GET /wechat/plans', plans.map((p) => `${p.id} ${p.totalFee} fen`).join(', '));

  const created = (
    await api<{ order: Order; payParams: PayParams }>('POST', '/wechat/pay', {
      body: { planId: plan.id },
      token,
    })
  ).data;
  const order = created?.order;
  const payParams = created?.payParams;
  check(order && typeof order.outTradeNo === 'string', 'POST /wechat/pay returned no order.outTradeNo');
  check(order.totalFee === plan.totalFee, `order totalFee ${order.totalFee} ≠ plan ${plan.totalFee}`);
  check(order.status === 'PENDING', `new order is ${order.status}, expected PENDING`);
  check(payParams, 'POST /wechat/pay returned no payParams');
  check(
    /^\d{1,10}$/.test(payParams.timeStamp ?? ''),
    `payParams.timeStamp ${payParams.timeStamp} is not unix seconds`,
  );
  check(typeof payParams.nonceStr === 'string' && payParams.nonceStr !== '', 'payParams.nonceStr missing');
  check(
    /^prepay_id=\S+$/.test(payParams.package ?? ''),
    `payParams.package ${payParams.package} is not prepay_id=…`,
  );
  check(
    ['MD5', 'HMAC-SHA256', 'RSA'].includes(payParams.signType),
    `payParams.signType ${payParams.signType} is not MD5, HMAC-SHA256 or RSA`,
  );
  check(typeof payParams.paySign === 'string' && payParams.paySign !== '', 'payParams.paySign missing');
  const { outTradeNo } = order;
  step(
    'POST /wechat/pay',
    `order ${outTradeNo}, ${order.totalFee} fen, ${payParams.package}, ${payParams.signType}`,
  );

  const paid = await sandbox('POST', '/sandbox/pay', { outTradeNo });
  check(typeof paid.transactionId === 'string', 'sandbox /sandbox/pay returned no transactionId');
  step(
    'wx.requestPayment (sandbox pays)',
    `transaction ${paid.transactionId}, notify ${paid.delivered === true ? 'acknowledged' : `not acknowledged yet (status ${paid.status})`}`,
  );

  const deadline = Date.now() + PAID_WITHIN_MS;
  let viewed = (await api<{ order: Order }>('GET', `/wechat/orders/${outTradeNo}`, { token })).data?.order;
  while (viewed?.status !== 'PAID') {
    if (Date.now() > deadline)
      fail(`order ${outTradeNo} still ${viewed?.status} after ${PAID_WITHIN_MS / 1000} s`);
    await new Promise((resolve) => setTimeout(resolve, 500));
    viewed = (await api<{ order: Order }>('GET', `/wechat/orders/${outTradeNo}`, { token })).data?.order;
  }
  check(
    viewed.transactionId === paid.transactionId,
    `order transactionId ${viewed.transactionId} ≠ the sandbox's ${paid.transactionId}`,
  );
  step(`GET /wechat/orders/${outTradeNo}`, `PAID at ${viewed.paidAt}, transaction ${viewed.transactionId}`);

  const member = (await api<{ user: User }>('GET', '/wechat/me', { token })).data?.user;
  check(member?.role === 1, `after paying, role is ${member?.role}, expected 1`);
  const expiry = Date.parse(member.membershipExpiredAt ?? '');
  check(expiry > Date.now(), `membershipExpiredAt ${member.membershipExpiredAt} is not in the future`);
  step('GET /wechat/me', `role 1 (member) until ${member.membershipExpiredAt}`);

  const listed = (await api<{ orders: Order[] }>('GET', '/wechat/orders', { token })).data?.orders ?? [];
  const mine = listed.find((o) => o.outTradeNo === outTradeNo);
  check(mine, `GET /wechat/orders does not list ${outTradeNo}`);
  check(mine.status === 'PAID', `GET /wechat/orders lists ${outTradeNo} as ${mine.status}`);
  step('GET /wechat/orders', `${listed.length} order(s), ${outTradeNo} PAID`);

  const again = await api('POST', '/wechat/pay', { body: { outTradeNo }, token, status: 409 });
  step('POST /wechat/pay (the paid order again)', `409 ${again.code}: ${again.message}`);

  await h5(userId, unionid, plans[plans.length - 1] as Plan);
  console.log('demo passed');
}

/** One browser hop: GET `url` without following the redirect; expects a 302 and returns its Location. */
async function hop(url: string): Promise<string> {
  let response: Response;
  try {
    response = await fetch(url, { redirect: 'manual', signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
  } catch (error) {
    fail(`GET ${url} did not answer (${(error as Error).name})`);
  }
  const location = response.headers.get('location');
  if (response.status !== 302 || !location) {
    fail(`GET ${url} answered ${response.status}, expected a 302: ${(await response.text()).slice(0, 300)}`);
  }
  return location;
}

/**
 * The H5 part: an H5 page inside WeChat signs the same person in through web OAuth (snsapi_userinfo; one user
 * by unionid), then pays under the official account (WeixinJSBridge getBrandWCPayRequest, played by the
 * sandbox cashier).
 */
async function h5(userId: string, unionid: string, plan: Plan): Promise<void> {
  const origin = (env.H5_ORIGINS ?? '').split(',')[0]?.trim();
  if (!env.WECHAT_MP_APPID || !origin) {
    step('H5', 'skipped: WECHAT_MP_APPID or H5_ORIGINS is not set');
    return;
  }
  const page = `${origin}/h5/demo.html`;
  await sandbox('POST', '/sandbox/oauth/identity', { unionid, nickname: 'H5演示用户' });
  const toWechat = await hop(
    `${API}/wechat/oauth/authorize?redirect=${encodeURIComponent(page)}&scope=snsapi_userinfo`,
  );
  check(toWechat.includes('/connect/oauth2/authorize?appid='), `authorize sent the browser to ${toWechat}`);
  step('GET /wechat/oauth/authorize', `302 to WeChat web OAuth (${new URL(toWechat).origin})`);
  const toCallback = await hop(toWechat);
  check(new URL(toCallback).searchParams.has('code'), 'WeChat (sandbox) came back without a code');
  step(
    'WeChat authorize page (sandbox)',
    'the user agrees; 302 back to /wechat/oauth/callback with code and state',
  );
  const toPage = new URL(await hop(toCallback));
  check(`${toPage.origin}${toPage.pathname}` === page, `callback sent the browser to ${toPage.href}`);
  const token = toPage.hash.replace(/^#token=/, '');
  check(token.split('.').length === 3, `callback fragment ${toPage.hash.slice(0, 20)}… holds no token`);
  const me = (await api<{ user: User }>('GET', '/wechat/me', { token })).data?.user;
  check(me?.id === userId, `H5 sign-in landed on user ${me?.id}, expected the mini-program's ${userId}`);
  step(
    'GET /wechat/oauth/callback',
    `302 to the page with #token=…; same user ${userId} (linked by unionid)`,
  );

  const created = (
    await api<{ order: Order; payParams: PayParams }>('POST', '/wechat/pay', {
      body: { planId: plan.id },
      token,
    })
  ).data;
  check(
    created?.payParams.appId === env.WECHAT_MP_APPID,
    'H5 payParams do not carry the official account appId',
  );
  const { outTradeNo } = created.order;
  step(
    'POST /wechat/pay (H5)',
    `order ${outTradeNo}, appId ${created.payParams.appId}, ${created.payParams.signType}`,
  );
  const paid = await sandbox('POST', '/sandbox/cashier', { ...created.payParams, action: 'pay' });
  check(typeof paid.transactionId === 'string', 'the cashier returned no transactionId');
  step('getBrandWCPayRequest (sandbox cashier pays)', `transaction ${paid.transactionId}`);
  const deadline = Date.now() + PAID_WITHIN_MS;
  let viewed = (await api<{ order: Order }>('GET', `/wechat/orders/${outTradeNo}`, { token })).data?.order;
  while (viewed?.status !== 'PAID') {
    if (Date.now() > deadline)
      fail(`H5 order ${outTradeNo} still ${viewed?.status} after ${PAID_WITHIN_MS / 1000} s`);
    await new Promise((resolve) => setTimeout(resolve, 500));
    viewed = (await api<{ order: Order }>('GET', `/wechat/orders/${outTradeNo}`, { token })).data?.order;
  }
  step(`GET /wechat/orders/${outTradeNo} (H5)`, `PAID, transaction ${viewed.transactionId}`);
}

try {
  await main();
} catch (error) {
  const message =
    error instanceof DemoFailure ? error.message : `unexpected error: ${(error as Error).stack}`;
  console.error(`✘ ${message}`);
  process.exit(1);
}
