import { describe, expect, it } from 'vitest';
import { ValidationError } from '#lib/errors';
import { parseProfileUpdate } from '#lib/users';

/** Profile text hygiene (issue 14 item 6): what a nickname, company, introduce and avatar may hold. */

function refusal(body: Record<string, unknown>): ValidationError {
  try {
    parseProfileUpdate(body);
  } catch (error) {
    expect(error).toBeInstanceOf(ValidationError);
    return error as ValidationError;
  }
  throw new Error(`expected ${JSON.stringify(body)} to be refused`);
}

const REFUSED_TEXT: [string, string][] = [
  ['a C0 control', 'a\u0007b'],
  ['a newline', 'a\nb'],
  ['a C1 control (NEL)', 'a\u0085b'],
  ['U+2028 line separator', 'a\u2028b'],
  ['U+2029 paragraph separator', 'a\u2029b'],
  ['U+200E left-to-right mark', 'a\u200eb'],
  ['U+200F right-to-left mark', 'a\u200fb'],
  ['U+061C Arabic letter mark', 'a\u061cb'],
  ['U+202E right-to-left override', '\u202egnp.exe'],
  ['U+2066 left-to-right isolate', 'a\u2066b'],
  ['a lone high surrogate', 'a\ud800b'],
  ['a lone low surrogate', 'a\udc00b'],
  ['only Hangul fillers (U+3164)', '\u3164\u3164'],
  ['only Braille blanks (U+2800)', '\u2800'],
  ['only Hangul choseong/jungseong fillers', '\u115f\u1160'],
  ['only spaces', '   '],
  ['only zero-width spaces', '\u200b\u200b'],
  ['nine combining marks on one character', `e${'\u0300'.repeat(9)}`],
];

describe('profile text', () => {
  it.each(REFUSED_TEXT)('refuses %s in every text field', (_name, value) => {
    for (const field of ['nickname', 'company', 'introduce']) {
      // Act
      const error = refusal({ [field]: value });

      // Assess
      expect(error.errors).toEqual([{ field, code: 'INVALID_VALUE' }]);
      expect(error.message).toMatch(/^[^A-Za-z]+$/);
    }
  });

  it('stores text NFC-normalised', () => {
    // Act
    const changes = parseProfileUpdate({ nickname: 'Cafe\u0301', introduce: 'A\u030a' });

    // Assess
    expect(changes).toEqual({ nickname: 'Caf\u00e9', introduce: '\u00c5' });
  });

  it('accepts eight combining marks, CJK, emoji and an empty company', () => {
    // Act
    const changes = parseProfileUpdate({
      nickname: `q${'\u0301\u0300'.repeat(4)}`,
      company: '',
      introduce: '你好 👋🏽',
    });

    // Assess
    expect(Object.keys(changes)).toEqual(['nickname', 'company', 'introduce']);
  });
});

describe('avatar', () => {
  it.each([
    ['http', 'http://example.com/a.png'],
    ['localhost', 'https://localhost/a.png'],
    ['a localhost subdomain', 'https://api.localhost/a.png'],
    ['.local', 'https://printer.local/a.png'],
    ['.internal', 'https://metadata.google.internal/a.png'],
    ['an IPv4 literal', 'https://127.0.0.1/a.png'],
    ['an IPv4 literal in hex', 'https://0x7f000001/a.png'],
    ['an IPv6 literal', 'https://[::1]/a.png'],
    ['credentials', 'https://user:pass@example.com/a.png'],
    ['no dot in the host', 'https://intranet/a.png'],
    ['not a URL', 'avatar.png'],
  ])('refuses %s', (_name, avatar) => {
    // Act
    const error = refusal({ avatar });

    // Assess
    expect(error.errors).toEqual([{ field: 'avatar', code: 'INVALID_VALUE' }]);
  });

  it('stores the parsed URL href', () => {
    // Act
    const changes = parseProfileUpdate({ avatar: 'HTTPS://Thirdwx.QLOGO.cn/mmopen/a b.png' });

    // Assess
    expect(changes.avatar).toBe('https://thirdwx.qlogo.cn/mmopen/a%20b.png');
  });

  it('accepts an empty avatar (clears it)', () => {
    expect(parseProfileUpdate({ avatar: '' })).toEqual({ avatar: '' });
  });
});
