/**
 * The H5 demo page (`GET /h5/demo.html`): an official-account page inside WeChat that signs in with web OAuth
 * (GET /wechat/oauth/authorize on the local API itself, so its binding cookie and 302s are the browser's own),
 * reads the session token from the URL fragment, configures the JS-SDK (GET /wechat/jssdk/config) and pays
 * under the official account (POST /wechat/pay; WeixinJSBridge's getBrandWCPayRequest → POST /sandbox/cashier).
 * The WeChat user is the simulator's (same unionid, kept in this origin's localStorage), so both pages show one
 * account; snsapi_base gives no unionid, as WeChat's does not.
 */
(() => {
  const { $, html, time, person, toast, run, showMember, showOrder } = window.SimulatorKit;
  const API = document.querySelector('meta[name="api-base"]').content;
  const PAGE = `${location.origin}${location.pathname}`;
  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

  async function call(method, path, body, token) {
    const headers = {};
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (token) headers.authorization = `Bearer ${token}`;
    const response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const data = await response.json();
    if (response.status >= 400 || data.success === false) {
      throw new Error(data.message || `HTTP ${response.status}`);
    }
    return data.data ?? data;
  }

  function showUser(user) {
    showMember(user, 'membership');
    const simulatorUser = localStorage.getItem('sim:userId');
    $('same-user').textContent = !simulatorUser
      ? `用户 ${user.id}`
      : simulatorUser === user.id
        ? `用户 ${user.id} · 与小程序是同一账号（unionid 关联）`
        : `用户 ${user.id} · 与小程序的 ${simulatorUser} 不是同一账号（未拿到 unionid）`;
    $('pay').disabled = false;
  }

  // Web OAuth: the sandbox consents as the simulator's WeChat user, then the browser goes to the API itself.
  for (const button of document.querySelectorAll('button[data-scope]')) {
    button.addEventListener('click', () =>
      run(async () => {
        await call('POST', '/sandbox/oauth/identity', {
          openid: person('sim:mpOpenid', 'oSimMp'),
          unionid: person('sim:unionid', 'uSim'),
          nickname: 'H5 用户',
        });
        const query = `redirect=${encodeURIComponent(PAGE)}&scope=${button.dataset.scope}`;
        location.assign(`${API}/wechat/oauth/authorize?${query}`);
      }),
    );
  }

  // getBrandWCPayRequest, played by the sandbox cashier; then the order as the backend sees it.
  $('pay').addEventListener('click', () =>
    run(async () => {
      $('pay').disabled = true;
      try {
        const token = sessionStorage.getItem('h5:token');
        const { order, payParams } = await call('POST', '/wechat/pay', { planId: 'monthly' }, token);
        showOrder(order, 'h5-order-status');
        await call('POST', '/sandbox/cashier', { ...payParams, action: 'pay' });
        let viewed = order;
        for (let i = 0; i < 40 && viewed.status !== 'PAID'; i++) {
          await sleep(500);
          viewed = (await call('GET', `/wechat/orders/${order.outTradeNo}`, undefined, token)).order;
        }
        showOrder(viewed, 'h5-order-status');
        showUser((await call('GET', '/wechat/me', undefined, token)).user);
        toast(viewed.status === 'PAID' ? '支付成功，会员已开通' : '支付结果待确认');
      } finally {
        $('pay').disabled = false;
      }
    }),
  );

  async function loadJssdk() {
    const url = encodeURIComponent(location.href.split('#')[0]);
    try {
      const config = await call('GET', `/wechat/jssdk/config?url=${url}`);
      $('jssdk').innerHTML = `<div class="kv">
        <div><span>appId</span><span>${html(config.appId)}</span></div>
        <div><span>timestamp</span><span>${html(config.timestamp)}</span></div>
        <div><span>nonceStr</span><span>${html(config.nonceStr)}</span></div>
        <div><span>signature</span><span data-testid="h5-signature">${html(config.signature)}</span></div>
      </div>`;
    } catch (error) {
      $('jssdk').innerHTML = `<div class="empty">${html(error.message)}</div>`;
    }
  }

  // What the backend asked WeChat (the sandbox's record), newest first.
  let shownCalls = -1;
  async function refreshCalls() {
    const { calls } = await (await fetch('/sandbox/calls')).json();
    if (calls.length === shownCalls) return;
    shownCalls = calls.length;
    $('calls').innerHTML = calls.length
      ? calls
          .slice(-30)
          .reverse()
          .map(
            (c) =>
              `<tr><td>${time(c.at)}</td><td>${html(c.method)}</td><td class="mono">${html(c.path)}</td></tr>`,
          )
          .join('')
      : '<tr><td colspan="3" class="empty">还没有调用</td></tr>';
  }
  function poll() {
    refreshCalls()
      .catch(() => undefined)
      .finally(() => setTimeout(poll, 1000));
  }

  // ---- start: the callback's fragment (#token=… or #error=access_denied), read once and cleared ----------
  const fragment = new URLSearchParams(location.hash.slice(1));
  if (location.hash) history.replaceState(null, '', PAGE + location.search);
  if (fragment.get('token')) sessionStorage.setItem('h5:token', fragment.get('token'));
  if (fragment.get('error')) toast('用户拒绝了授权');
  loadJssdk();
  poll();
  const token = sessionStorage.getItem('h5:token');
  if (token) run(async () => showUser((await call('GET', '/wechat/me', undefined, token)).user));
})();
