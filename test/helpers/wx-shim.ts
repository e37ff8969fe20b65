import type { WxApi } from '../../client/index.js';
import { checkResponse } from './openapi';

/** What the cashier does when `wx.requestPayment` opens it (the sandbox's POST /sandbox/cashier actions). */
export type CashierAction = 'pay' | 'pay-lose-notify' | 'cancel';

export interface WxShim extends WxApi {
  /** The storage behind get/set/removeStorageSync. */
  storage: Map<string, unknown>;
  /** What the next wx.requestPayment does; default 'pay'. */
  cashier: CashierAction;
  /** Every wx.request made, with its answer (each JSON answer was checked against the OpenAPI spec). */
  requests: { method: string; url: string; status: number }[];
  /** The fields each wx.requestPayment received, in order. */
  payments: Record<string, unknown>[];
}

async function sandboxPost(sandboxUrl: string, path: string, body: unknown) {
  const response = await fetch(`${sandboxUrl}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return { status: response.status, data: (await response.json()) as Record<string, unknown> };
}

/**
 * A small `wx` for tests against the real local stack: wx.request → fetch (every JSON answer validated against
 * the OpenAPI spec), wx.login → the sandbox's POST /sandbox/login for `openid`, wx.requestPayment → the sandbox
 * cashier (paySign checked as WeChat does, then `cashier`), storage in a Map.
 */
export function createWxShim(sandboxUrl: string, openid: string): WxShim {
  const shim: WxShim = {
    storage: new Map(),
    cashier: 'pay',
    requests: [],
    payments: [],
    request(options) {
      const url = new URL(options.url);
      fetch(url, {
        method: options.method,
        // wx.request sends JSON unless told otherwise.
        headers: { 'content-type': 'application/json', ...options.header },
        body: options.data === undefined ? undefined : JSON.stringify(options.data),
      })
        .then(async (response) => {
          const text = await response.text();
          // An empty body (204) reaches wx.request's success as '' whatever the content-type says.
          const data =
            text && response.headers.get('content-type')?.includes('json') ? JSON.parse(text) : text;
          shim.requests.push({ method: options.method, url: options.url, status: response.status });
          if (typeof data === 'object') checkResponse(options.method, url.pathname, response.status, data);
          options.success({ statusCode: response.status, data });
        })
        .catch((error: Error) => options.fail({ errMsg: `request:fail ${error.message}` }));
    },
    login(options) {
      sandboxPost(sandboxUrl, '/sandbox/login', { openid }).then(
        ({ data }) => options.success({ code: String(data.code) }),
        () => options.fail({ errMsg: 'login:fail' }),
      );
    },
    requestPayment(options) {
      const { success, fail, ...fields } = options;
      shim.payments.push(fields);
      const action = shim.cashier;
      sandboxPost(sandboxUrl, '/sandbox/cashier', { ...fields, action }).then(({ status, data }) => {
        if (status !== 200) fail({ errMsg: String(data.errMsg ?? 'requestPayment:fail') });
        else if (action === 'cancel') fail({ errMsg: 'requestPayment:fail cancel' });
        else success({ errMsg: 'requestPayment:ok' });
      }, fail);
    },
    getStorageSync: (key) => shim.storage.get(key) ?? '',
    setStorageSync: (key, value) => void shim.storage.set(key, value),
    removeStorageSync: (key) => void shim.storage.delete(key),
  };
  return shim;
}
