import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { formatCstCompact } from '#lib/wechat-pay/time';
import {
  buildPayParamsV2,
  formatTimeExpire,
  nonceStr,
  parseTimeEnd,
  parseV2Xml,
  parseV2XmlValidated,
  signV2,
  toV2Xml,
  V2_SUCCESS_REPLY,
  V2XmlError,
  v2FailReply,
  verifyV2Sign,
} from '#lib/wechat-pay/v2-protocol';

/** Official signing example (pay.weixin.qq.com jsapi.php?chapter=4_3), vectors 1–2. */
const OFFICIAL_PARAMS = {
  appid: 'wxd930ea5d5a258f4f',
  mch_id: '10000100',
  device_info: '1000',
  body: 'test',
  nonce_str: 'ibuaiVcKdpRxkhJA',
};
const OFFICIAL_KEY = '192006250b4c09247ec02edce69f6a2d';
const OFFICIAL_MD5 = '9A0A8659F005D6984697E2CA0A9CF3B7';
const OFFICIAL_HMAC = '6A9AE1657590FD6257D693A078E1C3E4BB6BA4DC30B23E0EE2496E54170DACD6';

/** Official `wx.requestPayment` example (doc/v2/merchant/4011939566), vectors 3–4. */
const PAY = {
  appId: 'wxd678efh567hg6787',
  prepayId: 'wx2017033010242291fcfe0db70013231072',
  timeStamp: '1490840662',
  nonceStr: '5K8264ILTKCH16CQ2502SI8ZNMTM67VS',
  key: 'qazwsxedcrfvtgbyhnujmikolp111111',
};

/** Official §4.4 notify sample; its sign cannot be verified (the key is unpublished), so parser tests only. */
const OFFICIAL_NOTIFY = `<xml>
  <appid><![CDATA[wx2421b1c4370ec43b]]></appid>
  <attach><![CDATA[支付测试]]></attach>
  <bank_type><![CDATA[CFT]]></bank_type>
  <fee_type><![CDATA[CNY]]></fee_type>
  <is_subscribe><![CDATA[Y]]></is_subscribe>
  <mch_id><![CDATA[10000100]]></mch_id>
  <nonce_str><![CDATA[5d2b6c2a8db53831f7eda20af46e531c]]></nonce_str>
  <openid><![CDATA[oUpF8uMEb4qRXf22hE3X68TekukE]]></openid>
  <out_trade_no><![CDATA[1409811653]]></out_trade_no>
  <result_code><![CDATA[SUCCESS]]></result_code>
  <return_code><![CDATA[SUCCESS]]></return_code>
  <sign><![CDATA[B552ED6B279343CB493C5DD0D78AB241]]></sign>
  <time_end><![CDATA[20140903131540]]></time_end>
  <total_fee>1</total_fee>
  <coupon_fee><![CDATA[10]]></coupon_fee>
  <coupon_count><![CDATA[1]]></coupon_count>
  <coupon_type><![CDATA[CASH]]></coupon_type>
  <coupon_id><![CDATA[10000]]></coupon_id>
  <trade_type><![CDATA[JSAPI]]></trade_type>
  <transaction_id><![CDATA[1004400740201409030005092168]]></transaction_id>
</xml>`;

/** A notify signed with our own test key, the base of the X-series cases. */
function signedNotify(
  signType: 'MD5' | 'HMAC-SHA256',
  extra: Record<string, string> = {},
): Record<string, string> {
  const params: Record<string, string> = {
    appid: 'wx2421b1c4370ec43b',
    mch_id: '10000100',
    nonce_str: '5d2b6c2a8db53831f7eda20af46e531c',
    out_trade_no: '1409811653',
    result_code: 'SUCCESS',
    return_code: 'SUCCESS',
    total_fee: '1',
    ...extra,
  };
  params.sign = signV2(params, OFFICIAL_KEY, signType);
  return params;
}

/** Runs `act`, expecting a V2XmlError, and returns its reason. */
function reasonOf(act: () => unknown): string {
  try {
    act();
  } catch (error) {
    if (error instanceof V2XmlError) return error.reason;
    throw error;
  }
  throw new Error('expected a V2XmlError');
}

function flipFirstChar(sign: string): string {
  return (sign[0] === 'A' ? 'B' : 'A') + sign.slice(1);
}

describe('signV2', () => {
  it('returns the official MD5 sign when given the official example', () => {
    // Prepare
    const params = { ...OFFICIAL_PARAMS };

    // Act
    const sign = signV2(params, OFFICIAL_KEY, 'MD5');

    // Assess
    expect(sign).toBe(OFFICIAL_MD5);
  });

  it('returns the official HMAC-SHA256 sign when given the official example', () => {
    // Prepare
    const params = { ...OFFICIAL_PARAMS };

    // Act
    const sign = signV2(params, OFFICIAL_KEY, 'HMAC-SHA256');

    // Assess
    expect(sign).toBe(OFFICIAL_HMAC);
  });

  it('ignores sign, empty and undefined fields when they are present', () => {
    // Prepare
    const params = { ...OFFICIAL_PARAMS, sign: 'ANYTHING', attach: '', detail: undefined };

    // Act
    const sign = signV2(params, OFFICIAL_KEY, 'MD5');

    // Assess
    expect(sign).toBe(OFFICIAL_MD5);
  });

  it('signs a number like its decimal string when a field is a safe integer', () => {
    // Prepare
    const asString = { ...OFFICIAL_PARAMS, total_fee: '100' };
    const asNumber = { ...OFFICIAL_PARAMS, total_fee: 100 };

    // Act
    const fromNumber = signV2(asNumber, OFFICIAL_KEY, 'MD5');

    // Assess
    expect(fromNumber).toBe(signV2(asString, OFFICIAL_KEY, 'MD5'));
  });

  it('sorts by ASCII code when names differ in case', () => {
    // Prepare: ASCII puts every upper-case letter before every lower-case one; localeCompare would not.
    const params = { b: '2', a: '3', B: '1' };
    const expected = createHash('md5').update('B=1&a=3&b=2&key=k').digest('hex').toUpperCase();

    // Act
    const sign = signV2(params, 'k', 'MD5');

    // Assess
    expect(sign).toBe(expected);
  });

  it('throws TypeError when the key is empty or an amount is not an integer', () => {
    // Prepare
    const params = { ...OFFICIAL_PARAMS };

    // Act
    const emptyKey = () => signV2(params, '', 'MD5');
    const floatAmount = () => signV2({ ...params, total_fee: 0.1 }, OFFICIAL_KEY, 'MD5');

    // Assess
    expect(emptyKey).toThrow(TypeError);
    expect(floatAmount).toThrow(TypeError);
  });
});

describe('verifyV2Sign', () => {
  it('returns true when the official MD5 and HMAC-SHA256 signs are checked', () => {
    // Prepare
    const md5 = { ...OFFICIAL_PARAMS, sign: OFFICIAL_MD5 };
    const hmac = {
      ...OFFICIAL_PARAMS,
      sign_type: 'HMAC-SHA256',
      sign: signV2({ ...OFFICIAL_PARAMS, sign_type: 'HMAC-SHA256' }, OFFICIAL_KEY, 'HMAC-SHA256'),
    };

    // Act
    const md5Ok = verifyV2Sign(md5, OFFICIAL_KEY, ['MD5']);
    const hmacOk = verifyV2Sign(hmac, OFFICIAL_KEY, ['HMAC-SHA256']);

    // Assess
    expect(md5Ok).toBe(true);
    expect(hmacOk).toBe(true);
  });

  it('chooses HMAC-SHA256 by length when sign_type is absent', () => {
    // Prepare: the official HMAC vector carries no sign_type field.
    const params = { ...OFFICIAL_PARAMS, sign: OFFICIAL_HMAC };

    // Act
    const ok = verifyV2Sign(params, OFFICIAL_KEY, ['HMAC-SHA256']);

    // Assess
    expect(ok).toBe(true);
  });

  it('returns false when one character of the sign is flipped', () => {
    // Prepare
    const md5 = signedNotify('MD5');
    const hmac = signedNotify('HMAC-SHA256');
    md5.sign = flipFirstChar(md5.sign ?? '');
    hmac.sign = flipFirstChar(hmac.sign ?? '');

    // Act
    const md5Ok = verifyV2Sign(md5, OFFICIAL_KEY, ['MD5', 'HMAC-SHA256']);
    const hmacOk = verifyV2Sign(hmac, OFFICIAL_KEY, ['MD5', 'HMAC-SHA256']);

    // Assess
    expect(md5Ok).toBe(false);
    expect(hmacOk).toBe(false);
  });

  it('returns false when a signed field is changed', () => {
    // Prepare
    const params = { ...signedNotify('MD5'), total_fee: '100' };

    // Act
    const ok = verifyV2Sign(params, OFFICIAL_KEY, ['MD5']);

    // Assess
    expect(ok).toBe(false);
  });

  it('returns false when the sign is missing or empty', () => {
    // Prepare
    const { sign: _dropped, ...missing } = signedNotify('MD5');
    const empty = { ...signedNotify('MD5'), sign: '' };

    // Act
    const missingOk = verifyV2Sign(missing, OFFICIAL_KEY, ['MD5', 'HMAC-SHA256']);
    const emptyOk = verifyV2Sign(empty, OFFICIAL_KEY, ['MD5', 'HMAC-SHA256']);

    // Assess
    expect(missingOk).toBe(false);
    expect(emptyOk).toBe(false);
  });

  it('returns false when the sign has the wrong length or is not hex', () => {
    // Prepare
    const good = signedNotify('MD5');
    const short = { ...good, sign: (good.sign ?? '').slice(0, 31) };
    const long = { ...good, sign: `${good.sign}0` };
    const notHex = { ...good, sign: `${(good.sign ?? '').slice(0, 31)}Z` };

    // Act
    const results = [short, long, notHex].map((p) => verifyV2Sign(p, OFFICIAL_KEY, ['MD5', 'HMAC-SHA256']));

    // Assess
    expect(results).toEqual([false, false, false]);
  });

  it('includes unknown extension fields when they are signed (X4)', () => {
    // Prepare
    const params = signedNotify('MD5', { coupon_fee_0: '10', brand_new_field: 'x' });
    const stripped = { ...params };
    delete stripped.brand_new_field;

    // Act
    const withField = verifyV2Sign(params, OFFICIAL_KEY, ['MD5']);
    const withoutField = verifyV2Sign(stripped, OFFICIAL_KEY, ['MD5']);

    // Assess
    expect(withField).toBe(true);
    expect(withoutField).toBe(false);
  });

  it('returns false when sign_type names an algorithm that is not allowed', () => {
    // Prepare
    const params = signedNotify('HMAC-SHA256', { sign_type: 'HMAC-SHA256' });

    // Act
    const md5Only = verifyV2Sign(params, OFFICIAL_KEY, ['MD5']);
    const hmacAllowed = verifyV2Sign(params, OFFICIAL_KEY, ['HMAC-SHA256']);

    // Assess
    expect(md5Only).toBe(false);
    expect(hmacAllowed).toBe(true);
  });

  it('returns false when a 32-char MD5 sign arrives and only HMAC-SHA256 is allowed (X3)', () => {
    // Prepare: the community-reported "MD5 despite HMAC" notify, without sign_type.
    const params = signedNotify('MD5');

    // Act
    const hmacOnly = verifyV2Sign(params, OFFICIAL_KEY, ['HMAC-SHA256']);
    const both = verifyV2Sign(params, OFFICIAL_KEY, ['MD5', 'HMAC-SHA256']);

    // Assess
    expect(hmacOnly).toBe(false);
    expect(both).toBe(true);
  });

  it('returns false when sign_type disagrees with the sign length or is unknown', () => {
    // Prepare
    const mislabelled = signedNotify('MD5', { sign_type: 'HMAC-SHA256' });
    const unknown = signedNotify('MD5', { sign_type: 'SHA1' });
    const lowerCase = signedNotify('MD5', { sign_type: 'md5' });

    // Act
    const results = [mislabelled, unknown, lowerCase].map((p) =>
      verifyV2Sign(p, OFFICIAL_KEY, ['MD5', 'HMAC-SHA256']),
    );

    // Assess
    expect(results).toEqual([false, false, false]);
  });

  it('accepts a lower-case hex sign when it is otherwise correct', () => {
    // Prepare: hex case carries no information, so lower case is the same MAC (documented choice).
    const md5 = signedNotify('MD5');
    const hmac = signedNotify('HMAC-SHA256');
    md5.sign = (md5.sign ?? '').toLowerCase();
    hmac.sign = (hmac.sign ?? '').toLowerCase();

    // Act
    const md5Ok = verifyV2Sign(md5, OFFICIAL_KEY, ['MD5']);
    const hmacOk = verifyV2Sign(hmac, OFFICIAL_KEY, ['HMAC-SHA256']);

    // Assess
    expect(md5Ok).toBe(true);
    expect(hmacOk).toBe(true);
  });

  it('returns false when the key is wrong or empty', () => {
    // Prepare
    const params = signedNotify('MD5');

    // Act
    const wrong = verifyV2Sign(params, PAY.key, ['MD5']);
    const empty = verifyV2Sign(params, '', ['MD5']);

    // Assess
    expect(wrong).toBe(false);
    expect(empty).toBe(false);
  });

  it('returns false when nothing is allowed', () => {
    // Prepare
    const params = signedNotify('MD5');

    // Act
    const ok = verifyV2Sign(params, OFFICIAL_KEY, []);

    // Assess
    expect(ok).toBe(false);
  });

  it('verifies a notify when it went through toV2Xml and parseV2Xml', () => {
    // Prepare
    const params = signedNotify('HMAC-SHA256', {
      sign_type: 'HMAC-SHA256',
      attach: '会员 <年卡> & ]]> 续费 ',
    });

    // Act
    const ok = verifyV2Sign(parseV2Xml(toV2Xml(params)), OFFICIAL_KEY, ['HMAC-SHA256']);

    // Assess
    expect(ok).toBe(true);
  });
});

describe('buildPayParamsV2', () => {
  it('returns the official MD5 paySign when given the official example', () => {
    // Prepare
    const input = { ...PAY, signType: 'MD5' as const };

    // Act
    const params = buildPayParamsV2(input);

    // Assess
    expect(params).toEqual({
      timeStamp: '1490840662',
      nonceStr: '5K8264ILTKCH16CQ2502SI8ZNMTM67VS',
      package: 'prepay_id=wx2017033010242291fcfe0db70013231072',
      signType: 'MD5',
      paySign: '22D9B4E54AB1950F51E0649E8810ACD6',
    });
  });

  it('returns the HMAC-SHA256 paySign of vector 4 when signType is HMAC-SHA256', () => {
    // Prepare
    const input = { ...PAY, signType: 'HMAC-SHA256' as const };

    // Act
    const params = buildPayParamsV2(input);

    // Assess
    expect(params.signType).toBe('HMAC-SHA256');
    expect(params.paySign).toBe('FB9D1EFB5C509131BBFF729F88A99CA2DE9B724D06D3B3262832A53083862BC0');
  });

  it('fills timeStamp with unix seconds and nonceStr with 32 characters when they are omitted', () => {
    // Prepare
    const before = Math.floor(Date.now() / 1000);

    // Act
    const params = buildPayParamsV2({
      appId: PAY.appId,
      prepayId: PAY.prepayId,
      signType: 'MD5',
      key: PAY.key,
    });

    // Assess
    const after = Math.floor(Date.now() / 1000);
    expect(params.timeStamp).toMatch(/^\d{10}$/);
    expect(Number(params.timeStamp)).toBeGreaterThanOrEqual(before);
    expect(Number(params.timeStamp)).toBeLessThanOrEqual(after);
    expect(params.nonceStr).toMatch(/^[0-9A-Za-z]{32}$/);
    expect(params.paySign).toBe(
      signV2(
        {
          appId: PAY.appId,
          timeStamp: params.timeStamp,
          nonceStr: params.nonceStr,
          package: params.package,
          signType: 'MD5',
        },
        PAY.key,
        'MD5',
      ),
    );
  });

  it('throws TypeError when the prepayId already has the prepay_id= prefix or inputs are malformed', () => {
    // Prepare
    const base = { ...PAY, signType: 'MD5' as const };

    // Act
    const attempts = [
      () => buildPayParamsV2({ ...base, prepayId: `prepay_id=${PAY.prepayId}` }),
      () => buildPayParamsV2({ ...base, prepayId: '' }),
      () => buildPayParamsV2({ ...base, appId: '' }),
      () => buildPayParamsV2({ ...base, timeStamp: '1490840662000.5' }),
      () => buildPayParamsV2({ ...base, nonceStr: 'has space' }),
      () => buildPayParamsV2({ ...base, key: '' }),
    ];

    // Assess
    for (const attempt of attempts) expect(attempt).toThrow(TypeError);
  });
});

describe('nonceStr', () => {
  it('returns 32 alphanumeric characters when called without a length', () => {
    // Prepare
    const pattern = /^[0-9A-Za-z]{32}$/;

    // Act
    const nonces = Array.from({ length: 50 }, () => nonceStr());

    // Assess
    for (const nonce of nonces) expect(nonce).toMatch(pattern);
    expect(new Set(nonces).size).toBe(50);
  });

  it('returns the requested length when given one from 1 to 32', () => {
    // Prepare
    const lengths = [1, 16, 32];

    // Act
    const nonces = lengths.map((n) => nonceStr(n));

    // Assess
    expect(nonces.map((n) => n.length)).toEqual(lengths);
  });

  it('throws RangeError when the length is out of range', () => {
    // Prepare
    const bad = [0, 33, 1.5, -1, Number.NaN];

    // Act
    const attempts = bad.map((n) => () => nonceStr(n));

    // Assess
    for (const attempt of attempts) expect(attempt).toThrow(RangeError);
  });
});

describe('toV2Xml', () => {
  it('wraps strings in CDATA and leaves numbers bare when given both', () => {
    // Prepare
    const params = { appid: 'wx2421b1c4370ec43b', total_fee: 1, attach: undefined, body: '' };

    // Act
    const xml = toV2Xml(params);

    // Assess
    expect(xml).toBe(
      '<xml><appid><![CDATA[wx2421b1c4370ec43b]]></appid><total_fee>1</total_fee><body><![CDATA[]]></body></xml>',
    );
  });

  it('splits the CDATA section when a value contains ]]>', () => {
    // Prepare
    const params = { attach: 'a]]>b' };

    // Act
    const xml = toV2Xml(params);

    // Assess
    expect(xml).toBe('<xml><attach><![CDATA[a]]]]><![CDATA[>b]]></attach></xml>');
  });

  it('throws TypeError when a field name is not [A-Za-z0-9_]+', () => {
    // Prepare
    const names = ['a b', 'a>', 'x:y', '', 'a/><b'];

    // Act
    const attempts = names.map((name) => () => toV2Xml({ [name]: '1' }));

    // Assess
    for (const attempt of attempts) expect(attempt).toThrow(TypeError);
  });

  it('throws TypeError when a value cannot be carried by XML 1.0 or a number is not an integer', () => {
    // Prepare
    const values = [{ a: 'nul\u0000' }, { a: 'lone \uD800' }, { a: 1.5 }, { a: Number.NaN }];

    // Act
    const attempts = values.map((params) => () => toV2Xml(params));

    // Assess
    for (const attempt of attempts) expect(attempt).toThrow(TypeError);
  });
});

describe('parseV2Xml', () => {
  it('returns every field as a string when given the official notify sample', () => {
    // Prepare
    const raw = OFFICIAL_NOTIFY;

    // Act
    const params = parseV2Xml(raw);

    // Assess
    expect(params.total_fee).toBe('1');
    expect(params.attach).toBe('支付测试');
    expect(params.out_trade_no).toBe('1409811653');
    expect(params.transaction_id).toBe('1004400740201409030005092168');
    expect(params.time_end).toBe('20140903131540');
    expect(Object.keys(params)).toHaveLength(20);
    for (const value of Object.values(params)) expect(typeof value).toBe('string');
  });

  it('returns a null-prototype object when parsing succeeds', () => {
    // Prepare
    const raw = '<xml><a>1</a></xml>';

    // Act
    const params = parseV2Xml(raw);

    // Assess
    expect(Object.getPrototypeOf(params)).toBeNull();
    expect({ ...params }).toEqual({ a: '1' });
  });

  it('accepts an XML declaration and keeps surrounding spaces of a value', () => {
    // Prepare
    const raw =
      '<?xml version="1.0" encoding="UTF-8"?>\n<xml><attach><![CDATA[ a b ]]></attach><n> 2 </n></xml>';

    // Act
    const params = parseV2Xml(raw);

    // Assess
    expect({ ...params }).toEqual({ attach: ' a b ', n: ' 2 ' });
  });

  it('returns an empty string when an element is empty', () => {
    // Prepare
    const raw = '<xml><a></a><b/><c><![CDATA[]]></c></xml>';

    // Act
    const params = parseV2Xml(raw);

    // Assess
    expect({ ...params }).toEqual({ a: '', b: '', c: '' });
  });

  it('keeps numbers as exact strings when they look like numbers (X13)', () => {
    // Prepare
    const raw =
      '<xml><total_fee>1e2</total_fee><out_trade_no>000123</out_trade_no><cash_fee>0x64</cash_fee><x>true</x></xml>';

    // Act
    const params = parseV2Xml(raw);

    // Assess
    expect({ ...params }).toEqual({ total_fee: '1e2', out_trade_no: '000123', cash_fee: '0x64', x: 'true' });
  });

  it('leaves entity references unexpanded when the body uses them', () => {
    // Prepare
    const raw = '<xml><a>&amp;&#65;&lt;</a></xml>';

    // Act
    const params = parseV2Xml(raw);

    // Assess
    expect(params.a).toBe('&amp;&#65;&lt;');
  });

  it("refuses with 'dtd' when the body declares an external entity (X9)", () => {
    // Prepare
    const raw =
      '<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY e SYSTEM "file:///etc/passwd">]><xml><a>&e;</a></xml>';

    // Act
    const reason = reasonOf(() => parseV2Xml(raw));

    // Assess
    expect(reason).toBe('dtd');
  });

  it("refuses with 'dtd' when an internal entity supplies a value (X10)", () => {
    // Prepare
    const raw = '<!DOCTYPE xml [<!ENTITY a "SUCCESS">]><xml><result_code>&a;</result_code></xml>';

    // Act
    const reason = reasonOf(() => parseV2Xml(raw));

    // Assess
    expect(reason).toBe('dtd');
  });

  it("refuses with 'dtd' when given billion laughs or a large entity referenced many times (X11)", () => {
    // Prepare
    const levels = Array.from(
      { length: 9 },
      (_, i) => `<!ENTITY lol${i + 1} "${`&lol${i};`.repeat(10)}">`,
    ).join('');
    const laughs = `<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol0 "lol">${levels}]><xml><a>&lol9;</a></xml>`;
    const wide = `<!DOCTYPE x [<!ENTITY big "${'A'.repeat(5000)}">]><xml><a>${'&big;'.repeat(2000)}</a></xml>`;

    // Act
    const laughsReason = reasonOf(() => parseV2Xml(laughs));
    const wideReason = reasonOf(() => parseV2Xml(wide, 1_000_000));

    // Assess
    expect(laughsReason).toBe('dtd');
    expect(wideReason).toBe('dtd');
  });

  it("refuses with 'dtd' when the declaration is lower-case or an ENTITY stands alone", () => {
    // Prepare
    const bodies = ['<!doctype xml><xml><a>1</a></xml>', '<xml><!ENTITY a "b"><a>1</a></xml>'];

    // Act
    const reasons = bodies.map((raw) => reasonOf(() => parseV2Xml(raw)));

    // Assess
    expect(reasons).toEqual(['dtd', 'dtd']);
  });

  it('does not expand 200 000 character references when the cap is raised (X12)', () => {
    // Prepare
    const raw = `<xml><a>${'&#65;'.repeat(200_000)}</a></xml>`;

    // Act
    const capped = reasonOf(() => parseV2Xml(raw));
    const uncapped = parseV2Xml(raw, 2_000_000);

    // Assess
    expect(capped).toBe('too_large');
    expect(uncapped.a).toHaveLength(1_000_000);
    expect(uncapped.a?.startsWith('&#65;&#65;')).toBe(true);
  });

  it("refuses with 'not_flat' when a tag is duplicated (X14)", () => {
    // Prepare
    const raw = '<xml><total_fee>1</total_fee><total_fee>100</total_fee></xml>';

    // Act
    const reason = reasonOf(() => parseV2Xml(raw));

    // Assess
    expect(reason).toBe('not_flat');
  });

  it("refuses with 'not_flat' when an element is nested or text is mixed with fields (X14)", () => {
    // Prepare
    const bodies = [
      '<xml><a><b>1</b></a></xml>',
      '<xml>hello<a>1</a></xml>',
      '<xml>text only</xml>',
      '<xml></xml>',
      '<root><a>1</a></root>',
      '<?pi x?><xml><a>1</a></xml>',
    ];

    // Act
    const reasons = bodies.map((raw) => reasonOf(() => parseV2Xml(raw)));

    // Assess
    expect(reasons).toEqual(['not_flat', 'not_flat', 'not_flat', 'not_flat', 'not_flat', 'not_flat']);
  });

  it("refuses with 'malformed' when there are two root elements (X14)", () => {
    // Prepare
    const raw = '<xml><a>1</a></xml><xml><a>2</a></xml>';

    // Act
    const reason = reasonOf(() => parseV2Xml(raw));

    // Assess
    expect(reason).toBe('malformed');
  });

  it("refuses with 'forbidden_key' when a tag would reach Object.prototype (X15)", () => {
    // Prepare
    const names = ['__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty', 'valueOf'];

    // Act
    const reasons = names.map((name) => reasonOf(() => parseV2Xml(`<xml><${name}>1</${name}></xml>`)));

    // Assess
    expect(reasons).toEqual(names.map(() => 'forbidden_key'));
  });

  it("refuses with 'bad_name' when a field name is outside [A-Za-z0-9_]+", () => {
    // Prepare
    const bodies = ['<xml><x:a>1</x:a></xml>', '<xml><a-b>1</a-b></xml>', '<xml><?pi x?><a>1</a></xml>'];

    // Act
    const reasons = bodies.map((raw) => reasonOf(() => parseV2Xml(raw)));

    // Assess
    expect(reasons).toEqual(['bad_name', 'bad_name', 'bad_name']);
  });

  it("refuses with 'malformed' when given JSON, nothing, a truncated body, a BOM or a NUL (X16)", () => {
    // Prepare
    const bodies = [
      '{"return_code":"SUCCESS"}',
      '',
      '<xml><a>1</xml>',
      '<xml><a>1</a>',
      '\uFEFF<xml><a>1</a></xml>',
      '<xml><a>1</a></xml>trailing',
      'ok',
      '<xml><a>nul\u0000</a></xml>',
    ];

    // Act
    const reasons = bodies.map((raw) => reasonOf(() => parseV2Xml(raw)));

    // Assess
    expect(reasons).toEqual(bodies.map(() => 'malformed'));
  });

  it("refuses with 'too_large' when the body exceeds 64 KB (X17)", () => {
    // Prepare
    const filler = 'a'.repeat(65_536);
    const raw = `<xml><a>${filler}</a></xml>`;

    // Act
    const reason = reasonOf(() => parseV2Xml(raw));

    // Assess
    expect(reason).toBe('too_large');
  });

  it('counts UTF-8 bytes rather than characters when applying the cap', () => {
    // Prepare: 18 characters of markup + 10 Chinese characters = 28 characters but 48 UTF-8 bytes.
    const raw = `<xml><a>${'支'.repeat(10)}</a></xml>`;

    // Act
    const reason = reasonOf(() => parseV2Xml(raw, 47));
    const params = parseV2Xml(raw, 48);

    // Assess
    expect(raw).toHaveLength(28);
    expect(reason).toBe('too_large');
    expect(params.a).toBe('支'.repeat(10));
  });

  it('returns the same fields when given the output of toV2Xml', () => {
    // Prepare
    const params = {
      return_code: 'SUCCESS',
      attach: '会员年卡 ]]> <b>&amp;</b> 🎉',
      detail: '{"goods_detail":[{"goods_id":"iphone6s_16G"}]}',
      total_fee: 100,
      coupon_fee_0: '10',
      empty: '',
    };

    // Act
    const parsed = parseV2Xml(toV2Xml(params));

    // Assess
    expect({ ...parsed }).toEqual({ ...params, total_fee: '100' });
  });

  it('reads every body exactly as the validating reader does, in one pass or by falling back to it', () => {
    // Prepare: the flat shape WeChat sends, its near misses, and the refused shapes.
    const values = [
      '',
      ' ',
      '  x  ',
      '1800',
      '会员 🎉',
      'a]b',
      'a]]b',
      ']',
      'x]]>y',
      'a\tb\nc',
      '&amp;',
      'a>b',
    ];
    const bodies = [
      OFFICIAL_NOTIFY,
      V2_SUCCESS_REPLY,
      v2FailReply('签名失败'),
      ...values.map((value) => toV2Xml({ return_code: 'SUCCESS', field: value, total_fee: 1 })),
      ...values.map((value) => `<xml><a>${value}</a></xml>`),
      ...values.map((value) => `<xml>\n  <a><![CDATA[${value}]]></a>\n  <b>2</b>\n</xml>`),
      '<xml><a><![CDATA[]]></a></xml>',
      '<xml><a></a><b/></xml>',
      '<xml><a>1</a><a>2</a></xml>',
      '<xml><xml>1</xml></xml>',
      '<xml><a><b>1</b></a></xml>',
      '<xml></xml>',
      '<xml> </xml>',
      '<xml><a>1</a></xml>\n',
      '<xml><a>1</a><xml><b>2</b></xml>',
      '<xml><a>1\r\n2</a></xml>',
      '<xml><a>x</b></xml>',
      '<xml><a>1</a ></xml>',
      '<xml><a><![CDATA[1]]>2</a></xml>',
      ...['__proto__', 'constructor', 'prototype', 'toString', '__defineGetter__'].map(
        (name) => `<xml><${name}>1</${name}></xml>`,
      ),
    ];
    const outcome = (read: (raw: string) => Record<string, string>, raw: string) => {
      try {
        return { fields: { ...read(raw) } };
      } catch (error) {
        return { reason: (error as V2XmlError).reason };
      }
    };

    // Act
    const ours = bodies.map((raw) => outcome(parseV2Xml, raw));
    const validated = bodies.map((raw) => outcome(parseV2XmlValidated, raw));

    // Assess
    expect(ours).toEqual(validated);
    expect(ours.filter((result) => 'fields' in result).length).toBeGreaterThan(30);
  });
});

describe('parseTimeEnd', () => {
  it('reads the time as China Standard Time when given the official time_end', () => {
    // Prepare
    const timeEnd = '20140903131540';

    // Act
    const iso = parseTimeEnd(timeEnd);

    // Assess
    expect(iso).toBe('2014-09-03T05:15:40.000Z');
  });

  it('crosses to the previous UTC day when the CST time is before 08:00', () => {
    // Prepare
    const timeEnd = '20240301070000';

    // Act
    const iso = parseTimeEnd(timeEnd);

    // Assess
    expect(iso).toBe('2024-02-29T23:00:00.000Z');
  });

  it("throws 'bad_time' when the date is not on the calendar or the format is wrong", () => {
    // Prepare
    const bad = [
      '20140230120000',
      '20230229120000',
      '20141301120000',
      '20140900120000',
      '20140903240000',
      '20140903126000',
      '20140903125960',
      '2014090313154',
      '201409031315400',
      '2014-09-03 13:15:40',
      ' 20140903131540',
      '２０１４０９０３１３１５４０',
      '00010101000000',
      '',
    ];

    // Act
    const reasons = bad.map((value) => reasonOf(() => parseTimeEnd(value)));

    // Assess
    expect(reasons).toEqual(bad.map(() => 'bad_time'));
  });
});

describe('formatTimeExpire', () => {
  it('is time.ts formatCstCompact under the v2 field name', () => {
    // Assess
    expect(formatTimeExpire).toBe(formatCstCompact);
  });
});

describe('notify replies', () => {
  it('returns the documented SUCCESS reply when the notify is acknowledged', () => {
    // Prepare
    const expected =
      '<xml><return_code><![CDATA[SUCCESS]]></return_code><return_msg><![CDATA[OK]]></return_msg></xml>';

    // Act
    const parsed = parseV2Xml(V2_SUCCESS_REPLY);

    // Assess
    expect(V2_SUCCESS_REPLY).toBe(expected);
    expect({ ...parsed }).toEqual({ return_code: 'SUCCESS', return_msg: 'OK' });
  });

  it('returns a FAIL reply with the message CDATA-escaped when the notify is refused', () => {
    // Prepare
    const message = '签名失败 ]]> <x>';

    // Act
    const reply = v2FailReply(message);

    // Assess
    expect(reply).toBe(
      '<xml><return_code><![CDATA[FAIL]]></return_code><return_msg><![CDATA[签名失败 ]]]]><![CDATA[> <x>]]></return_msg></xml>',
    );
    expect({ ...parseV2Xml(reply) }).toEqual({ return_code: 'FAIL', return_msg: message });
  });
});
