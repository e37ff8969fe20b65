/** Types of the mini-program client (index.js). Shapes follow the backend's OpenAPI spec (GET /openapi.json). */

export interface User {
  id: string;
  nickname: string;
  avatar: string;
  /** 0 male, 1 female, 2 unknown. */
  sex: 0 | 1 | 2;
  /** 0 user, 1 member. */
  role: 0 | 1;
  company: string;
  introduce: string;
  /** ISO 8601 UTC, or null when never a member. */
  membershipExpiredAt: string | null;
  phoneNumber?: string;
  countryCode?: string;
}

export interface Plan {
  id: string;
  name: string;
  months: number;
  /** Days added on top of the months (trial plans). */
  days: number;
  /** Integer fen. */
  totalFee: number;
}

export type OrderStatus = 'PENDING' | 'PAID' | 'CLOSED' | 'REFUNDED';

export interface Order {
  outTradeNo: string;
  planId: string;
  description: string;
  /** Integer fen. */
  totalFee: number;
  status: OrderStatus;
  createdAt: string;
  paidAt: string | null;
  transactionId: string | null;
  /** Refunded so far, integer fen (0 when nothing was refunded); status REFUNDED once it equals totalFee. */
  refundedFee: number;
}

export interface ProfileChanges {
  nickname?: string;
  avatar?: string;
  sex?: 0 | 1 | 2;
  company?: string;
  introduce?: string;
}

/** The subset of the mini-program `wx` API the client uses (a shim can stand in for it in tests). */
export interface WxApi {
  request(options: {
    url: string;
    method: string;
    header: Record<string, string>;
    data?: unknown;
    dataType?: string;
    success(result: { statusCode: number; data: unknown }): void;
    fail(error: { errMsg: string }): void;
  }): void;
  login(options: { success(result: { code: string }): void; fail(error: { errMsg: string }): void }): void;
  requestPayment(options: {
    timeStamp: string;
    nonceStr: string;
    package: string;
    signType: string;
    paySign: string;
    success(result: { errMsg: string }): void;
    fail(error: { errMsg: string }): void;
  }): void;
  getStorageSync(key: string): unknown;
  setStorageSync(key: string, value: unknown): void;
  removeStorageSync(key: string): void;
}

export interface ClientOptions {
  /** The API's origin, e.g. https://api.example.com (no trailing path needed). */
  baseUrl: string;
  /** Defaults to the mini-program's global `wx`. */
  wx?: WxApi;
  /** Storage key of the session token; default 'wechat-backend-token'. */
  tokenKey?: string;
  /** How often pay() asks about the order after the cashier closes, ms; default 1000. */
  pollIntervalMs?: number;
  /** How long pay() waits for a final state before PAY_PENDING, ms; default 30000. */
  pollTimeoutMs?: number;
}

/**
 * An error carrying a stable `code`: the backend's (VALIDATION_ERROR, ORDER_CLOSED, …) or the client's own
 * (NETWORK_ERROR, PAY_CANCELLED, PAY_FAILED, PAY_PENDING, ORDER_CLOSED, HTTP_<status>).
 */
export class ApiError extends Error {
  readonly code: string;
  /** The HTTP status; 0 for the client's own errors. */
  readonly status: number;
  /** Validation failures: every refused field. */
  readonly errors?: { field: string; code: string }[];
  /** For payment errors: the order as the backend last reported it. */
  readonly order?: Order;
}

export interface Client {
  signIn(): Promise<{ token: string; user: User }>;
  me(): Promise<User>;
  updateInfo(fields: ProfileChanges): Promise<User>;
  bindPhone(code: string): Promise<User>;
  plans(): Promise<Plan[]>;
  /** Resolves with the PAID order; rejects with PAY_CANCELLED / PAY_FAILED / PAY_PENDING / ORDER_CLOSED. */
  pay(target: string | { planId: string } | { outTradeNo: string }): Promise<Order>;
  order(outTradeNo: string): Promise<Order>;
  orders(query?: {
    cursor?: string;
    limit?: number;
  }): Promise<{ orders: Order[]; nextCursor: string | null }>;
  closeOrder(outTradeNo: string): Promise<Order>;
  /** A copy of everything the backend holds about the user (PIPL art. 45). */
  exportData(): Promise<AccountExport>;
  /** Cancels the account (注销) and forgets the token; rejects with ORDER_JUST_PAID when a payment just landed. */
  deleteAccount(): Promise<void>;
  token(): string;
  /** Ends every session of the user (all devices) and forgets the token here. */
  signOut(): Promise<void>;
}

/** What GET /wechat/me/export answers. */
export interface AccountExport {
  profile: User;
  identities: { openid: string | null; officialAccountOpenid: string | null; unionid: string | null };
  createdAt: string;
  updatedAt: string;
  membership: {
    expiredAt: string | null;
    history: { outTradeNo: string; planId: string; paidAt: string | undefined }[];
  };
  /** Every order as stored. */
  orders: Record<string, unknown>[];
  exportedAt: string;
}

export function createClient(options: ClientOptions): Client;
