import { constants, createPrivateKey, createPublicKey, createSecretKey, privateDecrypt } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  decryptSensitiveField,
  encryptSensitiveField,
  sensitiveFieldKey,
  V3DecryptError,
} from '#lib/wechat-pay/v3-protocol';

// Test keys only: the sandbox's WeChat Pay pair (local/keys) and the wechatpay-java / wechatpay-go fixtures.
const sandboxKey = (name: string) =>
  readFileSync(new URL(`../../../../local/keys/${name}`, import.meta.url), 'utf8');
const fixture = (name: string) =>
  readFileSync(new URL(`../../../fixtures/wechat-pay/${name}`, import.meta.url), 'utf8');

const sandboxPrivate = createPrivateKey(sandboxKey('wechatpay-private.pem'));
const sandboxPublic = createPublicKey(sandboxKey('wechatpay-public.pem'));
const javaPrivate = createPrivateKey(fixture('java-wechatpay-private-key.pem'));
const javaPublicPem = fixture('java-wechatpay-public-key.pem');
const goPlatformCert = fixture('go-platform-cert-F5765756002FDD77.pem');
const goNotifyCert = fixture('go-notify-cert-D7CE59D1F522D701.pem');
const axiosServerCert = fixture('axios-apiserver-cert-BE2A2344B984167B.pem');

describe('encryptSensitiveField / decryptSensitiveField (敏感信息加密, RSA-OAEP SHA-1)', () => {
  it('round-trips a bank account and a Chinese name with the sandbox pair and the wechatpay-java pair', () => {
    // Prepare
    const pairs = [
      [sandboxPublic, sandboxPrivate],
      [createPublicKey(javaPublicPem), javaPrivate],
    ] as const;
    // Act
    const opened = pairs.flatMap(([publicKey, privateKey]) =>
      ['6222020200112233445', '张三'].map((text) =>
        decryptSensitiveField(privateKey, encryptSensitiveField(publicKey, text)),
      ),
    );
    // Assess
    expect(opened).toEqual(['6222020200112233445', '张三', '6222020200112233445', '张三']);
  });

  it('is OAEP with SHA-1 and MGF1-SHA1: node opens it with exactly those parameters, 344 base64 characters', () => {
    // Act
    const ciphertext = encryptSensitiveField(sandboxPublic, '李四');
    const opened = privateDecrypt(
      { key: sandboxPrivate, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha1' },
      Buffer.from(ciphertext, 'base64'),
    ).toString('utf8');
    // Assess
    expect(ciphertext).toHaveLength(344);
    expect(opened).toBe('李四');
    expect(() =>
      privateDecrypt(
        { key: sandboxPrivate, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' },
        Buffer.from(ciphertext, 'base64'),
      ),
    ).toThrow();
  });

  it('randomises the padding: the same plaintext never gives the same ciphertext', () => {
    // Act
    const first = encryptSensitiveField(sandboxPublic, '6222020200112233445');
    const second = encryptSensitiveField(sandboxPublic, '6222020200112233445');
    // Assess
    expect(first).not.toBe(second);
  });

  it('fails with another private key, and with one altered byte', () => {
    // Prepare
    const ciphertext = encryptSensitiveField(sandboxPublic, '6222020200112233445');
    const bytes = Buffer.from(ciphertext, 'base64');
    bytes[100] = (bytes[100] as number) ^ 1;
    // Act
    const wrongKey = () => decryptSensitiveField(javaPrivate, ciphertext);
    const altered = () => decryptSensitiveField(sandboxPrivate, bytes.toString('base64'));
    // Assess
    expect(wrongKey).toThrow(V3DecryptError);
    expect(altered).toThrow(V3DecryptError);
  });

  it('throws TypeError on bad input: wrong key kinds, empty or oversized plaintext, bad base64', () => {
    // Prepare
    const secret = createSecretKey(Buffer.alloc(32));
    const ciphertext = encryptSensitiveField(sandboxPublic, 'x');
    // Act and assess
    expect(() => encryptSensitiveField(sandboxPrivate, 'x')).toThrow(TypeError);
    expect(() => encryptSensitiveField(secret, 'x')).toThrow(TypeError);
    expect(() => encryptSensitiveField('pem' as never, 'x')).toThrow(TypeError);
    expect(() => encryptSensitiveField(sandboxPublic, '')).toThrow(TypeError);
    expect(() => encryptSensitiveField(sandboxPublic, 42 as never)).toThrow(TypeError);
    expect(() => encryptSensitiveField(sandboxPublic, 'x'.repeat(215))).toThrow(TypeError);
    expect(encryptSensitiveField(sandboxPublic, 'x'.repeat(214))).toHaveLength(344);
    expect(() => decryptSensitiveField(sandboxPublic, ciphertext)).toThrow(TypeError);
    expect(() => decryptSensitiveField(sandboxPrivate, '')).toThrow(TypeError);
    expect(() => decryptSensitiveField(sandboxPrivate, `${ciphertext.slice(0, -4)}-_==`)).toThrow(TypeError);
    expect(() => decryptSensitiveField(sandboxPrivate, ciphertext.slice(4))).toThrow(TypeError);
  });
});

describe('sensitiveFieldKey', () => {
  it('takes the WeChat Pay public key and its id when configured', () => {
    // Act
    const chosen = sensitiveFieldKey({
      publicKey: { id: 'PUB_KEY_ID_0114232019112100000000000001', pem: javaPublicPem },
      platformCertificates: [goPlatformCert],
    });
    // Assess
    expect(chosen.serial).toBe('PUB_KEY_ID_0114232019112100000000000001');
    expect(chosen.key.equals(createPublicKey(javaPublicPem))).toBe(true);
  });

  it('in certificate mode takes the valid certificate that expires last, by its serial', () => {
    // Act
    const in2026 = sensitiveFieldKey(
      { platformCertificates: [goPlatformCert, goNotifyCert] },
      Date.parse('2026-11-30T00:00:00Z'),
    );
    const in2040 = sensitiveFieldKey(
      { platformCertificates: [goPlatformCert, axiosServerCert] },
      Date.parse('2040-01-01T00:00:00Z'),
    );
    // Assess
    expect(in2026.serial).toBe('D7CE59D1F522D701');
    expect(in2040.serial).toBe('BE2A2344B984167B');
    expect(() =>
      sensitiveFieldKey({ platformCertificates: [goPlatformCert] }, Date.parse('2032-01-01T00:00:00Z')),
    ).toThrow(/no WeChat Pay public key or valid platform certificate/);
  });
});
