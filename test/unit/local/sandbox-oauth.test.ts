import { describe, expect, it } from 'vitest';
import { OAuthState, registerOAuth } from '#local/sandbox/oauth';
import { Sandbox, type SandboxRequest } from '#local/sandbox/server';

const SETTINGS = { appId: 'wx0f0ca1ac0ffee0d2', secret: 'sandbox0mpsecret00000000000000000' };
const CALLBACK = 'https://api.example.com/wechat/oauth/callback?redirect=https%3A%2F%2Fh5.example.com%2F';

function sandbox(): Sandbox {
  const box = new Sandbox();
  registerOAuth(box, new OAuthState(), SETTINGS);
  return box;
}

function request(method: string, path: string, body?: unknown): SandboxRequest {
  return {
    method,
    url: new URL(path, 'http://sandbox'),
    headers: {},
    body: body === undefined ? '' : JSON.stringify(body),
  };
}

async function call(box: Sandbox, method: string, path: string, body?: unknown, cookie?: string) {
  const sent = request(method, path, body);
  if (cookie) sent.headers.cookie = cookie;
  const reply = await box.handle(sent);
  if (!reply) throw new Error('no reply');
  return {
    ...reply,
    body: typeof reply.body === 'string' ? reply.body : Buffer.from(reply.body).toString('utf8'),
  };
}

const authorizePath = (scope = 'snsapi_userinfo', appid = SETTINGS.appId) =>
  `/connect/oauth2/authorize?appid=${appid}&redirect_uri=${encodeURIComponent(CALLBACK)}&response_type=code&scope=${scope}&state=b123`;

/** The openid an authorize answer's code is for (exchanged once). */
async function openidOf(box: Sandbox, back: { headers?: Record<string, string> }): Promise<string> {
  const code = new URL(back.headers?.location as string).searchParams.get('code') as string;
  const exchange = `/sns/oauth2/access_token?appid=${SETTINGS.appId}&secret=${SETTINGS.secret}&code=${code}&grant_type=authorization_code`;
  return JSON.parse((await call(box, 'GET', exchange)).body).openid;
}

describe('sandbox web OAuth', () => {
  it("keeps each browser's WeChat user between authorizes (its own cookie), as the WeChat client does; other browsers get others", async () => {
    // Prepare: this browser consents once as a chosen user
    const box = sandbox();
    await call(box, 'POST', '/sandbox/oauth/identity', { openid: 'oMpSandbox0007', unionid: 'oUnion07' });
    const first = await call(box, 'GET', authorizePath('snsapi_base'));
    const cookie = String(first.headers?.['set-cookie']).split(';')[0] as string;

    // Act: the same browser again (no identity set), and a browser without the cookie
    const again = await call(box, 'GET', authorizePath('snsapi_userinfo'), undefined, cookie);
    const stranger = await call(box, 'GET', authorizePath('snsapi_userinfo'));

    // Assess
    expect(first.headers?.['set-cookie']).toMatch(
      /^sandbox_wechat_user=oMpSandbox0007; Path=\/connect\/oauth2; HttpOnly/,
    );
    expect(await openidOf(box, first)).toBe('oMpSandbox0007');
    expect(await openidOf(box, again)).toBe('oMpSandbox0007');
    expect(await openidOf(box, stranger)).not.toBe('oMpSandbox0007');
  });

  it('302s back to redirect_uri with code and state; the code is single-use (40163) and unknown codes 40029', async () => {
    // Prepare
    const box = sandbox();
    await call(box, 'POST', '/sandbox/oauth/identity', {
      openid: 'oMpSandbox0001',
      unionid: 'oUnionSandbox01',
      nickname: '甲',
    });

    // Act
    const back = await call(box, 'GET', authorizePath());
    const location = new URL(back.headers?.location as string);
    const code = location.searchParams.get('code') as string;
    const exchange = `/sns/oauth2/access_token?appid=${SETTINGS.appId}&secret=${SETTINGS.secret}&code=${code}&grant_type=authorization_code`;
    const first = JSON.parse((await call(box, 'GET', exchange)).body);
    const second = JSON.parse((await call(box, 'GET', exchange)).body);
    const unknown = JSON.parse((await call(box, 'GET', exchange.replace(code, 'oc00'))).body);
    const info = JSON.parse(
      (
        await call(
          box,
          'GET',
          `/sns/userinfo?access_token=${first.access_token}&openid=oMpSandbox0001&lang=zh_CN`,
        )
      ).body,
    );

    // Assess
    expect(back.status).toBe(302);
    expect(`${location.origin}${location.pathname}`).toBe('https://api.example.com/wechat/oauth/callback');
    expect(location.searchParams.get('redirect')).toBe('https://h5.example.com/');
    expect(location.searchParams.get('state')).toBe('b123');
    expect(first).toMatchObject({
      openid: 'oMpSandbox0001',
      unionid: 'oUnionSandbox01',
      scope: 'snsapi_userinfo',
      expires_in: 7200,
    });
    expect(second.errcode).toBe(40163);
    expect(unknown.errcode).toBe(40029);
    expect(info).toMatchObject({ openid: 'oMpSandbox0001', unionid: 'oUnionSandbox01', nickname: '甲' });
    expect(box.calls.map((c) => c.path)).toEqual([
      '/connect/oauth2/authorize',
      '/sns/oauth2/access_token',
      '/sns/oauth2/access_token',
      '/sns/oauth2/access_token',
      '/sns/userinfo',
    ]);
  });

  it('sends only the state back when the user refuses', async () => {
    // Prepare
    const box = sandbox();
    await call(box, 'POST', '/sandbox/oauth/identity', { deny: true });

    // Act
    const back = await call(box, 'GET', authorizePath());

    // Assess
    const location = new URL(back.headers?.location as string);
    expect(location.searchParams.has('code')).toBe(false);
    expect(location.searchParams.get('state')).toBe('b123');
  });

  it('gives a snsapi_base grant no unionid and refuses its userinfo with 48001; checks appid and secret', async () => {
    // Prepare
    const box = sandbox();
    await call(box, 'POST', '/sandbox/oauth/identity', {
      openid: 'oMpSandbox0002',
      unionid: 'oUnionSandbox02',
    });
    const code = new URL(
      (await call(box, 'GET', authorizePath('snsapi_base'))).headers?.location as string,
    ).searchParams.get('code');

    // Act
    const badSecret = JSON.parse(
      (
        await call(
          box,
          'GET',
          `/sns/oauth2/access_token?appid=${SETTINGS.appId}&secret=nope&code=${code}&grant_type=authorization_code`,
        )
      ).body,
    );
    const grant = JSON.parse(
      (
        await call(
          box,
          'GET',
          `/sns/oauth2/access_token?appid=${SETTINGS.appId}&secret=${SETTINGS.secret}&code=${code}&grant_type=authorization_code`,
        )
      ).body,
    );
    const info = JSON.parse(
      (await call(box, 'GET', `/sns/userinfo?access_token=${grant.access_token}&openid=oMpSandbox0002`)).body,
    );
    const wrongApp = await call(box, 'GET', authorizePath('snsapi_base', 'wx0000000000000000'));

    // Assess
    expect(badSecret.errcode).toBe(40125);
    expect(grant).not.toHaveProperty('unionid');
    expect(grant.scope).toBe('snsapi_base');
    expect(info.errcode).toBe(48001);
    expect(wrongApp.status).toBe(400);
  });
});
