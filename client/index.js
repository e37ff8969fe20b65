'use strict';
/**
 * The mini-program client of this backend: copy this file (and index.d.ts) into a mini-program and `require` it.
 * CommonJS, ES2017, no dependencies; it only uses wx.request, wx.login, wx.requestPayment and the storage calls.
 *
 *   const { createClient } = require('./client/index.js');
 *   const api = createClient({ baseUrl: 'https://api.example.com' });
 *   const order = await api.pay('month'); // PAID, confirmed by the backend, not by the payment callback
 */

/** An error the backend answered (`code` as in the response) or one of the client's own codes. */
class ApiError extends Error {
  constructor(message, code, status, errors, order) {
    super(message);
    this.name = 'ApiError';
    this.code = code;
    this.status = status;
    if (errors) this.errors = errors;
    if (order) this.order = order;
  }
}

const FINAL_STATUSES = ['PAID', 'CLOSED', 'REFUNDED'];

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Calls a wx API that takes success/fail callbacks; resolves with the success result, rejects with the fail one. */
function callWx(wxApi, name, options) {
  return new Promise((resolve, reject) => {
    wxApi[name](Object.assign({}, options, { success: resolve, fail: reject }));
  });
}

/**
 * createClient({ baseUrl, wx?, tokenKey?, pollIntervalMs?, pollTimeoutMs? }): the API below. `wx` defaults to the
 * mini-program's global `wx`; the session token is kept with wx.setStorageSync under `tokenKey`.
 */
function createClient(options) {
  const wxApi = options.wx || (typeof wx === 'undefined' ? undefined : wx); // eslint-disable-line no-undef
  if (!wxApi) throw new TypeError('createClient: no wx API (pass options.wx outside a mini-program)');
  if (!options.baseUrl && options.baseUrl !== '') throw new TypeError('createClient: baseUrl is required');
  const baseUrl = String(options.baseUrl).replace(/\/+$/, '');
  const tokenKey = options.tokenKey || 'wechat-backend-token';
  const pollIntervalMs = options.pollIntervalMs || 1000;
  const pollTimeoutMs = options.pollTimeoutMs || 30000;

  function token() {
    return wxApi.getStorageSync(tokenKey) || '';
  }

  async function send(method, path, data, bearer) {
    const header = { 'content-type': 'application/json' };
    if (bearer) header.authorization = `Bearer ${bearer}`;
    const request = { url: baseUrl + path, method: method, header: header, dataType: 'json' };
    if (data !== undefined) request.data = data;
    let response;
    try {
      response = await callWx(wxApi, 'request', request);
    } catch (_failure) {
      throw new ApiError('网络异常，请稍后再试', 'NETWORK_ERROR', 0);
    }
    if (response.statusCode === 204) return undefined;
    const body = response.data && typeof response.data === 'object' ? response.data : {};
    if (response.statusCode >= 200 && response.statusCode < 300 && body.success === true) return body.data;
    throw new ApiError(
      body.message || '服务暂时不可用，请稍后再试',
      body.code || `HTTP_${response.statusCode}`,
      response.statusCode,
      body.errors,
    );
  }

  /** A call with the session: signs in first when there is no token, and once again on a 401. */
  async function call(method, path, data) {
    let bearer = token();
    if (!bearer) bearer = (await signIn()).token;
    try {
      return await send(method, path, data, bearer);
    } catch (error) {
      if (error.status !== 401) throw error;
      return send(method, path, data, (await signIn()).token);
    }
  }

  /**
   * wx.login, then POST /wechat/sign_in with the previous token, if any (expired is fine: it lets the backend
   * find a returning user in one read); keeps the new token. Resolves with { token, user }.
   */
  async function signIn() {
    const login = await callWx(wxApi, 'login', {});
    const data = await send('POST', '/wechat/sign_in', { code: login.code }, token());
    wxApi.setStorageSync(tokenKey, data.token);
    return data;
  }

  /** GET /wechat/orders/{outTradeNo}: the backend asks WeChat about a PENDING order before it answers. */
  async function closeOrder(outTradeNo) {
    return (await call('POST', `/wechat/orders/${encodeURIComponent(outTradeNo)}/close`)).order;
  }

  async function order(outTradeNo) {
    return (await call('GET', `/wechat/orders/${encodeURIComponent(outTradeNo)}`)).order;
  }

  /** Polls the order until it leaves PENDING; throws PAY_PENDING (with the order) after pollTimeoutMs. */
  async function waitForOrder(outTradeNo) {
    const deadline = Date.now() + pollTimeoutMs;
    for (;;) {
      const current = await order(outTradeNo);
      if (FINAL_STATUSES.indexOf(current.status) !== -1) return current;
      if (Date.now() + pollIntervalMs > deadline) {
        throw new ApiError('支付结果确认中，请稍后在订单中查看', 'PAY_PENDING', 0, undefined, current);
      }
      await sleep(pollIntervalMs);
    }
  }

  /**
   * Buys a plan (`pay('month')` or `pay({ planId })`) or pays a PENDING order again (`pay({ outTradeNo })`):
   * POST /wechat/pay, wx.requestPayment with exactly its five fields, then the backend's word on the order.
   * Resolves with the PAID order; throws PAY_CANCELLED / PAY_FAILED (with `order`) when the user did not pay.
   */
  async function pay(target) {
    const body = typeof target === 'string' ? { planId: target } : target;
    const started = await call('POST', '/wechat/pay', body);
    const p = started.payParams;
    const outTradeNo = started.order.outTradeNo;
    try {
      await callWx(wxApi, 'requestPayment', {
        timeStamp: p.timeStamp,
        nonceStr: p.nonceStr,
        package: p.package,
        signType: p.signType,
        paySign: p.paySign,
      });
    } catch (failure) {
      // Never trust the callback: the payment may have gone through all the same.
      let current = await order(outTradeNo);
      if (current.status === 'PAID') return current;
      const cancelled = /cancel/.test((failure && failure.errMsg) || '');
      // The user walked away: close the order (at WeChat first), unless it turns out paid after all.
      if (cancelled && current.status === 'PENDING') {
        try {
          current = await closeOrder(outTradeNo);
        } catch (error) {
          if (error.code === 'ORDER_PAID') return order(outTradeNo);
          throw error;
        }
      }
      throw new ApiError(
        cancelled ? '已取消支付' : '支付未完成',
        cancelled ? 'PAY_CANCELLED' : 'PAY_FAILED',
        0,
        undefined,
        current,
      );
    }
    const final = await waitForOrder(outTradeNo);
    if (final.status !== 'PAID') throw new ApiError('订单已关闭', 'ORDER_CLOSED', 0, undefined, final);
    return final;
  }

  return {
    signIn: signIn,
    /** GET /wechat/me → user. */
    me: async () => (await call('GET', '/wechat/me')).user,
    /** PUT /wechat/info with any of { nickname, avatar, sex, company, introduce } → user. */
    updateInfo: async (fields) => (await call('PUT', '/wechat/info', fields)).user,
    /** POST /wechat/phone with a getPhoneNumber code → user (with phoneNumber). */
    bindPhone: async (code) => (await call('POST', '/wechat/phone', { code: code })).user,
    /** GET /wechat/plans → plans (no session needed). */
    plans: async () => (await send('GET', '/wechat/plans')).plans,
    pay: pay,
    order: order,
    /** GET /wechat/orders → { orders, nextCursor }, newest first. */
    orders: async (query) => {
      const q = query || {};
      const params = [];
      if (q.cursor) params.push(`cursor=${encodeURIComponent(q.cursor)}`);
      if (q.limit) params.push(`limit=${encodeURIComponent(String(q.limit))}`);
      return call('GET', `/wechat/orders${params.length ? `?${params.join('&')}` : ''}`);
    },
    /** POST /wechat/orders/{outTradeNo}/close → the CLOSED order. */
    closeOrder: closeOrder,
    /** GET /wechat/me/export → a copy of everything the backend holds about the user. */
    exportData: async () => (await call('GET', '/wechat/me/export')).export,
    /** DELETE /wechat/me: cancels the account (注销), then forgets the token. Throws ORDER_JUST_PAID (409). */
    deleteAccount: async () => {
      await call('DELETE', '/wechat/me');
      wxApi.removeStorageSync(tokenKey);
    },
    /** The stored session token ('' when signed out). */
    token: token,
    /** POST /wechat/sign_out (every device's session ends), then forgets the token here; a dead token is fine. */
    signOut: async () => {
      const bearer = token();
      wxApi.removeStorageSync(tokenKey);
      if (!bearer) return;
      try {
        await send('POST', '/wechat/sign_out', undefined, bearer);
      } catch (error) {
        if (error.status !== 401) throw error;
      }
    },
  };
}

module.exports = { createClient: createClient, ApiError: ApiError };
