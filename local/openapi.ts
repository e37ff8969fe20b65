import { OUT_TRADE_NO } from '#lib/wechat-pay/fields';

/**
 * The OpenAPI 3.1 description of every route in serverless.yml, written by hand and held to the code by tests:
 * test/unit/local/openapi.test.ts checks that the spec and serverless.yml name the same routes, and every
 * response the integration and stack suites receive is validated against it (test/helpers/openapi.ts, ajv).
 * The sandbox serves it at `GET /openapi.json` with a docs page at `GET /docs`.
 */

type Schema = Record<string, unknown>;

const ref = (name: string): Schema => ({ $ref: `#/components/schemas/${name}` });
const object = (properties: Record<string, Schema>, required = Object.keys(properties)): Schema => ({
  type: 'object',
  properties,
  required,
  additionalProperties: false,
});
const text = (description: string, extra: Schema = {}): Schema => ({ type: 'string', description, ...extra });
const nullable = (schema: Schema): Schema => ({ oneOf: [schema, { type: 'null' }] });

/** A success envelope around `data` (seed 000's `{success: true, message, data}`). */
function success(description: string, data: Schema): Schema {
  return {
    description,
    content: {
      'application/json': {
        schema: object({ success: { const: true }, message: text('给人看的中文提示'), data }),
      },
    },
  };
}

/** What each failure status means in this API. */
const FAILURE_STATUS: Record<number, string> = {
  400: 'Validation failure (code VALIDATION_ERROR, with errors) or another bad request',
  401: 'No, malformed, expired or revoked session token (UNAUTHORIZED, INVALID_TOKEN, USER_NOT_FOUND, SESSION_REVOKED)',
  404: 'Not found, or not the caller’s (ORDER_NOT_FOUND); a feature this stage has not configured (FEATURE_DISABLED)',
  409: 'Conflict with the order’s state (ORDER_PAID, ORDER_CLOSED, ORDER_IN_PROGRESS, ORDER_JUST_PAID, …) or a sign-in racing an account deletion (SIGN_IN_CONFLICT)',
  413: 'Body too large (PAYLOAD_TOO_LARGE)',
  415: 'Not application/json (UNSUPPORTED_MEDIA_TYPE)',
  429: 'Too many orders this hour (ORDER_RATE_LIMITED), or WeChat’s quota reached (WECHAT_RATE_LIMITED); see retry-after',
  500: 'A bug (INTERNAL_ERROR); details only in the logs',
  502: 'WeChat answered something unusable (WECHAT_ERROR, …)',
  503: 'WeChat busy or not answering (WECHAT_UNAVAILABLE, …)',
};

function failures(...statuses: number[]): Record<string, Schema> {
  return Object.fromEntries(
    statuses.map((status) => [
      String(status),
      {
        description: FAILURE_STATUS[status],
        content: { 'application/json': { schema: ref('Failure') } },
      },
    ]),
  );
}

/** `?limit=&cursor=` of a paged list. */
const pageParameters = (maximum: number, defaultLimit: number): Schema[] => [
  { name: 'limit', in: 'query', schema: { type: 'integer', minimum: 1, maximum, default: defaultLimit } },
  { name: 'cursor', in: 'query', schema: { type: 'string' }, description: 'nextCursor of the previous page' },
];
/** A page `{<name>: [item], nextCursor}`. */
const page = (name: string, item: Schema): Schema =>
  object({ [name]: { type: 'array', items: item }, nextCursor: nullable({ type: 'string' }) });

const json = (schema: Schema): Schema => ({ required: true, content: { 'application/json': { schema } } });
const bearer = [{ session: [] }];
/** Admin routes: the HTTP API's IAM authorizer (SigV4 with the operator's credentials); open locally. */
const operator = [{ operator: [] }];
const WECHAT = [502, 503, 500];

/** An amount in integer fen. */
const FEN: Schema = { type: 'integer', minimum: 0, description: 'Integer fen' };

const schemas: Record<string, Schema> = {
  Failure: object(
    {
      success: { const: false },
      message: text('给人看的中文句子（项目自己的，不含任何库的原文）'),
      code: text('Stable machine code', { pattern: '^[A-Z][A-Z0-9_]*$' }),
      errors: {
        type: 'array',
        description: 'Validation failures only: every refused field',
        items: object({
          field: text('Dot path of the field; `body` for the body itself'),
          code: {
            enum: [
              'REQUIRED',
              'INVALID_TYPE',
              'INVALID_FORMAT',
              'TOO_SHORT',
              'TOO_LONG',
              'NOT_ALLOWED',
              'INVALID_VALUE',
            ],
          },
        }),
      },
    },
    ['success', 'message', 'code'],
  ),
  User: object(
    {
      id: text('Opaque user id'),
      nickname: text('NFC, 1–32 characters'),
      avatar: text('https URL on a public host, or empty'),
      sex: { enum: [0, 1, 2], description: '0 male, 1 female, 2 unknown' },
      role: { enum: [0, 1], description: '0 user, 1 member (a lapsed membership reads 0)' },
      company: text('NFC, 0–64 characters'),
      introduce: text('NFC, 0–256 characters'),
      membershipExpiredAt: nullable(text('ISO 8601 UTC', { format: 'date-time' })),
      phoneNumber: text('Bound phone number (after POST /wechat/phone)'),
      countryCode: text('Its country code'),
    },
    ['id', 'nickname', 'avatar', 'sex', 'role', 'company', 'introduce', 'membershipExpiredAt'],
  ),
  Plan: object({
    id: text('Plan id, the `planId` of POST /wechat/pay'),
    name: text('Display name'),
    months: { type: 'integer', minimum: 0, description: 'What the plan is sold as' },
    days: { type: 'integer', minimum: 1, description: 'Days a payment adds to the membership' },
    totalFee: { type: 'integer', minimum: 1, description: 'Price, integer fen' },
  }),
  Order: object(
    {
      outTradeNo: text('Our order number (out_trade_no)', { pattern: OUT_TRADE_NO.source }),
      planId: text('The plan bought'),
      description: text('What WeChat shows the payer'),
      totalFee: { type: 'integer', minimum: 1, description: 'Integer fen' },
      status: { enum: ['PENDING', 'PAID', 'CLOSED', 'REFUNDED'] },
      createdAt: text('ISO 8601 UTC', { format: 'date-time' }),
      paidAt: nullable(text('ISO 8601 UTC', { format: 'date-time' })),
      transactionId: nullable(text('WeChat Pay transaction_id')),
      refundedFee: { type: 'integer', minimum: 0, description: 'Refunded so far, integer fen' },
    },
    ['outTradeNo', 'planId', 'description', 'totalFee', 'status', 'createdAt', 'paidAt', 'transactionId'],
  ),
  PayParams: {
    ...object(
      {
        appId: text('H5 sessions only: the official account AppID, for WeixinJSBridge getBrandWCPayRequest'),
        timeStamp: text('Unix seconds', { pattern: '^\\d{1,10}$' }),
        nonceStr: text('Random string'),
        package: text('prepay_id=…', { pattern: '^prepay_id=' }),
        signType: { enum: ['MD5', 'HMAC-SHA256', 'RSA'] },
        paySign: text('Signature over the other fields (and the appId)'),
      },
      ['timeStamp', 'nonceStr', 'package', 'signType', 'paySign'],
    ),
    description: 'Exactly what wx.requestPayment takes (plus appId for H5 getBrandWCPayRequest)',
  },
  ReconcileSummary: object({
    checked: { type: 'integer', minimum: 0, description: 'Orders looked at' },
    credited: { type: 'integer', minimum: 0, description: 'Payments credited (lost notifies)' },
    closed: { type: 'integer', minimum: 0, description: 'Orders closed at WeChat and here' },
    stillPending: { type: 'integer', minimum: 0, description: 'Unpaid, not expired: checked again later' },
    exceptions: { type: 'integer', minimum: 0, description: 'Payments recorded as payment exceptions' },
    failed: { type: 'integer', minimum: 0, description: 'Checks that failed; due again next pass' },
    more: { type: 'boolean', description: 'Due orders were left for the next pass (time budget)' },
    refundsChecked: { type: 'integer', minimum: 0, description: 'PROCESSING refunds looked at' },
    refundsSettled: { type: 'integer', minimum: 0, description: 'Refunds that reached a final state' },
    refundsProcessing: {
      type: 'integer',
      minimum: 0,
      description: 'Refunds still PROCESSING: checked later',
    },
  }),
  Refund: object({
    outRefundNo: text('Our refund number (out_refund_no)', { pattern: '^[0-9A-Za-z_\\-|*@]{1,64}$' }),
    outTradeNo: text('The refunded order', { pattern: OUT_TRADE_NO.source }),
    amount: { type: 'integer', minimum: 1, description: 'refund_fee, integer fen' },
    status: {
      enum: ['PROCESSING', 'SUCCESS', 'CLOSED', 'ABNORMAL'],
      description: 'PROCESSING until WeChat reports the refund done (SUCCESS), closed or abnormal',
    },
  }),
  PaymentException: object(
    {
      outTradeNo: text('The out_trade_no WeChat reported'),
      transactionId: text('WeChat Pay transaction_id'),
      reason: {
        enum: [
          'merchant_mismatch',
          'currency_mismatch',
          'unknown_order',
          'amount_mismatch',
          'paid_by_other',
          'not_pending',
          'owner_missing',
          'bill_not_credited',
          'bill_missing_payment',
          'bill_amount_mismatch',
          'bill_refund_not_recorded',
          'bill_refund_missing',
          'refund_mismatch',
          'refund_abnormal',
        ],
      },
      orderFee: { type: 'integer', description: 'Our order’s total_fee, integer fen' },
      reportedFee: { type: 'integer', description: 'What WeChat reported, integer fen' },
      source: {
        enum: [
          'notify-v2',
          'notify-v3',
          'orderquery-v2',
          'orderquery-v3',
          'bill-v2',
          'bill-v3',
          'refund-v2',
          'refund-v3',
          'refundquery-v2',
          'refundquery-v3',
        ],
      },
      at: text('ISO 8601 UTC', { format: 'date-time' }),
      billDate: text('A daily bill difference: the bill’s China-time day', { format: 'date' }),
      outRefundNo: text('A refund difference: its out_refund_no'),
    },
    ['outTradeNo', 'transactionId', 'reason', 'reportedFee', 'source', 'at'],
  ),
  BillReport: object(
    {
      date: text('China-time day checked', { format: 'date' }),
      status: {
        enum: ['done', 'empty', 'not_ready'],
        description:
          'done: a bill compared; empty: no bill that day (NO_STATEMENT_EXIST); not_ready: WeChat still making it',
      },
      version: { enum: ['v2', 'v3'] },
      checkedAt: text('ISO 8601 UTC', { format: 'date-time' }),
      matched: { type: 'integer', minimum: 0, description: 'Bill lines that agree with the ledger' },
      otherApps: {
        type: 'integer',
        minimum: 0,
        description: 'Bill lines of other apps on the same mchid (another AppID), left out of the comparison',
      },
      paidNotCredited: {
        type: 'array',
        items: object(
          {
            outTradeNo: text('out_trade_no'),
            transactionId: text('transaction_id'),
            billFee: FEN,
            ourStatus: { enum: ['ABSENT', 'PENDING', 'PAID', 'CLOSED', 'REFUNDED'] },
            outcome: { enum: ['credited', 'duplicate', 'exception', 'failed'] },
          },
          ['outTradeNo', 'transactionId', 'billFee', 'ourStatus'],
        ),
      },
      creditedNotInBill: {
        type: 'array',
        items: object({
          outTradeNo: text('out_trade_no'),
          transactionId: text('transaction_id'),
          ourFee: FEN,
        }),
      },
      amountMismatch: {
        type: 'array',
        items: object({
          kind: { enum: ['payment', 'refund'] },
          outTradeNo: text('out_trade_no'),
          id: text('transaction_id (payment) or out_refund_no (refund)'),
          billFee: FEN,
          ourFee: FEN,
        }),
      },
      refundsNotRecorded: {
        type: 'array',
        items: object({
          outTradeNo: text('out_trade_no'),
          outRefundNo: text('out_refund_no'),
          refundId: text('refund_id'),
          billFee: FEN,
          billStatus: text('退款状态 in the bill'),
          ourStatus: { enum: ['ABSENT', 'PROCESSING', 'SUCCESS', 'CLOSED', 'ABNORMAL'] },
        }),
      },
      refundsNotInBill: {
        type: 'array',
        items: object({ outTradeNo: text('out_trade_no'), outRefundNo: text('out_refund_no'), ourFee: FEN }),
      },
      differences: { type: 'integer', minimum: 0, description: 'All differences' },
      truncated: {
        type: 'boolean',
        description: 'The stored lists were cut (every difference is also an exception)',
      },
      totals: object({
        lines: { type: 'integer', minimum: 0 },
        paymentFee: FEN,
        refundFee: FEN,
      }),
    },
    [
      'date',
      'status',
      'version',
      'checkedAt',
      'matched',
      'paidNotCredited',
      'creditedNotInBill',
      'amountMismatch',
      'refundsNotRecorded',
      'refundsNotInBill',
      'differences',
      'totals',
    ],
  ),
  SeedPayResult: {
    ...object({
      appId: text('The mini-program appid'),
      timeStamp: text('Unix seconds'),
      nonceStr: text('Random string'),
      package: text('prepay_id=…'),
      signType: { enum: ['MD5', 'HMAC-SHA256', 'RSA'] },
      paySign: text('Signature'),
    }),
    description: 'Seed 000’s shape (node-tenpay getPayParams): spread into wx.requestPayment unchanged',
  },
};

const outTradeNoParameter = {
  name: 'outTradeNo',
  in: 'path',
  required: true,
  schema: { type: 'string', pattern: OUT_TRADE_NO.source },
};

/** What an account deletion answers (the user's own and the operator's). */
const DELETED = success('Deleted, or already deleted', object({ deleted: { const: true } }));

const userIdParameter = { name: 'id', in: 'path', required: true, schema: { type: 'string' } };

const paths: Record<string, Record<string, Schema>> = {
  '/wechat/sign_in': {
    post: {
      operationId: 'signIn',
      tags: ['session'],
      summary: 'Sign in with a wx.login code',
      description:
        'May carry the previous session token as `Authorization: Bearer …` (expired is fine). It is only a hint: ' +
        'the account is always the one the openid is linked to; with it, a returning user is found in one read.',
      requestBody: json(
        object({
          code: text('The code from wx.login (single use, 5 minutes)', { pattern: '^[A-Za-z0-9_-]{1,128}$' }),
        }),
      ),
      responses: {
        '200': success('Signed in', object({ token: text('Bearer session token (JWT)'), user: ref('User') })),
        ...failures(400, 401, 409, 413, 415, ...WECHAT),
      },
    },
  },
  '/wechat/oauth/authorize': {
    get: {
      operationId: 'oauthAuthorize',
      tags: ['session'],
      summary: 'H5 sign-in: 302 to WeChat web OAuth (official account)',
      description:
        'Redirects the browser to `{WECHAT_OPEN_BASE}/connect/oauth2/authorize?…#wechat_redirect`. `redirect` ' +
        'must be under H5_ORIGINS (exact origin) or the answer is 400 REDIRECT_NOT_ALLOWED; the state is signed, ' +
        'binds the redirect and scope, and lives 10 minutes. `scope=auto` asks WeChat for snsapi_base and, when that ' +
        'openid belongs to nobody yet, the callback sends the browser back for snsapi_userinfo (whose unionid finds ' +
        'the mini-program account). 404 FEATURE_DISABLED when H5 is not configured.',
      parameters: [
        { name: 'redirect', in: 'query', required: true, schema: { type: 'string', maxLength: 1024 } },
        {
          name: 'scope',
          in: 'query',
          schema: { enum: ['snsapi_base', 'snsapi_userinfo', 'auto'], default: 'snsapi_base' },
        },
      ],
      responses: {
        '302': { description: 'To WeChat’s authorize page (Location)' },
        ...failures(400, 404, 500),
      },
    },
  },
  '/wechat/oauth/callback': {
    get: {
      operationId: 'oauthCallback',
      tags: ['session'],
      summary: 'H5 sign-in: WeChat’s redirect back; 302 to `<redirect>#token=<JWT>`',
      description:
        'WeChat appends code and state. Signs the user in (one user per person: linked by unionid with the ' +
        'mini-program) and 302s to the page with the session token in the fragment; no code (the user ' +
        'refused) 302s to `<redirect>#error=access_denied`; a `scope=auto` sign-in whose official-account openid ' +
        'belongs to nobody 302s to WeChat’s authorize page again for snsapi_userinfo. Bad state 400 INVALID_STATE, expired 400 ' +
        'STATE_EXPIRED, used code 400 INVALID_CODE.',
      parameters: [
        { name: 'redirect', in: 'query', required: true, schema: { type: 'string', maxLength: 1024 } },
        { name: 'state', in: 'query', required: true, schema: { type: 'string', maxLength: 128 } },
        { name: 'code', in: 'query', schema: { type: 'string', maxLength: 128 } },
      ],
      responses: {
        '302': { description: 'To the H5 page, `#token=<JWT>` or `#error=access_denied` (Location)' },
        ...failures(400, 404, 409, 429, ...WECHAT),
      },
    },
  },
  '/wechat/me': {
    get: {
      operationId: 'me',
      tags: ['profile'],
      summary: 'The signed-in user',
      security: bearer,
      responses: { '200': success('The user', object({ user: ref('User') })), ...failures(401, 500) },
    },
    delete: {
      operationId: 'deleteMe',
      tags: ['profile'],
      summary: 'Cancel the account (注销): profile and WeChat identities erased, orders pseudonymised',
      description:
        'PENDING orders are closed at WeChat first; one paid at that moment is credited and answers 409 ' +
        'ORDER_JUST_PAID. Every earlier token stops working; a retried delete answers the same success.',
      security: bearer,
      responses: {
        '200': DELETED,
        ...failures(401, 409, ...WECHAT),
      },
    },
  },
  '/wechat/me/export': {
    get: {
      operationId: 'exportMe',
      tags: ['profile'],
      summary: 'A copy of everything held about the caller (PIPL art. 45)',
      security: bearer,
      responses: {
        '200': success(
          'The copy',
          object({
            export: object({
              profile: ref('User'),
              identities: object({
                openid: nullable(text('Mini-program openid')),
                officialAccountOpenid: nullable(text('Official-account openid (H5 sign-in)')),
                unionid: nullable(text('WeChat unionid')),
              }),
              createdAt: text('ISO 8601 UTC', { format: 'date-time' }),
              updatedAt: text('ISO 8601 UTC', { format: 'date-time' }),
              membership: object({
                expiredAt: nullable(text('ISO 8601 UTC', { format: 'date-time' })),
                history: {
                  type: 'array',
                  description: 'Paid orders, oldest first',
                  items: object({
                    outTradeNo: text('The order'),
                    planId: text('The plan'),
                    paidAt: text('ISO 8601 UTC'),
                  }),
                },
              }),
              orders: { type: 'array', items: { type: 'object' }, description: 'Every order as stored' },
              exportedAt: text('ISO 8601 UTC', { format: 'date-time' }),
            }),
          }),
        ),
        ...failures(401, 500),
      },
    },
  },
  '/wechat/sign_out': {
    post: {
      operationId: 'signOut',
      tags: ['session'],
      summary: 'End every session of the caller (all devices)',
      security: bearer,
      responses: { '204': { description: 'Signed out everywhere' }, ...failures(401, 500) },
    },
  },
  '/wechat/info': {
    put: {
      operationId: 'updateInfo',
      tags: ['profile'],
      summary: 'Update any of nickname, avatar, sex, company, introduce (other fields are ignored)',
      security: bearer,
      requestBody: json({
        type: 'object',
        minProperties: 1,
        properties: {
          nickname: text('1–32 characters; no control, bidi or invisible-only text', { minLength: 1 }),
          avatar: text('https URL on a public host; empty clears it'),
          sex: { enum: [0, 1, 2] },
          company: text('0–64 characters'),
          introduce: text('0–256 characters'),
        },
      }),
      responses: {
        '200': success('Updated', object({ user: ref('User') })),
        ...failures(400, 401, 413, 415, 500),
      },
    },
  },
  '/wechat/phone': {
    post: {
      operationId: 'bindPhone',
      tags: ['profile'],
      summary: 'Bind the caller’s phone number from a getPhoneNumber code (single use, 5 minutes)',
      description:
        'The code of `<button open-type="getPhoneNumber">`; the number is shown only to its owner (GET /wechat/me, ' +
        'the export) and erased with the account. A used or expired code answers 400 INVALID_CODE.',
      security: bearer,
      requestBody: json(
        object({
          code: text('The getPhoneNumber code', { pattern: '^[A-Za-z0-9_-]{1,128}$' }),
        }),
      ),
      responses: {
        '200': success('Bound', object({ user: ref('User') })),
        ...failures(400, 401, 413, 415, 429, ...WECHAT),
      },
    },
  },
  '/wechat/jssdk/config': {
    get: {
      operationId: 'jssdkConfig',
      tags: ['h5'],
      summary: 'wx.config’s signature for an H5 page of the official account (no session needed)',
      description:
        'Send `location.href.split("#")[0]`, URL-encoded. The page must be under H5_ORIGINS (400 URL_NOT_ALLOWED); ' +
        'without WECHAT_MP_APPID, WECHAT_MP_SECRET or H5_ORIGINS the route answers 404 FEATURE_DISABLED.',
      parameters: [
        { name: 'url', in: 'query', required: true, schema: { type: 'string' }, description: 'The page URL' },
      ],
      responses: {
        '200': success(
          'The wx.config fields (add jsApiList)',
          object({
            appId: text('The official account AppID (WECHAT_MP_APPID)'),
            timestamp: { type: 'integer', description: 'Unix seconds' },
            nonceStr: text('Random string'),
            signature: text('SHA-1 hex of jsapi_ticket, noncestr, timestamp, url', {
              pattern: '^[0-9a-f]{40}$',
            }),
          }),
        ),
        ...failures(400, 404, 429, ...WECHAT),
      },
    },
  },
  '/wechat/plans': {
    get: {
      operationId: 'plans',
      tags: ['payments'],
      summary: 'The membership plans for sale',
      responses: { '200': success('The catalog', object({ plans: { type: 'array', items: ref('Plan') } })) },
    },
  },
  '/wechat/pay': {
    post: {
      operationId: 'pay',
      tags: ['payments'],
      summary:
        'Open (or continue) an order for a plan, or pay a PENDING order again; returns wx.requestPayment params',
      security: bearer,
      requestBody: json({
        oneOf: [
          object({ planId: text('A plan id from GET /wechat/plans') }),
          object({ outTradeNo: text('A PENDING order') }),
        ],
      }),
      responses: {
        '200': success(
          'The order and its payment parameters',
          object({ order: ref('Order'), payParams: ref('PayParams'), result: ref('SeedPayResult') }),
        ),
        ...failures(400, 401, 404, 409, 413, 415, 429, ...WECHAT),
      },
    },
  },
  '/wechat/orders': {
    get: {
      operationId: 'orders',
      tags: ['payments'],
      summary: 'The caller’s orders, newest first',
      security: bearer,
      parameters: pageParameters(50, 20),
      responses: {
        '200': success('A page of orders', page('orders', ref('Order'))),
        ...failures(400, 401, 500),
      },
    },
  },
  '/wechat/orders/{outTradeNo}': {
    get: {
      operationId: 'order',
      tags: ['payments'],
      summary: 'One of the caller’s orders; a PENDING one is first checked with WeChat’s order query',
      security: bearer,
      parameters: [outTradeNoParameter],
      responses: { '200': success('The order', object({ order: ref('Order') })), ...failures(401, 404, 500) },
    },
  },
  '/wechat/orders/{outTradeNo}/close': {
    post: {
      operationId: 'closeOrder',
      tags: ['payments'],
      summary: 'The owner closes an unpaid order: at WeChat first, then here',
      description:
        'A closed order answers as it is; one WeChat says was paid is credited and answers 409 ORDER_PAID.',
      security: bearer,
      parameters: [outTradeNoParameter],
      responses: {
        '200': success('The order, CLOSED', object({ order: ref('Order') })),
        ...failures(401, 404, 409, ...WECHAT),
      },
    },
  },
  '/admin/reconcile': {
    post: {
      operationId: 'adminReconcile',
      tags: ['admin'],
      summary: 'One reconcile pass now (IAM on AWS)',
      security: operator,
      requestBody: {
        required: false,
        content: { 'application/json': { schema: object({ all: { type: 'boolean' } }, []) } },
      },
      responses: {
        '200': success('What the pass did', ref('ReconcileSummary')),
        ...failures(400, 500),
      },
    },
  },
  '/admin/bill': {
    get: {
      operationId: 'adminBill',
      tags: ['admin'],
      summary: 'Check a day’s WeChat trade bill against the ledger now; the stored report (IAM on AWS)',
      security: operator,
      parameters: [
        {
          name: 'date',
          in: 'query',
          required: true,
          description: 'China-time day YYYY-MM-DD, not in the future (INVALID_DATE, FUTURE_DATE)',
          schema: { type: 'string', format: 'date' },
        },
      ],
      responses: {
        '200': success('The day’s report', object({ report: ref('BillReport') })),
        ...failures(400, ...WECHAT),
      },
    },
  },
  '/admin/refunds': {
    post: {
      operationId: 'adminRefund',
      tags: ['admin'],
      summary: 'Refund all or part of a PAID order (IAM on AWS)',
      description:
        'The amount is reserved on the order before WeChat is asked, so refunds never sum above total_fee. ' +
        'An Idempotency-Key makes a retried request answer the same refund. The membership follows when WeChat ' +
        'reports SUCCESS: ⌊plan days × refunded ÷ total⌋ days are revoked in all.',
      security: operator,
      parameters: [
        {
          name: 'Idempotency-Key',
          in: 'header',
          required: false,
          schema: { type: 'string', pattern: '^[\\x21-\\x7e]{1,128}$' },
        },
      ],
      requestBody: json(
        object(
          {
            outTradeNo: text('A PAID order', { pattern: OUT_TRADE_NO.source }),
            amount: { type: 'integer', minimum: 1, description: 'Fen; default all still refundable' },
            reason: text('refund_desc / reason', { maxLength: 80 }),
          },
          ['outTradeNo'],
        ),
      ),
      responses: {
        '200': success('The refund (usually PROCESSING)', object({ refund: ref('Refund') })),
        ...failures(400, 404, 409, ...WECHAT),
      },
    },
  },
  '/admin/refunds/{outRefundNo}/apply-abnormal': {
    post: {
      operationId: 'adminAbnormal',
      tags: ['admin'],
      summary: 'Re-apply an ABNORMAL v3 refund at WeChat (IAM on AWS)',
      description:
        'WeChat Pay v3 apply-abnormal-refund: to another card of the user (USER_BANK_CARD: bankAccount and realName ' +
        'go to WeChat encrypted, and are neither stored nor logged) or to the merchant’s bank account ' +
        '(MERCHANT_BANK_CARD). The refund goes back to PROCESSING; its SUCCESS or CLOSED is applied once when ' +
        'WeChat reports it. 404 REFUND_NOT_FOUND; 409 REFUND_NOT_ABNORMAL, REFUND_ID_UNKNOWN, ' +
        'ABNORMAL_REFUND_V3_ONLY (v2: re-apply it in the merchant platform); 502 ABNORMAL_REFUND_REFUSED.',
      security: operator,
      parameters: [
        {
          name: 'outRefundNo',
          in: 'path',
          required: true,
          schema: { type: 'string', pattern: '^[0-9A-Za-z_\\-|*@]{1,64}$' },
        },
      ],
      requestBody: json({
        oneOf: [
          object({ type: { const: 'MERCHANT_BANK_CARD' } }),
          object({
            type: { const: 'USER_BANK_CARD' },
            bankType: text('WeChat’s bank code (bank_type), e.g. ICBC_DEBIT', {
              pattern: '^[A-Z0-9_]{1,32}$',
            }),
            bankAccount: text('The card number, 8–32 digits', { pattern: '^\\d{8,32}$' }),
            realName: text('The card holder’s name', { minLength: 1, maxLength: 64 }),
          }),
        ],
      }),
      responses: {
        '200': success(
          'The refund, PROCESSING again',
          object({
            refund: object({
              outRefundNo: text('Our refund number (out_refund_no)'),
              outTradeNo: text('The refunded order', { pattern: OUT_TRADE_NO.source }),
              amount: { type: 'integer', minimum: 1, description: 'refund_fee, integer fen' },
              status: { enum: ['PROCESSING', 'SUCCESS', 'CLOSED', 'ABNORMAL'] },
              reapplications: {
                type: 'array',
                items: object({
                  at: text('When it was re-applied (ISO 8601 UTC)', { format: 'date-time' }),
                  type: { enum: ['USER_BANK_CARD', 'MERCHANT_BANK_CARD'] },
                }),
              },
            }),
          }),
        ),
        ...failures(400, 404, 409, 413, 415, ...WECHAT),
      },
    },
  },
  '/admin/orders/{outTradeNo}': {
    get: {
      operationId: 'adminOrder',
      tags: ['admin'],
      summary: 'The whole stored order (IAM on AWS)',
      security: operator,
      parameters: [outTradeNoParameter],
      responses: {
        '200': success('The stored order', object({ order: { type: 'object' } })),
        ...failures(404, 500),
      },
    },
  },
  '/admin/exceptions': {
    get: {
      operationId: 'adminExceptions',
      tags: ['admin'],
      summary: 'Payment exceptions, newest first (IAM on AWS)',
      security: operator,
      parameters: pageParameters(100, 50),
      responses: {
        '200': success('A page of payment exceptions', page('exceptions', ref('PaymentException'))),
        ...failures(400, 500),
      },
    },
  },
  '/admin/users/{id}': {
    get: {
      operationId: 'adminUser',
      tags: ['admin'],
      summary: 'A user for support: profile, membership, orders (IAM on AWS)',
      security: operator,
      parameters: [userIdParameter],
      responses: {
        '200': success(
          'The user',
          object({
            user: ref('User'),
            createdAt: text('ISO 8601 UTC', { format: 'date-time' }),
            updatedAt: text('ISO 8601 UTC', { format: 'date-time' }),
            orders: { type: 'array', items: ref('Order') },
          }),
        ),
        ...failures(404, 500),
      },
    },
    delete: {
      operationId: 'adminDeleteUser',
      tags: ['admin'],
      summary: 'Cancel an account on a support request: same effects as DELETE /wechat/me (IAM on AWS)',
      security: operator,
      parameters: [userIdParameter],
      responses: {
        '200': DELETED,
        ...failures(404, 409, ...WECHAT),
      },
    },
  },
  '/wechat/notify': {
    post: {
      operationId: 'payNotify',
      tags: ['wechat'],
      summary: 'WeChat Pay’s notify_url (a Lambda Function URL on AWS; this route locally)',
      description:
        'v2: signed XML, answered with WeChat’s XML (SUCCESS or FAIL, which WeChat retries). v3: Wechatpay-* ' +
        'signed JSON with an AES-256-GCM resource, answered 200/204 or a 4xx/5xx {code, message}.',
      requestBody: {
        required: true,
        content: {
          'text/xml': { schema: { type: 'string' } },
          'application/json': { schema: { type: 'object' } },
        },
      },
      responses: {
        '200': {
          description: 'Acknowledged (or v2 FAIL)',
          content: {
            'text/xml': { schema: { type: 'string' } },
            'application/json': { schema: { type: 'object' } },
          },
        },
        '204': { description: 'v3: acknowledged' },
        default: {
          description: 'v3: refused, WeChat delivers again',
          content: {
            'application/json': { schema: object({ code: { type: 'string' }, message: { type: 'string' } }) },
          },
        },
      },
    },
  },
};

/** The OpenAPI 3.1 document; `servers` defaults to the local API. */
export function openApiDocument(servers = [{ url: 'http://127.0.0.1:3000', description: 'npm start' }]) {
  return {
    openapi: '3.1.0',
    info: {
      title: 'WeChat Mini Program backend',
      version: '0.1.0',
      description:
        'Sign-in, profile and memberships paid with WeChat Pay (v2 and v3). Every answer is the envelope ' +
        '`{success, message, data}`; a failure carries `code` (and `errors: [{field, code}]` for validation).',
    },
    servers,
    tags: [
      { name: 'session', description: 'wx.login → session token' },
      { name: 'profile', description: 'The signed-in user' },
      { name: 'payments', description: 'Plans, orders and WeChat Pay' },
      { name: 'h5', description: 'Official-account H5 pages' },
      { name: 'wechat', description: 'Called by WeChat, not by the mini-program' },
      { name: 'admin', description: 'Operators (IAM-authorized on AWS)' },
    ],
    paths,
    components: {
      schemas,
      securitySchemes: {
        session: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' },
        operator: {
          type: 'apiKey',
          in: 'header',
          name: 'Authorization',
          description: 'AWS SigV4 (execute-api) with the operator’s IAM credentials; `npm run admin` signs',
        },
      },
    },
  };
}
