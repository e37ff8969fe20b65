/**
 * The simulator page: a mini-program that runs the real flow through the same client helper a mini-program
 * requires (client/index.js, loaded as /client.js), on a `wx` shim the sandbox plays — wx.request → fetch (the
 * sandbox forwards /wechat/* to the local API), wx.login → POST /sandbox/login, wx.requestPayment → the cashier
 * sheet and POST /sandbox/cashier, the getPhoneNumber button → POST /sandbox/phone-code — and, on the right, what
 * WeChat's side saw.
 */
(() => {
  const {
    $,
    STATUS_TEXT,
    html,
    yuan,
    time,
    person,
    toast,
    run,
    showOrder: showOrderCard,
  } = window.SimulatorKit;
  const VARIANT_TEXT = { genuine: '正常', forged: '伪造签名', stale: '过期时间戳', signtest: 'SIGNTEST' };

  /** GET (no body) or POST JSON to the sandbox, or through it to the local API's /wechat and /admin routes. */
  async function sandbox(path, body) {
    const response = await fetch(path, {
      method: body === undefined ? 'GET' : 'POST',
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: response.status, data: await response.json() };
  }

  // The simulated WeChat user: one openid (and one unionid, shared with the H5 page) until "换一个微信用户".
  const openid = () => person('sim:openid', 'oSim');
  const unionid = () => person('sim:unionid', 'uSim');

  // ---- the wx shim --------------------------------------------------------------------------------------
  const cashier = { resolve: null };
  /** The last order paid here: the probes on the right resend its notify. */
  let lastPaid = '';

  const wxShim = {
    request(options) {
      fetch(options.url, {
        method: options.method,
        headers: options.header,
        body: options.data === undefined ? undefined : JSON.stringify(options.data),
      })
        .then(async (response) => {
          const text = await response.text();
          let data = text;
          try {
            data = JSON.parse(text);
          } catch (_) {
            // not JSON: handed over as text, as wx.request does
          }
          options.success({ statusCode: response.status, data, header: {} });
        })
        .catch((error) => options.fail({ errMsg: `request:fail ${error.message}` }));
    },
    login(options) {
      sandbox('/sandbox/login', { openid: openid(), unionid: unionid() }).then(
        ({ data }) => options.success({ code: data.code, errMsg: 'login:ok' }),
        () => options.fail({ errMsg: 'login:fail' }),
      );
    },
    requestPayment(options) {
      const params = {
        timeStamp: options.timeStamp,
        nonceStr: options.nonceStr,
        package: options.package,
        signType: options.signType,
        paySign: options.paySign,
      };
      openCashier(params).then(options.success, options.fail);
    },
    /** Plays the user tapping `<button open-type="getPhoneNumber">` and allowing: the code in event.detail. */
    getPhoneNumberCode: () =>
      sandbox('/sandbox/phone-code', { openid: openid() }).then(({ data }) => data.code),
    getStorageSync: (key) => JSON.parse(localStorage.getItem(`wx:${key}`) || '""'),
    setStorageSync: (key, value) => localStorage.setItem(`wx:${key}`, JSON.stringify(value)),
    removeStorageSync: (key) => localStorage.removeItem(`wx:${key}`),
  };

  /** WeChat's cashier: checks the five fields with the sandbox, shows the sheet, acts on the user's choice. */
  async function openCashier(params) {
    const opened = await sandbox('/sandbox/cashier', Object.assign({ action: 'open' }, params));
    if (opened.status !== 200) throw { errMsg: opened.data.errMsg || 'requestPayment:fail' };
    const order = opened.data;
    $('cashier-desc').textContent = order.description;
    $('cashier-amount').textContent = yuan(order.totalFee);
    $('cashier-sign').textContent = `${params.signType} · API ${order.version}`;
    showOrder({
      outTradeNo: order.outTradeNo,
      description: order.description,
      totalFee: order.totalFee,
      status: 'PENDING',
    });
    $('cashier').hidden = false;
    const action = await new Promise((resolve) => {
      cashier.resolve = resolve;
    });
    $('cashier').hidden = true;
    const result = await sandbox('/sandbox/cashier', Object.assign({ action }, params));
    if (action === 'cancel') throw { errMsg: 'requestPayment:fail cancel' };
    if (result.status !== 200) throw { errMsg: 'requestPayment:fail' };
    return { errMsg: 'requestPayment:ok' };
  }

  for (const button of document.querySelectorAll('#cashier [data-action]')) {
    button.addEventListener('click', () => cashier.resolve?.(button.dataset.action));
  }

  const api = window.MiniProgramClient.createClient({
    baseUrl: location.origin,
    wx: wxShim,
    pollIntervalMs: 400,
    pollTimeoutMs: 15000,
  });

  // ---- the mini-program ---------------------------------------------------------------------------------
  function showUser(user) {
    // The H5 page (same origin) compares its user with this one.
    localStorage.setItem('sim:userId', user.id);
    window.SimulatorKit.showMember(user, 'membership');
    $('sign-in').textContent = '重新登录';
    showPhone(user);
    const form = $('profile-form');
    for (const name of ['nickname', 'company', 'introduce']) form.elements[name].value = user[name];
  }

  /** The bound number as the mini-program shows it to its own user: country code, middle four digits hidden. */
  function showPhone(user) {
    const number = user.phoneNumber || '';
    const shown = number.length >= 7 ? `${number.slice(0, 3)}****${number.slice(-4)}` : number;
    $('phone-number').textContent = number ? `+${user.countryCode} ${shown}` : '未绑定手机号';
    $('bind-phone').textContent = number ? '更换手机号' : '绑定手机号';
    $('bind-phone').disabled = false;
  }

  const showOrder = (order) => showOrderCard(order, 'order-status');

  async function loadPlans() {
    try {
      const plans = await api.plans();
      $('plans').innerHTML = plans
        .map(
          (plan) => `
          <div class="plan">
            <div><div class="plan-name">${html(plan.name)}</div><div class="plan-meta">${plan.days} 天会员</div></div>
            <div class="plan-buy"><span class="price">${yuan(plan.totalFee)}</span>
              <button class="primary" data-plan="${html(plan.id)}" data-testid="plan-${html(plan.id)}">开通</button></div>
          </div>`,
        )
        .join('');
      $('stack-state').textContent = 'API 已连接';
      $('stack-state').className = 'pill ok';
    } catch (error) {
      $('plans').innerHTML = `<div class="empty">${html(error.message)}</div>`;
      $('stack-state').textContent = 'API 未连接';
      $('stack-state').className = 'pill bad';
    }
  }

  async function loadOrders() {
    if (!api.token()) return;
    const { orders } = await api.orders({ limit: 5 });
    $('orders').innerHTML = orders.length
      ? orders
          .map(
            (order) => `<div class="row"><span>${html(order.description)} · ${yuan(order.totalFee)}</span>
              <span class="status ${order.status}">${STATUS_TEXT[order.status] || order.status}</span></div>`,
          )
          .join('')
      : '<div class="empty">还没有订单</div>';
  }

  $('sign-in').addEventListener('click', () =>
    run(async () => {
      const { user } = await api.signIn();
      showUser(user);
      toast('登录成功');
      await loadOrders();
    }),
  );

  $('bind-phone').addEventListener('click', () =>
    run(async () => {
      $('bind-phone').disabled = true;
      try {
        const code = await wxShim.getPhoneNumberCode();
        showUser(await api.bindPhone(code));
        toast('手机号已绑定');
      } finally {
        $('bind-phone').disabled = false;
      }
    }),
  );

  $('plans').addEventListener('click', (event) => {
    const button = event.target.closest('button[data-plan]');
    if (!button) return;
    run(async () => {
      for (const b of document.querySelectorAll('button[data-plan]')) b.disabled = true;
      try {
        const order = await api.pay(button.dataset.plan);
        showOrder(order);
        lastPaid = order.outTradeNo;
        updateProbes();
        toast('支付成功，会员已开通');
        showUser(await api.me());
      } catch (error) {
        if (error.order) showOrder(error.order);
        throw error;
      } finally {
        for (const b of document.querySelectorAll('button[data-plan]')) b.disabled = false;
        await loadOrders();
      }
    });
  });

  $('profile-form').addEventListener('submit', (event) => {
    event.preventDefault();
    const form = event.target;
    run(async () => {
      $('profile-errors').textContent = '';
      try {
        const fields = {};
        for (const name of ['nickname', 'company', 'introduce']) fields[name] = form.elements[name].value;
        showUser(await api.updateInfo(fields));
        toast('资料已保存');
      } catch (error) {
        if (error.errors) {
          $('profile-errors').textContent =
            `${error.message}（${error.errors.map((e) => `${e.field}: ${e.code}`).join('，')}）`;
        }
        throw error;
      }
    });
  });

  $('switch-user').addEventListener('click', async () => {
    for (const name of ['sim:openid', 'sim:unionid', 'sim:mpOpenid', 'sim:userId'])
      localStorage.removeItem(name);
    await api.signOut().catch(() => undefined);
    location.reload();
  });

  // ---- WeChat's side ------------------------------------------------------------------------------------

  function updateProbes() {
    for (const button of document.querySelectorAll('.probes button[data-variant]'))
      button.disabled = !lastPaid;
    $('probe-target').textContent = lastPaid ? `发往订单 ${lastPaid}` : '支付一笔订单后可发送测试通知';
    $('refund').disabled = !lastPaid;
    $('refund-target').textContent = lastPaid ? `退款订单 ${lastPaid}` : '支付一笔订单后可退款';
  }

  document.querySelector('.probes').addEventListener('click', (event) => {
    const button = event.target.closest('button[data-variant]');
    if (!button || !lastPaid) return;
    run(async () => {
      const { status, data } = await sandbox('/sandbox/pay/notify-again', {
        outTradeNo: lastPaid,
        variant: button.dataset.variant,
      });
      $('probe-note').textContent =
        status === 200
          ? `${VARIANT_TEXT[button.dataset.variant]}：后端${data.delivered ? '已确认' : '已拒绝'}（HTTP ${data.status}）`
          : `${VARIANT_TEXT[button.dataset.variant]}：${data.error}`;
      await refreshWeChatSide();
    });
  });

  $('reconcile').addEventListener('click', () =>
    run(async () => {
      const response = await fetch('/admin/reconcile', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ all: true }),
      });
      const body = await response.json();
      if (!body.success) throw new Error(body.message);
      const r = body.data;
      $('reconcile-result').textContent =
        `查询 ${r.checked} 笔：补记 ${r.credited}，关闭 ${r.closed}，仍待支付 ${r.stillPending}，异常 ${r.exceptions}`;
      await loadOrders();
      await refreshWeChatSide();
    }),
  );

  /** Waits (up to 10 s) for the order's refunded amount to move, then shows the order, the membership and `done`. */
  async function showRefundOutcome(outTradeNo, before, refund) {
    let order = before;
    for (let waited = 0; order.refundedFee === before.refundedFee && waited < 10000; waited += 400) {
      await new Promise((resolve) => setTimeout(resolve, 400));
      order = await api.order(outTradeNo);
    }
    const user = await api.me();
    showUser(user);
    showOrder(order);
    $('refund-result').textContent =
      order.refundedFee === before.refundedFee
        ? `退款 ${yuan(refund.amount)}（${refund.outRefundNo}）仍在处理中，对账会再查询`
        : `已退款 ${yuan(order.refundedFee)} / ${yuan(order.totalFee)}，订单 ${order.status}；会员${
            user.role === 1 ? `有效期至 ${user.membershipExpiredAt.slice(0, 10)}` : '已失效'
          }`;
    await loadOrders();
    await refreshWeChatSide();
  }

  /** Until WeChat (the sandbox) has reported `status` for the refund and our backend acknowledged it (≤ 10 s). */
  async function refundReported(outTradeNo, outRefundNo, status) {
    for (let waited = 0; waited < 10000; waited += 400) {
      const { data } = await sandbox(`/sandbox/refunds?outTradeNo=${encodeURIComponent(outTradeNo)}`);
      const acknowledged = data.deliveries.some(
        (d) => d.outRefundNo === outRefundNo && d.refundStatus === status && d.accepted,
      );
      if (acknowledged) return true;
      await new Promise((resolve) => setTimeout(resolve, 400));
    }
    return false;
  }

  /** The refund WeChat reported ABNORMAL, which the re-apply button takes back. */
  let abnormalRefund;

  // The operator's refund (an IAM route on AWS; the local API takes it as is): the sandbox refunds at once and
  // sends the refund notify, which revokes the membership days; the order is polled until it shows the refund.
  // With "用户银行卡已注销" the sandbox reports it ABNORMAL instead (nothing revoked), and the operator re-applies it.
  $('refund').addEventListener('click', () =>
    run(async () => {
      const outTradeNo = lastPaid;
      const text = $('refund-amount').value.trim();
      if (text !== '' && !/^[1-9]\d*$/.test(text)) throw new Error('金额应为正整数（分）');
      const abnormal = $('refund-abnormal').checked;
      const before = await api.order(outTradeNo);
      if (abnormal) await sandbox('/sandbox/refunds/outcome', { mode: 'ABNORMAL' });
      const { data: body } = await sandbox(
        '/admin/refunds',
        text === '' ? { outTradeNo } : { outTradeNo, amount: Number(text) },
      );
      if (!body.success) throw new Error(body.message);
      const { refund } = body.data;
      $('refund-result').textContent =
        `退款 ${yuan(refund.amount)} 已提交（${refund.outRefundNo}，${refund.status}），等待退款通知…`;
      if (!abnormal) return showRefundOutcome(outTradeNo, before, refund);
      if (!(await refundReported(outTradeNo, refund.outRefundNo, 'ABNORMAL'))) {
        throw new Error('没有等到退款异常通知');
      }
      abnormalRefund = { outTradeNo, refund };
      $('refund-reapply').hidden = false;
      $('refund-result').textContent =
        `退款 ${yuan(refund.amount)}（${refund.outRefundNo}）异常 ABNORMAL：用户银行卡已注销，会员天数未扣回；可重新发起`;
      await refreshWeChatSide();
    }),
  );

  // POST /admin/refunds/{outRefundNo}/apply-abnormal (v3): back to PROCESSING; WeChat (the sandbox) then pays it to
  // the merchant's bank account and sends REFUND.SUCCESS, which revokes the days. v2 has no such API.
  $('refund-reapply').addEventListener('click', () =>
    run(async () => {
      const { outTradeNo, refund } = abnormalRefund;
      const before = await api.order(outTradeNo);
      const path = `/admin/refunds/${encodeURIComponent(refund.outRefundNo)}/apply-abnormal`;
      const { data: body } = await sandbox(path, { type: 'MERCHANT_BANK_CARD' });
      if (!body.success) {
        // v2 never can: the button goes; anything else may be tried again.
        $('refund-reapply').hidden = body.code === 'ABNORMAL_REFUND_V3_ONLY';
        $('refund-result').textContent = `重新发起未成功：${body.message}（${body.code}）`;
        return;
      }
      $('refund-reapply').hidden = true;
      $('refund-result').textContent = `已重新发起（${body.data.refund.status}），等待微信退款通知…`;
      await sandbox('/sandbox/refunds/resolve', { outRefundNo: refund.outRefundNo, status: 'SUCCESS' });
      await showRefundOutcome(outTradeNo, before, refund);
    }),
  );

  /** Fills a log table with the newest `limit` rows, newest first, when its length changed. */
  function fillLog(id, list, shown, limit, row, empty) {
    if (list.length === shown[id]) return;
    shown[id] = list.length;
    $(id).innerHTML = list.length ? list.slice(-limit).reverse().map(row).join('') : empty;
  }

  const shown = {};

  const deliveryRow = (d) => `<tr>
    <td>${time(d.at)}</td>
    <td class="mono">${html(d.outTradeNo.slice(-10))}</td>
    <td><span class="tag ${d.variant}">${VARIANT_TEXT[d.variant] || d.variant}</span> <span class="muted">${d.version}</span></td>
    <td>${d.attempt}</td>
    <td class="mono reply" title="${html(d.reply)}">${d.status === null ? '无应答' : `HTTP ${d.status}`} ${html(d.reply)}</td>
    <td class="verdict ${d.accepted ? 'accepted' : 'refused'}">${d.accepted ? '已确认' : '已拒绝'}</td>
  </tr>`;

  const callRow = (call) =>
    `<tr><td>${time(call.at)}</td><td>${call.method}</td><td class="mono">${html(call.path)}</td></tr>`;

  async function refreshWeChatSide() {
    const [{ data: n }, { data: c }] = await Promise.all([
      sandbox('/sandbox/notifications'),
      sandbox('/sandbox/calls'),
    ]);
    fillLog(
      'deliveries',
      n.notifications,
      shown,
      30,
      deliveryRow,
      '<tr><td colspan="6" class="empty">还没有通知</td></tr>',
    );
    fillLog('calls', c.calls, shown, 40, callRow, '<tr><td colspan="3" class="empty">还没有调用</td></tr>');
  }

  function poll() {
    refreshWeChatSide()
      .catch(() => undefined)
      .finally(() => setTimeout(poll, 1000));
  }

  // ---- start --------------------------------------------------------------------------------------------
  loadPlans();
  poll();
  if (api.token()) {
    run(async () => {
      showUser(await api.me());
      await loadOrders();
    });
  }
})();
