import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { isPageUrlAllowed, jssdkSignature, signedPageUrl } from '#lib/wechat/jssdk';

/** JS-SDK 附录1's official vector (wechat-protocol.md §7, Test vectors 15 and 16). */
const TICKET = 'sM4AOVdWfPE4DxkXGEs8VMCPGGVi4C3VM0P37wVUCFvkVAy_90u5h9nbSlYy3-Sl-HhTdfl2fzFy1AOcHKP7qg';
const NONCE = 'Wm3WZYTPz0wzccnW';
const TIMESTAMP = 1414587457;

describe('jssdkSignature', () => {
  it('matches the official vector (current doc)', () => {
    // Act
    const result = jssdkSignature({
      jsapiTicket: TICKET,
      nonceStr: NONCE,
      timestamp: TIMESTAMP,
      url: 'http://mp.weixin.qq.com?params=value',
    });

    // Assess
    expect(result.string1).toBe(
      `jsapi_ticket=${TICKET}&noncestr=${NONCE}&timestamp=1414587457&url=http://mp.weixin.qq.com?params=value`,
    );
    expect(result.signature).toBe('0f9de62fce790f9a083d5c99e95740ceb90c27ed');
  });

  it('matches the official vector of the older doc, and signs the URL without its fragment', () => {
    // Arrange
    const input = { jsapiTicket: TICKET, nonceStr: NONCE, timestamp: TIMESTAMP };

    // Act / Assess
    expect(jssdkSignature({ ...input, url: 'http://mp.weixin.qq.com' }).signature).toBe(
      'f4d90daf4b3bca3078ab155816175ba34c443a7b',
    );
    expect(
      jssdkSignature({ ...input, url: 'http://mp.weixin.qq.com?params=value#/route?x=1#y' }).signature,
    ).toBe('0f9de62fce790f9a083d5c99e95740ceb90c27ed');
  });

  it('signs raw values (no URL escaping) as SHA-1 lowercase hex', () => {
    // Arrange
    const url = 'https://h5.example.com/页面?q=a b&c=%20';

    // Act
    const { string1, signature } = jssdkSignature({ jsapiTicket: 't', nonceStr: 'n', timestamp: 1, url });

    // Assess
    expect(string1).toBe(`jsapi_ticket=t&noncestr=n&timestamp=1&url=${url}`);
    expect(signature).toBe(createHash('sha1').update(string1, 'utf8').digest('hex'));
  });
});

describe('signedPageUrl', () => {
  it('drops everything from the first #', () => {
    expect(signedPageUrl('https://a.example/x?y=1#/p#q')).toBe('https://a.example/x?y=1');
    expect(signedPageUrl('https://a.example/x')).toBe('https://a.example/x');
  });
});

describe('isPageUrlAllowed', () => {
  const origins = ['https://h5.example.com', 'http://127.0.0.1:3100'];

  it('accepts pages under an allowed origin, with path, query and fragment', () => {
    for (const url of [
      'https://h5.example.com',
      'https://h5.example.com/',
      'https://h5.example.com/pay?plan=month#/step/2',
      'HTTPS://H5.EXAMPLE.COM/a',
      'https://h5.example.com:443/a',
      'http://127.0.0.1:3100/demo.html',
    ]) {
      expect(isPageUrlAllowed(url, origins), url).toBe(true);
    }
  });

  it('refuses other origins, userinfo tricks, protocol-relative and encoded or foreign schemes', () => {
    for (const url of [
      '',
      '//evil.com/x',
      '/relative/path',
      'https://evil.com/',
      'https://h5.example.com.evil.com/',
      'https://h5.example.com@evil.com/',
      'https://user:pass@h5.example.com/',
      'https://h5.example.com:8443/',
      'http://h5.example.com/',
      'http://127.0.0.1:3101/',
      'javascript:alert(1)//https://h5.example.com',
      'javascript%3Aalert(1)',
      'https%3A%2F%2Fh5.example.com%2F',
      'https:%2F%2Fh5.example.com/',
      'https:/h5.example.com/',
      'https:\\\\h5.example.com/',
      'https://h5.example.com\\@evil.com/',
      'data:text/html,https://h5.example.com',
      ' https://h5.example.com/',
      'https://h5.example.com/\n',
      'https://h5.example.com/\t',
      `https://h5.example.com/${'a'.repeat(2048)}`,
    ]) {
      expect(isPageUrlAllowed(url, origins), JSON.stringify(url)).toBe(false);
    }
  });

  it('refuses everything when no origin is allowed', () => {
    expect(isPageUrlAllowed('https://h5.example.com/', [])).toBe(false);
  });
});
