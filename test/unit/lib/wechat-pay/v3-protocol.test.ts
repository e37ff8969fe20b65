import {
  createPrivateKey,
  createPublicKey,
  createSecretKey,
  generateKeyPairSync,
  type KeyObject,
} from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  AUTH_SCHEME,
  aesGcmDecrypt,
  aesGcmEncrypt,
  BASE64_PATTERN,
  buildAuthorization,
  buildPayParamsV3,
  createVerifier,
  decodeBase64Strict,
  decryptResource,
  MAX_SKEW_SECONDS,
  parseAuthorization,
  signResponse,
  signRsaSha256,
  V3DecryptError,
  V3SignatureError,
  verifyAuthorization,
  verifyRsaSha256,
  wechatpayHeaders,
} from '#lib/wechat-pay/v3-protocol';

// Test keys only (see test/fixtures/wechat-pay/README.md for provenance).
const fixture = (name: string): string =>
  readFileSync(new URL(`../../../fixtures/wechat-pay/${name}`, import.meta.url), 'utf8');

/** Official WeChat Pay doc test merchant key ("apiclient_test_key.pem"), vectors 5–8. */
const officialMerchantKey = createPrivateKey(fixture('official-apiclient-test-key.pem'));
/** Official WeChat Pay public key of vector 9 (no private half available). */
const officialWechatPayPublicKeyPem = fixture('official-wechatpay-public-key.pem');
/** wechatpay-go test key: private half of certificates D7CE59D1F522D701 and F5765756002FDD77. */
const goKey = createPrivateKey(fixture('go-test-private-key.pem'));
const goNotifyCert = fixture('go-notify-cert-D7CE59D1F522D701.pem');
const goPlatformCert = fixture('go-platform-cert-F5765756002FDD77.pem');
/** wechatpay-axios-plugin test key: private half of certificate BE2A2344B984167B. */
const axiosKey = createPrivateKey(fixture('axios-apiclient-key.pem'));
const axiosServerCert = fixture('axios-apiserver-cert-BE2A2344B984167B.pem');
/** wechatpay-java test "WeChat Pay public key" pair. */
const javaKey = createPrivateKey(fixture('java-wechatpay-private-key.pem'));
const javaPublicKeyPem = fixture('java-wechatpay-public-key.pem');

const OFFICIAL = {
  mchId: '1900007291',
  serialNo: '408B07E79B8269FEC3D5D3E6AB8ED163A6A380DB',
  timestamp: 1554208460,
  nonce: '593BEC0C930BF1AFEB40B4A08C8FB242',
};

const VECTOR5_BODY =
  '{"appid":"wxd678efh567hg6787","mchid":"1900007291","description":"Image形象店-深圳腾大-QQ公仔","out_trade_no":"1217752501201407033233368018","notify_url":"https://www.weixin.qq.com/wxpay/pay.php","amount":{"total":100,"currency":"CNY"},"payer":{"openid":"oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"}}';
const VECTOR5_SIGNATURE =
  'jnks4dlrPw3ZX+ozVvSK39oa0t7OMBsg83BHAwd8BRdUFiVaQNTLTvci+wURgP1OQBbKYhFGvt7iqYpDSTQkp7Uq1sltaQKyncCyrA1g88m5bsKERQfPyT0ahSwKTYJ1CAn9QiJuSJRq1QsQs07eehbU/k9BCS51jTyc1Jpsi2H77HF9f/BnjXAOP3/sPObg6V5Ee4EzwLox684hhuMuIwHo7D8KFk3LIHOKDcNI4It1aCXydFWNpNK+SG86VUDe5kwoDpw4Ulqfu9z8OFDGbDs9TCxEv8iqQzbpxOlEVoOe2kalSYM5kApQb3nZcxdUtoE0liJGW3RGUNE0t4v01A==';
const VECTOR6_SIGNATURE =
  'Lc9VXxmeonkdV8Xk9tmigQFLhl0vRWTerdmoRu01aAnYwIrD/5nsSwE1WlmZGLRlAFTNQ3QsMa0+VRDlJp1Wp5p0nO8EK68b5sJBbjouxaFciIfq1zfDWWz+jqhcMoKXI1A6dPm1AW7D4d30WsMTNzp6g23OXakIsh9LO3lUmwvTuE0BY8ncf6tNGk4wKmvXwERd/ZpoQY3MAVKz+Nakwc+2XBmzT66KcUehU5kr4IvGa/lEU5RZb/q00zP9VLdBhC/jQSX3X1UcJLCtEc4gTmib4tnmAT+bHF/e17ZAuxDNcx6rqT8gNEXqaJGG+1OflMSTU2tpyG65G4dMKdFcoA==';
const VECTOR7_PAYSIGN =
  'mI35pfNEQV6777ke/1T+LJLQDNTm7yeoUJH+j/adPGhmCCi0PbgkvYQTRcXH0uibcLVtvFLdGLpmoYO9FV6lBBsTAjuhh5YOvQi0e2g3e0yytitiNET9FEuqM0pjnKfRW4K6LIZDdbWJv9KhZUx3DrJa5TL7OJ7VdADVivxVySIlPVKjGwuCXzuXSJes0UcILgWQUMyha5/3nYofuHtS7r+KYyMuxD+oJ9VM1Qdxk4UIG59CP5Y3wtYIFybyF3bdu1caHTRRX+DLyMXyYA/IrTmiW01c4RPjpHBX5Dk1sZyY1zVsWNsvMHr2e1NTWtBxKJ+qk5N61J7caYoepHFaxw==';
const VECTOR8_APP_SIGN =
  'gXx9KhTP6IooKV1SuG3OCGlBIgZbKtubCZvnau6khw1iffvNT28IzLbKmztq2xA/RCNbZa1XOsoiuVmAEeTZQicWfhv4P+O4oBRIrx0X9f3cnWFkMBU9alTWs0nyQ1N9fcILOTe0f4kxOhVh+/Xhn5hOiUK7Sz3XA1mcpa3R2NCWf/e+0ow/RDf15iTymOHgDrEkT/gedg/3E0iXfDX3mFicSZhrHESZDOTXcl9RzELREBUFznd/o2NQM99WcL86m23HY0cTy+QGWU4QDmNrbQ9ihmLW71qPb0Cx/d7EQvw/Kyx0A6s64ZQp3hHdcmiRcLnjVXrKCk7LShaCK+lS3Q==';
const PAY = {
  appId: 'wx2421b1c4370ec43b',
  prepayId: 'wx201410272009395522657a690389285100',
};

const VECTOR9 = {
  serial: 'PUB_KEY_ID_0000000000000024101100397200000006',
  timestamp: '1722850421',
  nonce: 'd824f2e086d3c1df967785d13fcd22ef',
  body: '{"code_url":"weixin://wxpay/bizpayurl?pr=JyC91EIz1"}',
  signature:
    'mfI1CPqvBrgcXfgXMFjdNIhBf27ACE2YyeWsWV9ZI7T7RU0vHvbQpu9Z32ogzc+k8ZC5n3kz7h70eWKjgqNdKQF0eRp8mVKlmfzMLBVHbssB9jEZEDXThOX1XFqX7s7ymia1hoHQxQagPGzkdWxtlZPZ4ZPvr1RiqkgAu6Is8MZgXXrRoBKqjmSdrP1N7uxzJ/cjfSiis9FiLjuADoqmQ1P7p2N876YPAol7Rn0+GswwAwxldbdLrmVSjfytfSBJFqTMHn4itojgxSWWN1byuckQt8hSTEv/Lg97QoeGniYP17T80pJeQyL3b+295FPHSO2AtvCgyIbKMZ0BALilAA==',
  now: 1722850421,
};

const VECTOR10 = {
  serial: 'D7CE59D1F522D701',
  timestamp: '1624523846',
  nonce: 'EcZ9Cmy4Xyx1i6RlJQzLcCyEqDa26NBz',
  body: '{"id":"3119dfba-e649-5eec-ab1e-3412bc4d2e17","create_time":"2021-06-24T16:37:26+08:00","resource_type":"encrypt-resource","event_type":"PAYSCORE.USER_OPEN_SERVICE","summary":"签约成功","resource":{"original_type":"payscore","algorithm":"AEAD_AES_256_GCM","ciphertext":"YDS3lKPaC4Y52Gf3uhft5qUBlIa8b428AWTtTauHQfQrRw+X1WpiuHIDy0vo1Vd6VEq67aVyqPdDYMkRVSDaZL3iZttevRMOoPKMifozg6XPWjIZumks/GpT48lI4NizyeaqLBokNebthah3o1H76qSlO9NkDjp9bzmKLEYYH9TEklFUpsvPqOTOcgSLgh21YJXYR7dEBXFgRLiNIKRgO5JdXh1hccRUAlyVWxE54PXpnQ==","associated_data":"payscore","nonce":"Kj7QIyUiYx1q"}}',
  signature:
    'tJHIiIS9eB2hAYstmAmbbD3ZE5LiIm/Ug5tuL4fC0YOFRWIHV39UFIZXC0e9Wl6lBu6sKvkqDkzpqzBsVHyXFlbYZTOQrVdG4b6LfTnK4mikv9++ixJMd3vTf2yCqvBkh98zs3Ds5zsYQakzbcwhmw4fMJs4nPLws28H0UW9FjDR//rxELLwXvV1VEA1IBLX70xptjL8hrfUjEE8kkry6yNJTHZRU8CAc7qHli2Ng1V1qb9ARbK8A3ThmFmPQvRGrapI/jS2laKKgYUmfdEdkNO6B2Cke5e8VTxY406ArAmQ90GAihDwIcb16TQMnzCMBoutnwZKNiKRACrFmtxw2Q==',
  now: 1624523846,
  apiV3Key: 'testMchAPIv3Key0',
  plaintext:
    '{"mchid":"1234567890","appid":"054aa7d7a2a54ab5898df65bd96f001c","create_time":"2020-06-30T12:12:00+08:00","out_contract_code":"21640bdbd08e473e828f3206a2741c6e"}',
};

const VECTOR11 = {
  key: 'testAPIv3Key0000',
  nonce: 'wCq51qZv4Yfg',
  associatedData: 'Dl56FrqWQJF1t9LtC3vEUsniZKvbqdR8',
  ciphertext: 'FsdXzxryWfKwvLJKf8LG/ToRPTRh8RN9wROC',
  plaintext: 'Hello World',
};

const VECTOR12 = {
  key: '0123456789abcdef0123456789abcdef',
  nonce: 'abcdefghijkl',
  associatedData: 'transaction',
  ciphertext:
    'Eu6oz7uMCfFZPoVpOK1qDj4A2CuKt18+fYoN/vBw7IcPoMmYDG7QknNKoJA+pLXkr3eQltQrAqSqjS4pyfLmKu7Jq/zIwVF6MGs2WBha1AzOxdxEm6wVOuJiRuoRjkIXna2HyJjGOW/DuwHwFO8JyymA3moZYkFKzxSlYo1+fTvpKQc8MM9cgv9Wtz/KN+jKuNZTjqukOEmwjqi0iN04MKu+bc8kk8+jmCpxJSvF4lTNJzM+sM2A63+m4oDJe4X7j3ccEdp0GMw6mPKVW1iVlqQB2E5fOin9hAKJTF1VyH/5Nh0UYhVGExG/bU+his7mAX0gWdS6Uom26xWJR29/7aZ82Lmd7Tb9VH/V82yv063Ctyrb9sr7kkmchxJVpNUoYaRzVbHSxyWWe2r2LV4KgQpEO9z2iL5YJ4wFgYgUunWTn6TrizoMwHOdO7fcwhGfsiSd8XQCRBx9zNSu37QrtTGYXIycGR1m9Eu7x6bruvoiC+UQcOc7MO/W1OS00WjpNnqegj255m3r2KdikfJtDktoOuMktR9kRy1NhkJOgs1ZO6a+izZiML7cnHf/sk+DFmr8PuFF74n2KJqR+t98',
  plaintext:
    '{"appid":"wx2421b1c4370ec43b","mchid":"1900007291","out_trade_no":"1217752501201407033233368018","transaction_id":"4200000215201811190261405420","trade_type":"JSAPI","trade_state":"SUCCESS","trade_state_desc":"支付成功","bank_type":"OTHERS","attach":"","success_time":"2018-06-08T10:34:56+08:00","payer":{"openid":"oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"},"amount":{"total":100,"payer_total":100,"currency":"CNY","payer_currency":"CNY"}}',
};

/** A real probe header value posted in wechatpay-java issue #319. */
const PROBE_SIGNATURE =
  'WECHATPAY/SIGNTEST/2sWfO+6tVVsZonOXBXHOrle0TugJ31jDV3iGpjFchMYEyEZ48LxAmfW2gMXkP7Ce1OLORt7wHxkgBwTBHn9/JpPBwDFjiHMhSQCEYkk/gIXdO1E7dz6fnMmMqmI2urSR8WDWAG0jdIGFbnykjVFrQa7E1RhNNEIz476tmfj5Zp7W/kE1q7cxZIPumELjwfZHXybvrFMuYNEcf8Eq50V+I1e5onuIAa3RIuIIy30Kl2RANQJx1inQ0SirJjFtONAcPnLDWpeJuVCfRPLXE4ra5qsSwxbUDvnCAbTkz4L1mSZ/zyv80hd9t8upwSLbLiYJWV97N04Pb74zCg==';

/** A made-up public key id for the wechatpay-java test public key. */
const JAVA_PUBLIC_KEY_ID = 'PUB_KEY_ID_0114232134912410000000000000000001';

const API_V3_KEY = Buffer.from('0123456789abcdef0123456789abcdef', 'ascii');

const officialMessage = (method: string, url: string, body: string): string =>
  `${method}\n${url}\n${OFFICIAL.timestamp}\n${OFFICIAL.nonce}\n${body}\n`;

/** Flips the lowest bit of the byte at `index` of a base64 string's decoded value. */
const flipBase64Byte = (b64: string, index: number): string => {
  const bytes = Buffer.from(b64, 'base64');
  bytes[index] = (bytes[index] ?? 0) ^ 0x01;
  return bytes.toString('base64');
};

/** Runs `act` and returns the error it throws (fails the test when nothing is thrown). */
const thrown = (act: () => unknown): unknown => {
  try {
    act();
  } catch (error) {
    return error;
  }
  throw new Error('expected the call to throw');
};

const signatureReason = (act: () => unknown): string => {
  const error = thrown(act);
  expect(error).toBeInstanceOf(V3SignatureError);
  return (error as V3SignatureError).reason;
};

const decryptReason = (act: () => unknown): string => {
  const error = thrown(act);
  expect(error).toBeInstanceOf(V3DecryptError);
  return (error as V3DecryptError).reason;
};

/** A notify re-signed with `key` as WeChat Pay would sign it, for verifier tests. */
const signedNotify = (
  key: KeyObject,
  serial: string,
  timestamp: number,
  body = '{"id":"EV-2018022511223320873","event_type":"TRANSACTION.SUCCESS"}',
) => {
  const nonce = 'fP4kWx8qL2mZ7tRb9nVc3yHs6dJa1gQe';
  return {
    serial,
    signature: signResponse(key, timestamp, nonce, body),
    timestamp: String(timestamp),
    nonce,
    body,
  };
};

describe('signRsaSha256', () => {
  it('produces the official jsapi request signature when signing vector 5 with the official test key', () => {
    // Prepare
    const message = officialMessage('POST', '/v3/pay/transactions/jsapi', VECTOR5_BODY);

    // Act
    const signature = signRsaSha256(officialMerchantKey, message);

    // Assess
    expect(signature).toBe(VECTOR5_SIGNATURE);
  });

  it('produces the official APP sign when signing vector 8 (bare prepay_id line)', () => {
    // Prepare
    const message = `${PAY.appId}\n${OFFICIAL.timestamp}\n${OFFICIAL.nonce}\n${PAY.prepayId}\n`;

    // Act
    const signature = signRsaSha256(officialMerchantKey, message);

    // Assess
    expect(signature).toBe(VECTOR8_APP_SIGN);
  });

  it('throws a TypeError when given a public key', () => {
    // Prepare
    const publicKey = createPublicKey(officialMerchantKey);

    // Act
    const error = thrown(() => signRsaSha256(publicKey, 'message'));

    // Assess
    expect(error).toBeInstanceOf(TypeError);
  });
});

describe('verifyRsaSha256', () => {
  const publicKey = createPublicKey(officialWechatPayPublicKeyPem);
  const message = `${VECTOR9.timestamp}\n${VECTOR9.nonce}\n${VECTOR9.body}\n`;

  it('returns true when checking the official vector 9 response signature with the WeChat Pay public key', () => {
    // Act
    const valid = verifyRsaSha256(publicKey, message, VECTOR9.signature);

    // Assess
    expect(valid).toBe(true);
  });

  it('returns false when one body byte of vector 9 is flipped', () => {
    // Prepare
    const tampered = message.replace('JyC91EIz1', 'JyC91EIz2');

    // Act
    const valid = verifyRsaSha256(publicKey, tampered, VECTOR9.signature);

    // Assess
    expect(tampered).not.toBe(message);
    expect(valid).toBe(false);
  });

  it('returns false when one signature byte is flipped', () => {
    // Act
    const valid = verifyRsaSha256(publicKey, message, flipBase64Byte(VECTOR9.signature, 100));

    // Assess
    expect(valid).toBe(false);
  });

  it('returns false when the signature comes from a different key', () => {
    // Prepare
    const otherKeySignature = signRsaSha256(goKey, message);

    // Act
    const valid = verifyRsaSha256(publicKey, message, otherKeySignature);

    // Assess
    expect(valid).toBe(false);
  });

  it.each([
    ['an empty string', ''],
    ['non-base64 characters', `${VECTOR9.signature.slice(0, -4)}!!==`],
    ['a comma-joined duplicate', `${VECTOR9.signature},${VECTOR9.signature}`],
    ['a truncated (wrong-length) signature', VECTOR9.signature.slice(0, 340)],
    ['a 255-byte signature', Buffer.alloc(255, 1).toString('base64')],
    ['the SIGNTEST probe', PROBE_SIGNATURE],
  ])('returns false without throwing when the signature is %s', (_label, signature) => {
    // Act
    const valid = verifyRsaSha256(publicKey, message, signature);

    // Assess
    expect(valid).toBe(false);
  });
});

describe('buildAuthorization', () => {
  it('builds the official header when signing the vector 5 POST jsapi request', () => {
    // Act
    const header = buildAuthorization({
      ...OFFICIAL,
      privateKey: officialMerchantKey,
      method: 'POST',
      url: '/v3/pay/transactions/jsapi',
      body: VECTOR5_BODY,
    });

    // Assess
    expect(header).toBe(
      `WECHATPAY2-SHA256-RSA2048 mchid="1900007291",nonce_str="593BEC0C930BF1AFEB40B4A08C8FB242",signature="${VECTOR5_SIGNATURE}",timestamp="1554208460",serial_no="408B07E79B8269FEC3D5D3E6AB8ED163A6A380DB"`,
    );
  });

  it('signs an empty body line when building the vector 6 GET request', () => {
    // Act
    const header = buildAuthorization({
      ...OFFICIAL,
      privateKey: officialMerchantKey,
      method: 'GET',
      url: '/v3/refund/domestic/refunds/123123123123',
      body: '',
    });

    // Assess
    expect(parseAuthorization(header).signature).toBe(VECTOR6_SIGNATURE);
  });

  it('generates a seconds timestamp and a 32-hex nonce when none are given', () => {
    // Prepare
    const before = Math.floor(Date.now() / 1000);

    // Act
    const header = buildAuthorization({
      mchId: OFFICIAL.mchId,
      serialNo: OFFICIAL.serialNo,
      privateKey: officialMerchantKey,
      method: 'GET',
      url: '/v3/certificates',
      body: '',
    });

    // Assess
    const parsed = parseAuthorization(header);
    const timestamp = Number(parsed.timestamp);
    expect(timestamp).toBeGreaterThanOrEqual(before);
    expect(timestamp).toBeLessThanOrEqual(Math.floor(Date.now() / 1000));
    expect(parsed.nonce_str).toMatch(/^[0-9A-F]{32}$/);
    const message = `GET\n/v3/certificates\n${parsed.timestamp}\n${parsed.nonce_str}\n\n`;
    expect(verifyRsaSha256(createPublicKey(officialMerchantKey), message, parsed.signature)).toBe(true);
  });

  it.each([
    ['the url contains the host', { url: 'https://api.mch.weixin.qq.com/v3/certificates' }],
    ['the timestamp is in milliseconds', { timestamp: 1554208460000 }],
    ['the timestamp is fractional', { timestamp: 1554208460.5 }],
    ['the nonce contains a quote', { nonce: 'abc"def' }],
    ['the serial contains a comma', { serialNo: '408B,07E7' }],
    ['the method is not a verb', { method: 'GET /x' }],
  ])('throws a TypeError when %s', (_label, override) => {
    // Prepare
    const input = {
      ...OFFICIAL,
      privateKey: officialMerchantKey,
      method: 'GET',
      url: '/v3/certificates',
      body: '',
      ...override,
    };

    // Act
    const error = thrown(() => buildAuthorization(input));

    // Assess
    expect(error).toBeInstanceOf(TypeError);
  });
});

describe('parseAuthorization', () => {
  it('returns the five items and a verifiable signature when parsing a header built by buildAuthorization', () => {
    // Prepare
    const body = '{"mchid":"1900007291"}';
    const header = buildAuthorization({
      ...OFFICIAL,
      privateKey: officialMerchantKey,
      method: 'POST',
      url: '/v3/pay/transactions/out-trade-no/T1/close',
      body,
    });

    // Act
    const parsed = parseAuthorization(header);

    // Assess
    expect(parsed).toEqual({
      mchid: OFFICIAL.mchId,
      nonce_str: OFFICIAL.nonce,
      signature: expect.any(String),
      timestamp: String(OFFICIAL.timestamp),
      serial_no: OFFICIAL.serialNo,
    });
    const message = `POST\n/v3/pay/transactions/out-trade-no/T1/close\n${parsed.timestamp}\n${parsed.nonce_str}\n${body}\n`;
    const publicHalf = createPublicKey(officialMerchantKey);
    expect(verifyRsaSha256(publicHalf, message, parsed.signature)).toBe(true);
    expect(verifyRsaSha256(publicHalf, message.replace('T1', 'T2'), parsed.signature)).toBe(false);
  });

  it('accepts the items in any order when the header is reordered', () => {
    // Prepare
    const header = `WECHATPAY2-SHA256-RSA2048 mchid="1",serial_no="5",timestamp="4",nonce_str="2",signature="3"`;

    // Act
    const parsed = parseAuthorization(header);

    // Assess
    expect(parsed).toEqual({ mchid: '1', nonce_str: '2', signature: '3', timestamp: '4', serial_no: '5' });
  });

  it('throws missing_header when the header is empty', () => {
    // Act
    const reason = signatureReason(() => parseAuthorization(''));

    // Assess
    expect(reason).toBe('missing_header');
  });

  it.each([
    [
      'the scheme is wrong',
      'WECHATPAY2-SHA256-RSA4096 mchid="1",nonce_str="2",signature="3",timestamp="4",serial_no="5"',
    ],
    ['the scheme is missing', 'mchid="1",nonce_str="2",signature="3",timestamp="4",serial_no="5"'],
    ['an item is missing', 'WECHATPAY2-SHA256-RSA2048 mchid="1",nonce_str="2",signature="3",timestamp="4"'],
    [
      'an item is duplicated',
      'WECHATPAY2-SHA256-RSA2048 mchid="1",mchid="9",nonce_str="2",signature="3",timestamp="4",serial_no="5"',
    ],
    [
      'an item is unknown',
      'WECHATPAY2-SHA256-RSA2048 mchid="1",nonce_str="2",signature="3",timestamp="4",serial_no="5",x="6"',
    ],
    [
      'an item is empty',
      'WECHATPAY2-SHA256-RSA2048 mchid="",nonce_str="2",signature="3",timestamp="4",serial_no="5"',
    ],
    [
      'a value is unquoted',
      'WECHATPAY2-SHA256-RSA2048 mchid=1,nonce_str="2",signature="3",timestamp="4",serial_no="5"',
    ],
    ['the items are garbage', 'WECHATPAY2-SHA256-RSA2048 garbage'],
  ])('throws bad_authorization when %s', (_label, header) => {
    // Act
    const reason = signatureReason(() => parseAuthorization(header));

    // Assess
    expect(reason).toBe('bad_authorization');
  });
});

describe('verifyAuthorization', () => {
  /** The official vector 5 request as WeChat Pay receives it, checked at the moment it was signed. */
  const VECTOR5_REQUEST = {
    header: `WECHATPAY2-SHA256-RSA2048 mchid="1900007291",nonce_str="593BEC0C930BF1AFEB40B4A08C8FB242",signature="${VECTOR5_SIGNATURE}",timestamp="1554208460",serial_no="408B07E79B8269FEC3D5D3E6AB8ED163A6A380DB"`,
    method: 'POST',
    url: '/v3/pay/transactions/jsapi',
    body: VECTOR5_BODY,
    publicKey: createPublicKey(officialMerchantKey),
    mchId: OFFICIAL.mchId,
    serialNo: OFFICIAL.serialNo,
    now: OFFICIAL.timestamp,
  };

  it('returns the items when given the official vector 5 header', () => {
    // Act
    const auth = verifyAuthorization(VECTOR5_REQUEST);

    // Assess
    expect(auth).toEqual({
      mchid: OFFICIAL.mchId,
      nonce_str: OFFICIAL.nonce,
      signature: VECTOR5_SIGNATURE,
      timestamp: '1554208460',
      serial_no: OFFICIAL.serialNo,
    });
  });

  it('accepts what buildAuthorization signs for a GET with a query, a lower-case method and serial', () => {
    // Prepare
    const url = '/v3/pay/transactions/out-trade-no/T1?mchid=1900007291';
    const header = buildAuthorization({
      ...OFFICIAL,
      privateKey: officialMerchantKey,
      method: 'GET',
      url,
      body: '',
    });

    // Act
    const auth = verifyAuthorization({
      ...VECTOR5_REQUEST,
      header,
      method: 'get',
      url,
      body: '',
      serialNo: OFFICIAL.serialNo.toLowerCase(),
    });

    // Assess
    expect(auth.nonce_str).toBe(OFFICIAL.nonce);
  });

  it('accepts a timestamp exactly MAX_SKEW_SECONDS away on either side', () => {
    // Act
    const early = () =>
      verifyAuthorization({ ...VECTOR5_REQUEST, now: OFFICIAL.timestamp + MAX_SKEW_SECONDS });
    const late = () =>
      verifyAuthorization({ ...VECTOR5_REQUEST, now: OFFICIAL.timestamp - MAX_SKEW_SECONDS });

    // Assess
    expect(MAX_SKEW_SECONDS).toBe(300);
    expect(early).not.toThrow();
    expect(late).not.toThrow();
  });

  it.each<[string, Partial<typeof VECTOR5_REQUEST>, string]>([
    ['the header is empty', { header: '' }, 'missing_header'],
    ['the scheme is not the v3 one', { header: `Bearer ${VECTOR5_SIGNATURE}` }, 'bad_authorization'],
    ['another merchant signed', { mchId: '1900000109' }, 'unknown_mchid'],
    ['another certificate serial is named', { serialNo: 'ABCDEF0123456789' }, 'unknown_serial'],
    ['the timestamp is 301 s old', { now: OFFICIAL.timestamp + MAX_SKEW_SECONDS + 1 }, 'stale_timestamp'],
    ['the timestamp is 301 s ahead', { now: OFFICIAL.timestamp - MAX_SKEW_SECONDS - 1 }, 'stale_timestamp'],
    ['the body differs from the signed one', { body: VECTOR5_BODY.replace('100', '1') }, 'bad_signature'],
    ['the url differs from the signed one', { url: '/v3/pay/transactions/native' }, 'bad_signature'],
    ['the method differs from the signed one', { method: 'PUT' }, 'bad_signature'],
    ['another key is checked', { publicKey: createPublicKey(goKey) }, 'bad_signature'],
  ])('throws V3SignatureError when %s', (_label, override, reason) => {
    // Act
    const actual = signatureReason(() => verifyAuthorization({ ...VECTOR5_REQUEST, ...override }));

    // Assess
    expect(actual).toBe(reason);
  });

  it('throws bad_timestamp when the timestamp is in milliseconds', () => {
    // Prepare
    const header = VECTOR5_REQUEST.header.replace('timestamp="1554208460"', 'timestamp="1554208460000"');

    // Act
    const reason = signatureReason(() => verifyAuthorization({ ...VECTOR5_REQUEST, header }));

    // Assess
    expect(reason).toBe('bad_timestamp');
  });
});

describe('wechatpayHeaders', () => {
  it('signs the body as a response the verifier accepts when given a timestamp and nonce', () => {
    // Prepare
    const body = '{"prepay_id":"wx201410272009395522657a690389285100"}';
    const verifier = createVerifier({
      publicKey: { id: 'PUB_KEY_ID_0114232019112100000000000001', pem: javaPublicKeyPem },
    });

    // Act
    const headers = wechatpayHeaders(
      javaKey,
      'PUB_KEY_ID_0114232019112100000000000001',
      body,
      1_722_850_421,
      'n0nce',
    );

    // Assess
    expect(headers).toEqual({
      'Wechatpay-Timestamp': '1722850421',
      'Wechatpay-Nonce': 'n0nce',
      'Wechatpay-Signature': signResponse(javaKey, 1_722_850_421, 'n0nce', body),
      'Wechatpay-Serial': 'PUB_KEY_ID_0114232019112100000000000001',
      'Wechatpay-Signature-Type': AUTH_SCHEME,
    });
    expect(() =>
      verifier.verify({
        serial: headers['Wechatpay-Serial'] as string,
        signature: headers['Wechatpay-Signature'] as string,
        timestamp: '1722850421',
        nonce: 'n0nce',
        body,
        now: 1_722_850_421,
      }),
    ).not.toThrow();
  });

  it('defaults to now and a fresh nonce when none are given', () => {
    // Prepare
    const before = Math.floor(Date.now() / 1000);

    // Act
    const first = wechatpayHeaders(javaKey, 'PUB_KEY_ID_1', '');
    const second = wechatpayHeaders(javaKey, 'PUB_KEY_ID_1', '');

    // Assess
    expect(Number(first['Wechatpay-Timestamp'])).toBeGreaterThanOrEqual(before);
    expect(Number(first['Wechatpay-Timestamp'])).toBeLessThanOrEqual(Math.floor(Date.now() / 1000));
    expect(first['Wechatpay-Nonce']).not.toBe(second['Wechatpay-Nonce']);
    expect(AUTH_SCHEME).toBe('WECHATPAY2-SHA256-RSA2048');
  });
});

describe('buildPayParamsV3', () => {
  it('returns the official wx.requestPayment arguments when given the vector 7 inputs', () => {
    // Act
    const params = buildPayParamsV3({
      ...PAY,
      privateKey: officialMerchantKey,
      timeStamp: String(OFFICIAL.timestamp),
      nonceStr: OFFICIAL.nonce,
    });

    // Assess
    expect(params).toEqual({
      timeStamp: '1554208460',
      nonceStr: '593BEC0C930BF1AFEB40B4A08C8FB242',
      package: 'prepay_id=wx201410272009395522657a690389285100',
      signType: 'RSA',
      paySign: VECTOR7_PAYSIGN,
    });
  });

  it('differs from the APP sign of vector 8 when given the same inputs (prepay_id= prefix is signed)', () => {
    // Act
    const params = buildPayParamsV3({
      ...PAY,
      privateKey: officialMerchantKey,
      timeStamp: String(OFFICIAL.timestamp),
      nonceStr: OFFICIAL.nonce,
    });

    // Assess
    expect(params.paySign).not.toBe(VECTOR8_APP_SIGN);
  });

  it('generates a verifiable paySign when timeStamp and nonceStr are not given', () => {
    // Act
    const params = buildPayParamsV3({ ...PAY, privateKey: officialMerchantKey });

    // Assess
    expect(params.timeStamp).toMatch(/^\d{10}$/);
    expect(params.nonceStr).toMatch(/^[0-9A-F]{32}$/);
    const message = `${PAY.appId}\n${params.timeStamp}\n${params.nonceStr}\n${params.package}\n`;
    expect(verifyRsaSha256(createPublicKey(officialMerchantKey), message, params.paySign)).toBe(true);
  });

  it('throws a TypeError when the prepayId already carries the prepay_id= prefix', () => {
    // Act
    const error = thrown(() =>
      buildPayParamsV3({ ...PAY, prepayId: `prepay_id=${PAY.prepayId}`, privateKey: officialMerchantKey }),
    );

    // Assess
    expect(error).toBeInstanceOf(TypeError);
  });

  it('throws a TypeError when the timeStamp is in milliseconds', () => {
    // Act
    const error = thrown(() =>
      buildPayParamsV3({ ...PAY, privateKey: officialMerchantKey, timeStamp: '1554208460000' }),
    );

    // Assess
    expect(error).toBeInstanceOf(TypeError);
  });
});

describe('aesGcmDecrypt', () => {
  it('returns the plaintext when decrypting the official Go vector 11 with its 16-byte key (aes-128-gcm)', () => {
    // Act
    const plaintext = aesGcmDecrypt(
      Buffer.from(VECTOR11.key),
      VECTOR11.nonce,
      VECTOR11.associatedData,
      VECTOR11.ciphertext,
    );

    // Assess
    expect(plaintext).toBe(VECTOR11.plaintext);
  });

  it('throws bad_tag when decrypting vector 11 with the wrong key', () => {
    // Act
    const reason = decryptReason(() =>
      aesGcmDecrypt(
        Buffer.from('testAPIv3Key1111'),
        VECTOR11.nonce,
        VECTOR11.associatedData,
        VECTOR11.ciphertext,
      ),
    );

    // Assess
    expect(reason).toBe('bad_tag');
  });

  it('throws bad_tag when the associated data differs', () => {
    // Act
    const reason = decryptReason(() =>
      aesGcmDecrypt(Buffer.from(VECTOR11.key), VECTOR11.nonce, 'other', VECTOR11.ciphertext),
    );

    // Assess
    expect(reason).toBe('bad_tag');
  });

  it('throws bad_tag when the GCM tag is altered', () => {
    // Prepare
    const lastByte = Buffer.from(VECTOR11.ciphertext, 'base64').length - 1;

    // Act
    const reason = decryptReason(() =>
      aesGcmDecrypt(
        Buffer.from(VECTOR11.key),
        VECTOR11.nonce,
        VECTOR11.associatedData,
        flipBase64Byte(VECTOR11.ciphertext, lastByte),
      ),
    );

    // Assess
    expect(reason).toBe('bad_tag');
  });

  it('throws short_input when the ciphertext is shorter than the 16-byte tag', () => {
    // Act
    const reason = decryptReason(() =>
      aesGcmDecrypt(Buffer.from(VECTOR11.key), VECTOR11.nonce, VECTOR11.associatedData, 'SGVsbG8gV29ybGQK'),
    );

    // Assess
    expect(reason).toBe('short_input');
  });

  it.each([
    ['is not base64', 'not base64!'],
    ['is empty', ''],
  ])('throws bad_ciphertext when the ciphertext %s', (_label, ciphertext) => {
    // Act
    const reason = decryptReason(() =>
      aesGcmDecrypt(Buffer.from(VECTOR11.key), VECTOR11.nonce, VECTOR11.associatedData, ciphertext),
    );

    // Assess
    expect(reason).toBe('bad_ciphertext');
  });

  it('throws bad_key when the key is neither 16 nor 32 bytes', () => {
    // Act
    const reason = decryptReason(() =>
      aesGcmDecrypt(
        Buffer.from('not a aes key'),
        VECTOR11.nonce,
        VECTOR11.associatedData,
        VECTOR11.ciphertext,
      ),
    );

    // Assess
    expect(reason).toBe('bad_key');
  });

  it('returns the plaintexts of the axios-plugin AES-256-GCM vectors when the nonce is 16 bytes', () => {
    // Prepare
    const key = Buffer.from('0123456789abcdef0123456789abcdef');

    // Act
    const empty = aesGcmDecrypt(key, '0123456789abcdef', '', 'GvpmmdtYwexXIPhySs9Tlg==');
    const hello = aesGcmDecrypt(key, '0123456789abcdef', 'world', 'APoZlYpivU3HjbAiB4CvW1rAFr8J');

    // Assess
    expect(empty).toBe('');
    expect(hello).toBe('hello');
  });
});

describe('aesGcmEncrypt', () => {
  it('reproduces the vector 11 ciphertext when encrypting its plaintext with the 16-byte key', () => {
    // Act
    const ciphertext = aesGcmEncrypt(
      Buffer.from(VECTOR11.key),
      VECTOR11.nonce,
      VECTOR11.associatedData,
      VECTOR11.plaintext,
    );

    // Assess
    expect(ciphertext).toBe(VECTOR11.ciphertext);
  });

  it('reproduces the vector 12 ciphertext when encrypting with the 32-byte key', () => {
    // Act
    const ciphertext = aesGcmEncrypt(
      Buffer.from(VECTOR12.key),
      VECTOR12.nonce,
      VECTOR12.associatedData,
      VECTOR12.plaintext,
    );

    // Assess
    expect(ciphertext).toBe(VECTOR12.ciphertext);
  });

  it('throws bad_key when the key is 24 bytes', () => {
    // Act
    const reason = decryptReason(() => aesGcmEncrypt(Buffer.alloc(24), 'abcdefghijkl', '', 'x'));

    // Assess
    expect(reason).toBe('bad_key');
  });
});

describe('decryptResource', () => {
  const resourceOf = (overrides: Record<string, unknown> = {}): Record<string, unknown> => ({
    original_type: 'transaction',
    algorithm: 'AEAD_AES_256_GCM',
    ciphertext: VECTOR12.ciphertext,
    associated_data: VECTOR12.associatedData,
    nonce: VECTOR12.nonce,
    ...overrides,
  });

  it('returns the transaction JSON when decrypting the vector 12 resource with the 32-byte key', () => {
    // Act
    const plaintext = decryptResource(resourceOf(), API_V3_KEY);

    // Assess
    expect(plaintext).toBe(VECTOR12.plaintext);
    expect(JSON.parse(plaintext)).toMatchObject({ trade_state: 'SUCCESS', amount: { total: 100 } });
  });

  it('returns the same plaintext when the key is a secret KeyObject imported once', () => {
    // Act
    const plaintext = decryptResource(resourceOf(), createSecretKey(API_V3_KEY));

    // Assess
    expect(plaintext).toBe(VECTOR12.plaintext);
  });

  it('returns the plaintext when decrypting the wechatpay-java AES-256-GCM vector', () => {
    // Prepare
    const resource = {
      algorithm: 'AEAD_AES_256_GCM',
      ciphertext: 'ulwSiIajGClcvcOYvOQ7+l+0PAbzzwI=',
      associated_data: 'associatedData',
      nonce: 'uluk4a9R25RW',
    };

    // Act
    const plaintext = decryptResource(resource, Buffer.from('a7cde1ZJB1kG2e7VfTs3jQzaWizur8Gb'));

    // Assess
    expect(plaintext).toBe('message');
  });

  it.each([
    ['an empty string', ''],
    ['absent', undefined],
    ['exactly 16 bytes', 'abcdefghijklmnop'],
  ])('round-trips aesGcmEncrypt output when associated_data is %s', (_label, associatedData) => {
    // Prepare
    const plaintext = '{"out_trade_no":"M202401010001","trade_state":"SUCCESS","attach":"会员"}';
    const ciphertext = aesGcmEncrypt(API_V3_KEY, 'n0nce-12byte', associatedData ?? '', plaintext);
    const resource = resourceOf({ ciphertext, nonce: 'n0nce-12byte', associated_data: associatedData });

    // Act
    const decrypted = decryptResource(resource, API_V3_KEY);

    // Assess
    expect(decrypted).toBe(plaintext);
  });

  it('throws bad_tag when the GCM tag is altered', () => {
    // Prepare
    const lastByte = Buffer.from(VECTOR12.ciphertext, 'base64').length - 1;
    const resource = resourceOf({ ciphertext: flipBase64Byte(VECTOR12.ciphertext, lastByte) });

    // Act
    const reason = decryptReason(() => decryptResource(resource, API_V3_KEY));

    // Assess
    expect(reason).toBe('bad_tag');
  });

  it('throws bad_tag when the 32-byte key is wrong', () => {
    // Act
    const reason = decryptReason(() =>
      decryptResource(resourceOf(), Buffer.from('fedcba9876543210fedcba9876543210')),
    );

    // Assess
    expect(reason).toBe('bad_tag');
  });

  it.each([
    ['16 bytes (the Go test key)', Buffer.from(VECTOR10.apiV3Key)],
    ['31 bytes', Buffer.alloc(31, 0x61)],
    ['empty', Buffer.alloc(0)],
    ['a 16-byte KeyObject', createSecretKey(Buffer.from(VECTOR10.apiV3Key))],
    ['an empty KeyObject', createSecretKey(Buffer.alloc(0))],
    ['an RSA public KeyObject', generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey],
  ])('throws bad_key when the APIv3 key is %s', (_label, key: Buffer | KeyObject) => {
    // Act
    const reason = decryptReason(() => decryptResource(resourceOf(), key));

    // Assess
    expect(reason).toBe('bad_key');
  });

  it.each([
    ['11 bytes', 'abcdefghijk'],
    ['13 bytes', 'abcdefghijklm'],
    ['16 bytes', 'abcdefghijklmnop'],
    ['not a string', 123456789012],
    ['absent', undefined],
  ])('throws bad_nonce when the nonce is %s', (_label, nonce) => {
    // Act
    const reason = decryptReason(() => decryptResource(resourceOf({ nonce }), API_V3_KEY));

    // Assess
    expect(reason).toBe('bad_nonce');
  });

  it.each([
    ['12 characters but 13 bytes', 'é12345678901'],
    ['4 characters of 3 bytes and one more', '支付成功x'],
  ])('throws bad_nonce when the nonce is %s (counted in UTF-8 bytes)', (_label, nonce) => {
    // Act
    const reason = decryptReason(() => decryptResource(resourceOf({ nonce }), API_V3_KEY));

    // Assess
    expect(reason).toBe('bad_nonce');
  });

  it('decrypts with a nonce of 4 three-byte characters (12 UTF-8 bytes)', () => {
    // Prepare
    const ciphertext = aesGcmEncrypt(API_V3_KEY, '支付成功', 'transaction', '{"ok":true}');

    // Act
    const plaintext = decryptResource(
      resourceOf({ ciphertext, nonce: '支付成功', associated_data: 'transaction' }),
      API_V3_KEY,
    );

    // Assess
    expect(plaintext).toBe('{"ok":true}');
  });

  it('throws bad_associated_data when associated_data is 9 characters but 18 bytes', () => {
    // Act
    const reason = decryptReason(() =>
      decryptResource(resourceOf({ associated_data: 'ééééééééé' }), API_V3_KEY),
    );

    // Assess
    expect(reason).toBe('bad_associated_data');
  });

  it('authenticates each of 12 distinct associated_data values, and refuses each under another', () => {
    // Prepare: more distinct values than the decrypter keeps as bytes.
    const values = Array.from({ length: 12 }, (_, i) => (i === 0 ? '' : `aad-${i}-é`));
    const sealed = values.map((aad) => aesGcmEncrypt(API_V3_KEY, 'n0nce-12byte', aad, `plain ${aad}`));
    const open = (ciphertext: string, aad: string) =>
      decryptResource(resourceOf({ ciphertext, nonce: 'n0nce-12byte', associated_data: aad }), API_V3_KEY);

    // Act: twice over, so kept and fresh values are both read.
    const plaintexts = [...values, ...values].map((aad, i) => open(sealed[i % values.length] as string, aad));
    const swapped = values.map((aad, i) =>
      decryptReason(() => open(sealed[(i + 1) % values.length] as string, aad)),
    );

    // Assess
    expect(plaintexts).toEqual([...values, ...values].map((aad) => `plain ${aad}`));
    expect(swapped).toEqual(values.map(() => 'bad_tag'));
  });

  it.each([
    ['AEAD_AES_128_GCM', 'AEAD_AES_128_GCM'],
    ['lower case', 'aead_aes_256_gcm'],
    ['absent', undefined],
  ])('throws bad_algorithm when the algorithm is %s', (_label, algorithm) => {
    // Act
    const reason = decryptReason(() => decryptResource(resourceOf({ algorithm }), API_V3_KEY));

    // Assess
    expect(reason).toBe('bad_algorithm');
  });

  it.each([
    ['17 bytes long', 'abcdefghijklmnopq'],
    ['not a string', 42],
  ])('throws bad_associated_data when associated_data is %s', (_label, associatedData) => {
    // Act
    const reason = decryptReason(() =>
      decryptResource(resourceOf({ associated_data: associatedData }), API_V3_KEY),
    );

    // Assess
    expect(reason).toBe('bad_associated_data');
  });

  it.each([
    ['empty', ''],
    ['not a string', ['x']],
    ['absent', undefined],
  ])('throws bad_ciphertext when the ciphertext is %s', (_label, ciphertext) => {
    // Act
    const reason = decryptReason(() => decryptResource(resourceOf({ ciphertext }), API_V3_KEY));

    // Assess
    expect(reason).toBe('bad_ciphertext');
  });

  it.each([
    ['null', null],
    ['a string', 'resource'],
    ['an array', []],
  ])('throws bad_resource when the resource is %s', (_label, resource) => {
    // Act
    const reason = decryptReason(() => decryptResource(resource, API_V3_KEY));

    // Assess
    expect(reason).toBe('bad_resource');
  });
});

describe('signResponse', () => {
  it('reproduces the vector 10 notify signature when signing with the go test key', () => {
    // Act
    const signature = signResponse(goKey, Number(VECTOR10.timestamp), VECTOR10.nonce, VECTOR10.body);

    // Assess
    expect(signature).toBe(VECTOR10.signature);
  });

  it('throws a TypeError when the timestamp is in milliseconds', () => {
    // Act
    const error = thrown(() => signResponse(goKey, 1624523846000, VECTOR10.nonce, VECTOR10.body));

    // Assess
    expect(error).toBeInstanceOf(TypeError);
  });
});

describe('createVerifier', () => {
  describe('official vectors', () => {
    it('accepts the vector 9 response when using the WeChat Pay public key at its timestamp', () => {
      // Prepare
      const verifier = createVerifier({
        publicKey: { id: VECTOR9.serial, pem: officialWechatPayPublicKeyPem },
      });

      // Act
      const act = () => verifier.verify(VECTOR9);

      // Assess
      expect(act).not.toThrow();
      expect(verifier.serials()).toEqual([VECTOR9.serial]);
    });

    it('throws bad_signature when one body byte of vector 9 is flipped', () => {
      // Prepare
      const verifier = createVerifier({
        publicKey: { id: VECTOR9.serial, pem: officialWechatPayPublicKeyPem },
      });

      // Act
      const reason = signatureReason(() =>
        verifier.verify({ ...VECTOR9, body: VECTOR9.body.replace('pr=', 'pr:') }),
      );

      // Assess
      expect(reason).toBe('bad_signature');
    });

    it('accepts the vector 10 notify and decrypts its resource when using certificate D7CE59D1F522D701', () => {
      // Prepare
      const verifier = createVerifier({ platformCertificates: [goNotifyCert] });

      // Act
      verifier.verify(VECTOR10);
      const { resource } = JSON.parse(VECTOR10.body) as {
        resource: { nonce: string; associated_data: string; ciphertext: string };
      };
      const plaintext = aesGcmDecrypt(
        Buffer.from(VECTOR10.apiV3Key),
        resource.nonce,
        resource.associated_data,
        resource.ciphertext,
      );

      // Assess
      expect(verifier.serials()).toEqual(['D7CE59D1F522D701']);
      expect(plaintext).toBe(VECTOR10.plaintext);
    });

    it.each([
      ['lower case', 'd7ce59d1f522d701'],
      ['zero-padded', '00D7CE59D1F522D701'],
    ])('finds the certificate when the serial header is %s', (_label, serial) => {
      // Prepare
      const verifier = createVerifier({ platformCertificates: [goNotifyCert] });

      // Act
      const act = () => verifier.verify({ ...VECTOR10, serial });

      // Assess
      expect(act).not.toThrow();
    });
  });

  describe('bad inputs (reliability §2.6)', () => {
    const verifier = createVerifier({ platformCertificates: [goNotifyCert] });

    it.each(['serial', 'signature', 'timestamp', 'nonce'] as const)(
      'throws missing_header when the %s header is empty (V1)',
      (header) => {
        // Act
        const reason = signatureReason(() => verifier.verify({ ...VECTOR10, [header]: '' }));

        // Assess
        expect(reason).toBe('missing_header');
      },
    );

    it.each(['serial', 'signature', 'timestamp', 'nonce'] as const)(
      'throws missing_header when the %s header is undefined at runtime (V1)',
      (header) => {
        // Prepare
        const input = { ...VECTOR10, [header]: undefined } as unknown as typeof VECTOR10;

        // Act
        const reason = signatureReason(() => verifier.verify(input));

        // Assess
        expect(reason).toBe('missing_header');
      },
    );

    it('throws probe when the signature is a WECHATPAY/SIGNTEST/ probe (V2)', () => {
      // Act
      const reason = signatureReason(() => verifier.verify({ ...VECTOR10, signature: PROBE_SIGNATURE }));

      // Assess
      expect(reason).toBe('probe');
    });

    it.each([
      ['301 s in the past', -301],
      ['301 s in the future', 301],
    ])('throws stale_timestamp when the timestamp is %s (V3)', (_label, offset) => {
      // Prepare
      const now = 1_700_000_000;
      const notify = signedNotify(goKey, VECTOR10.serial, now + offset);

      // Act
      const reason = signatureReason(() => verifier.verify({ ...notify, now }));

      // Assess
      expect(reason).toBe('stale_timestamp');
    });

    it.each([
      ['300 s in the past', -300],
      ['300 s in the future', 300],
      ['299 s in the past', -299],
    ])('accepts a notify when the timestamp is %s (V3)', (_label, offset) => {
      // Prepare
      const now = 1_700_000_000;
      const notify = signedNotify(goKey, VECTOR10.serial, now + offset);

      // Act
      const act = () => verifier.verify({ ...notify, now });

      // Assess
      expect(act).not.toThrow();
    });

    it('throws stale_timestamp when a genuine notify is replayed 301 s later (V15)', () => {
      // Act
      const reason = signatureReason(() => verifier.verify({ ...VECTOR10, now: VECTOR10.now + 301 }));

      // Assess
      expect(reason).toBe('stale_timestamp');
    });

    it.each([
      ['non-numeric', 'abc'],
      ['in milliseconds', '1624523846000'],
      ['negative', '-1624523846'],
      ['1e20', '1e20'],
      ['fractional', '1624523846.0'],
      ['padded with spaces', ' 1624523846'],
      ['comma-joined', '1624523846,1624523846'],
    ])('throws bad_timestamp when the timestamp is %s (V4)', (_label, timestamp) => {
      // Act
      const reason = signatureReason(() => verifier.verify({ ...VECTOR10, timestamp }));

      // Assess
      expect(reason).toBe('bad_timestamp');
    });

    it.each([
      ['unknown', 'F5765756002FDD77'],
      ['an unknown public key id', 'PUB_KEY_ID_0000000000000024101100397200000006'],
      ['comma-joined (duplicate header, V7)', 'D7CE59D1F522D701, D7CE59D1F522D701'],
      ['not hex', 'D7CE59D1F522D70Z'],
      ['an object key name', '__proto__'],
    ])('throws unknown_serial when the serial is %s (V5)', (_label, serial) => {
      // Act
      const reason = signatureReason(() => verifier.verify({ ...VECTOR10, serial }));

      // Assess
      expect(reason).toBe('unknown_serial');
    });

    it('throws bad_signature when the body is pretty-printed (re-serialised) JSON (V6)', () => {
      // Prepare
      const body = JSON.stringify(JSON.parse(VECTOR10.body), null, 2);

      // Act
      const reason = signatureReason(() => verifier.verify({ ...VECTOR10, body }));

      // Assess
      expect(body).not.toBe(VECTOR10.body);
      expect(reason).toBe('bad_signature');
    });

    it.each([
      ['a trailing newline', `${VECTOR10.body}\n`],
      ['one changed byte', VECTOR10.body.replace('签约成功', '签约失败')],
    ])('throws bad_signature when the body has %s (V6)', (_label, body) => {
      // Act
      const reason = signatureReason(() => verifier.verify({ ...VECTOR10, body }));

      // Assess
      expect(reason).toBe('bad_signature');
    });

    it('throws bad_signature when the nonce differs from the signed one', () => {
      // Act
      const reason = signatureReason(() => verifier.verify({ ...VECTOR10, nonce: `${VECTOR10.nonce}x` }));

      // Assess
      expect(reason).toBe('bad_signature');
    });

    it.each([
      ['comma-joined (duplicate header, V7)', `${VECTOR10.signature},${VECTOR10.signature}`],
      ['comma-space-joined (duplicate header, V7)', `${VECTOR10.signature}, ${VECTOR10.signature}`],
      ['not base64', 'this is not base64'],
      [
        'made by another key',
        signRsaSha256(axiosKey, `${VECTOR10.timestamp}\n${VECTOR10.nonce}\n${VECTOR10.body}\n`),
      ],
    ])('throws bad_signature when the signature is %s', (_label, signature) => {
      // Act
      const reason = signatureReason(() => verifier.verify({ ...VECTOR10, signature }));

      // Assess
      expect(reason).toBe('bad_signature');
    });
  });

  describe('the message bytes (written into one reused buffer)', () => {
    const verifier = createVerifier({ publicKey: { id: JAVA_PUBLIC_KEY_ID, pem: javaPublicKeyPem } });
    const now = 1_700_000_000;
    const bodies: [string, string][] = [
      ['ASCII', '{"event_type":"TRANSACTION.SUCCESS"}'],
      ['Chinese', '{"summary":"支付成功","event_type":"TRANSACTION.SUCCESS"}'],
      ['an emoji (a surrogate pair)', '{"attach":"会员🎉"}'],
      ['100 KB (past the reused buffer)', `{"pad":"${'支'.repeat(34_000)}"}`],
      ['empty', ''],
    ];

    it('accepts each body signed as UTF-8, in any order, and refuses each with one character changed', () => {
      // Prepare: long after short and short after long, so a stale byte of an earlier message would show.
      const order = [...bodies, ...[...bodies].reverse()];

      // Act
      const outcomes = order.map(([label, body]) => {
        const notify = signedNotify(javaKey, JAVA_PUBLIC_KEY_ID, now, body);
        const accepted = (() => {
          try {
            verifier.verify({ ...notify, now });
            return true;
          } catch {
            return false;
          }
        })();
        const altered = body === '' ? ' ' : `${body.slice(0, -1)}x`;
        const refused = signatureReason(() => verifier.verify({ ...notify, body: altered, now }));
        return [label, accepted, refused];
      });

      // Assess
      expect(outcomes).toEqual(order.map(([label]) => [label, true, 'bad_signature']));
    });

    it('refuses a signature over the nonce or timestamp of another notify', () => {
      // Prepare
      const body = bodies[1]?.[1] as string;
      const notify = signedNotify(javaKey, JAVA_PUBLIC_KEY_ID, now, body);

      // Act
      const reasons = [
        signatureReason(() => verifier.verify({ ...notify, nonce: `${notify.nonce}支`, now })),
        signatureReason(() => verifier.verify({ ...notify, timestamp: String(now + 1), now })),
      ];

      // Assess
      expect(reasons).toEqual(['bad_signature', 'bad_signature']);
    });
  });

  describe('combined mode (public key + rotating platform certificates)', () => {
    const verifier = createVerifier({
      publicKey: { id: JAVA_PUBLIC_KEY_ID, pem: javaPublicKeyPem },
      platformCertificates: [goNotifyCert, axiosServerCert],
    });
    const now = 1_700_000_000;

    it('lists the public key id first, then both certificate serials', () => {
      // Act
      const serials = verifier.serials();

      // Assess
      expect(serials).toEqual([JAVA_PUBLIC_KEY_ID, 'D7CE59D1F522D701', 'BE2A2344B984167B']);
    });

    it.each([
      ['the public key id', javaKey, JAVA_PUBLIC_KEY_ID],
      ['the old certificate serial', goKey, 'D7CE59D1F522D701'],
      ['the new certificate serial', axiosKey, 'BE2A2344B984167B'],
    ])('accepts a notify when it is signed under %s', (_label, key, serial) => {
      // Prepare
      const notify = signedNotify(key, serial, now);

      // Act
      const act = () => verifier.verify({ ...notify, now });

      // Assess
      expect(act).not.toThrow();
    });

    it('throws unknown_serial when a correctly signed notify names a third, unconfigured certificate', () => {
      // Prepare
      const notify = signedNotify(goKey, 'F5765756002FDD77', now);

      // Act
      const reason = signatureReason(() => verifier.verify({ ...notify, now }));

      // Assess
      expect(reason).toBe('unknown_serial');
    });

    it.each([
      ['the old key names the new serial', goKey, 'BE2A2344B984167B'],
      ['the new key names the old serial', axiosKey, 'D7CE59D1F522D701'],
      ['a certificate key names the public key id', goKey, JAVA_PUBLIC_KEY_ID],
    ])('throws bad_signature when %s', (_label, key, serial) => {
      // Prepare
      const notify = signedNotify(key, serial, now);

      // Act
      const reason = signatureReason(() => verifier.verify({ ...notify, now }));

      // Assess
      expect(reason).toBe('bad_signature');
    });
  });

  describe('creation', () => {
    it.each([
      ['a certificate serial', 'F5765756002FDD77'],
      ['non-digits after the prefix', 'PUB_KEY_ID_abc'],
      ['a lower-case prefix', 'pub_key_id_0000000000000024101100397200000006'],
      ['an empty id', ''],
    ])('throws when the public key id is %s', (_label, id) => {
      // Act
      const act = () => createVerifier({ publicKey: { id, pem: officialWechatPayPublicKeyPem } });

      // Assess
      expect(act).toThrow(/PUB_KEY_ID_/);
    });

    it('throws when neither a public key nor a certificate is given', () => {
      // Act
      const act = () => createVerifier({ platformCertificates: [] });

      // Assess
      expect(act).toThrow(/no WeChat Pay public key or platform certificate/);
    });

    it('throws when a certificate PEM is invalid', () => {
      // Act
      const act = () => createVerifier({ platformCertificates: [goNotifyCert, 'not a certificate'] });

      // Assess
      expect(act).toThrow(/platformCertificates\[1\]/);
    });

    it('throws when the public key PEM is a private key', () => {
      // Act
      const act = () =>
        createVerifier({
          publicKey: { id: JAVA_PUBLIC_KEY_ID, pem: fixture('java-wechatpay-private-key.pem') },
        });

      // Assess
      expect(act).toThrow(/private key/);
    });

    it('throws when the public key PEM is invalid', () => {
      // Act
      const act = () => createVerifier({ publicKey: { id: JAVA_PUBLIC_KEY_ID, pem: 'garbage' } });

      // Assess
      expect(act).toThrow(/not a valid public key PEM/);
    });

    it('lists a certificate once when the same certificate is given twice', () => {
      // Act
      const verifier = createVerifier({ platformCertificates: [goNotifyCert, goNotifyCert] });

      // Assess
      expect(verifier.serials()).toEqual(['D7CE59D1F522D701']);
    });

    it('lists every serial when three distinct certificates are given', () => {
      // Prepare
      const certificates = [goNotifyCert, goPlatformCert, axiosServerCert];

      // Act
      const verifier = createVerifier({ platformCertificates: certificates });

      // Assess
      expect(verifier.serials()).toEqual(['D7CE59D1F522D701', 'F5765756002FDD77', 'BE2A2344B984167B']);
    });
  });
});

describe('decodeBase64Strict', () => {
  it('accepts exactly the strings of the standard padded base64 pattern and decodes them as Node does', () => {
    // Prepare: 200 000 strings of up to 12 characters over the alphabet's edges, padding, base64url and junk.
    const alphabet = 'AQgw+/Zz09=-_ !\n.é';
    let seed = 12;
    const next = () => {
      seed = (seed * 48_271) % 2_147_483_647; // MINSTD: deterministic, exact in doubles
      return seed;
    };
    const strings = Array.from({ length: 200_000 }, () =>
      Array.from({ length: next() % 13 }, () => alphabet[next() % alphabet.length]).join(''),
    );

    // Act
    const disagreements = strings.filter((text) => {
      const decoded = decodeBase64Strict(text);
      const valid = text !== '' && BASE64_PATTERN.test(text);
      return valid !== (decoded !== undefined) || (valid && !decoded?.equals(Buffer.from(text, 'base64')));
    });

    // Assess
    expect(disagreements).toEqual([]);
    expect(strings.filter((text) => text !== '' && BASE64_PATTERN.test(text)).length).toBeGreaterThan(1000);
  });
});
