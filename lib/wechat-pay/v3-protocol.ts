/**
 * WeChat Pay API v3 crypto layer: request signing (Authorization header), mini-program `paySign`, response and
 * notify signature verification, and AEAD_AES_256_GCM resource decryption.
 *
 * Pure functions over node:crypto: no network, no config reads, no clock reads except where a default
 * timestamp/nonce is generated (pass them in to stay deterministic). All timestamps are unix SECONDS.
 * Keys are node `KeyObject`s parsed once by the caller (or once by `createVerifier`), never per call.
 */
import { isUtf8 } from 'node:buffer';
import {
  constants,
  createCipheriv,
  createDecipheriv,
  createPublicKey,
  createSign,
  createVerify,
  KeyObject,
  privateDecrypt,
  publicEncrypt,
  randomBytes,
  X509Certificate,
} from 'node:crypto';

/**
 * The only signature scheme of API v3: prefix of the merchant `Authorization` header and the
 * `Wechatpay-Signature-Type` value.
 */
export const AUTH_SCHEME = 'WECHATPAY2-SHA256-RSA2048';
/** Signatures WeChat sends on purpose to check that merchants verify (official FAQ 4016241880). */
const PROBE_PREFIX = 'WECHATPAY/SIGNTEST/';
/**
 * Allowed clock skew between a signed timestamp (`Wechatpay-Timestamp`, Authorization `timestamp`) and now,
 * seconds (official: "最多5分钟的时间偏差").
 */
export const MAX_SKEW_SECONDS = 300;
const GCM_TAG_BYTES = 16;
/** WeChat resource nonce length: "随机串nonce长度12个字节". */
const RESOURCE_NONCE_BYTES = 12;
/** APIv3 key length: "密钥key长度为32个字节". */
const API_V3_KEY_BYTES = 32;
/** associated_data limit: field table says string[1,16], the decryption guide "<16 字节"; we allow ≤ 16. */
const MAX_ASSOCIATED_DATA_BYTES = 16;
/** ciphertext field limit from the notify field table: string[1,1048576]. */
const MAX_CIPHERTEXT_CHARS = 1_048_576;
const MAX_AUTHORIZATION_CHARS = 4096;
/** 10 digits = seconds until year 2286; 13-digit millisecond values are rejected. */
const TIMESTAMP_PATTERN = /^\d{1,10}$/;
const MAX_TIMESTAMP_SECONDS = 9_999_999_999;
const PUBLIC_KEY_ID_PATTERN = /^PUB_KEY_ID_\d+$/;
const HEX_SERIAL_PATTERN = /^[0-9A-Fa-f]{1,128}$/;
/** Header tokens we put between double quotes: no quote, comma, space or newline can break the header. */
const HEADER_TOKEN_PATTERN = /^[0-9A-Za-z_-]+$/;
/** Standard padded base64, as decodeBase64Strict reads it (kept as its definition; the tests hold one to the other). */
export const BASE64_PATTERN = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const AUTHORIZATION_ITEM_PATTERN = /^([a-z_]+)="([^"]*)"$/;
const AUTHORIZATION_KEYS = ['mchid', 'nonce_str', 'signature', 'timestamp', 'serial_no'] as const;

export type V3SignatureReason =
  | 'missing_header'
  | 'unknown_mchid'
  | 'bad_timestamp'
  | 'stale_timestamp'
  | 'unknown_serial'
  | 'probe'
  | 'bad_signature'
  | 'bad_authorization';

export type V3DecryptReason =
  | 'bad_key'
  | 'bad_nonce'
  | 'bad_resource'
  | 'bad_algorithm'
  | 'bad_associated_data'
  | 'bad_ciphertext'
  | 'short_input'
  | 'bad_tag'
  | 'bad_plaintext';

/** A v3 signature or Authorization header was rejected; `reason` is machine-readable and holds no secret. */
export class V3SignatureError extends Error {
  readonly reason: V3SignatureReason;

  constructor(reason: V3SignatureReason, message = `WeChat Pay v3 signature rejected: ${reason}`) {
    super(message);
    this.name = 'V3SignatureError';
    this.reason = reason;
  }
}

/** A v3 encrypted resource could not be decrypted/authenticated; `reason` is machine-readable. */
export class V3DecryptError extends Error {
  readonly reason: V3DecryptReason;

  constructor(reason: V3DecryptReason, message = `WeChat Pay v3 decryption failed: ${reason}`) {
    super(message);
    this.name = 'V3DecryptError';
    this.reason = reason;
  }
}

/** Verifies WeChat Pay v3 response/notify signatures against keys fixed at creation (no network). */
export interface WechatPayVerifier {
  /** Configured ids: the `PUB_KEY_ID_…` public key id first, then certificate serials (upper-case hex). */
  serials(): string[];
  /** Throws V3SignatureError (see createVerifier) or returns when the headers sign `body` at time `now` (unix s). */
  verify(input: {
    serial: string;
    signature: string;
    timestamp: string;
    nonce: string;
    body: string;
    now: number;
  }): void;
}

/**
 * SHA256withRSA (PKCS#1 v1.5) over the UTF-8 `message` → base64; throws TypeError unless an RSA private key
 * (WeChat 签名生成).
 */
export function signRsaSha256(privateKey: KeyObject, message: string): string {
  if (privateKey.type !== 'private' || privateKey.asymmetricKeyType !== 'rsa') {
    throw new TypeError('signRsaSha256: an RSA private KeyObject is required');
  }
  // The KeyObject itself, not an options object (PKCS#1 v1.5 is an RSA key's default padding), through a
  // Sign object: on Node 24 the one-shot crypto.sign/verify set up a job per call that costs more than this.
  return createSign('sha256').update(message, 'utf8').sign(privateKey, 'base64');
}

/**
 * True when base64 `signatureB64` is a SHA256withRSA (PKCS#1 v1.5) signature of UTF-8 `message`; false (never
 * throws) on malformed base64, wrong length or wrong key type (WeChat 验签).
 */
export function verifyRsaSha256(publicKey: KeyObject, message: string, signatureB64: string): boolean {
  if (typeof message !== 'string') return false;
  return verifyRsaSha256Message(publicKey, message, signatureB64);
}

/** verifyRsaSha256 over a UTF-8 string or its bytes (the verifier's reused buffer, see responseMessageBytes). */
function verifyRsaSha256Message(
  publicKey: KeyObject,
  message: string | Buffer,
  signatureB64: string,
): boolean {
  try {
    if (publicKey.asymmetricKeyType !== 'rsa') return false;
    const modulus = rsaModulusBytes(publicKey);
    const signature = decodeBase64Strict(signatureB64);
    if (signature === undefined || modulus === undefined || signature.length !== modulus) return false;
    // The KeyObject itself through a Verify object (see signRsaSha256): about a third cheaper than the one-shot.
    const verifier = createVerify('sha256');
    if (typeof message === 'string') verifier.update(message, 'utf8');
    else verifier.update(message);
    return verifier.verify(publicKey, signature);
  } catch {
    return false;
  }
}

/**
 * `Authorization` header value `WECHATPAY2-SHA256-RSA2048
 * mchid="…",nonce_str="…",signature="…",timestamp="…",serial_no="…"` signing
 * `METHOD\nURL\nTIMESTAMP\nNONCE\nBODY\n`; url = path+query without host, timestamp unix s (default now), nonce
 * default 32 hex chars; throws TypeError on a bad input (WeChat 签名生成 / request-body-parameters-signature).
 */
export function buildAuthorization(input: {
  mchId: string;
  serialNo: string;
  privateKey: KeyObject;
  method: string;
  url: string;
  body: string;
  timestamp?: number;
  nonce?: string;
}): string {
  const method = input.method.toUpperCase();
  if (!/^[A-Z]+$/.test(method)) throw new TypeError('buildAuthorization: method must be an HTTP verb');
  if (!input.url.startsWith('/') || /[\r\n]/.test(input.url)) {
    throw new TypeError('buildAuthorization: url must be the path (+ ?query) without scheme and host');
  }
  assertHeaderToken('mchId', input.mchId);
  assertHeaderToken('serialNo', input.serialNo);
  const timestamp = input.timestamp ?? nowSeconds();
  assertUnixSeconds('buildAuthorization', timestamp);
  const nonce = input.nonce ?? randomNonce();
  assertHeaderToken('nonce', nonce);
  const signature = signRsaSha256(
    input.privateKey,
    requestMessage(method, input.url, String(timestamp), nonce, input.body),
  );
  return (
    `${AUTH_SCHEME} mchid="${input.mchId}",nonce_str="${nonce}",signature="${signature}",` +
    `timestamp="${timestamp}",serial_no="${input.serialNo}"`
  );
}

/**
 * Parses a merchant `Authorization` header (five key="value" items in any order, each exactly once, non-empty) for
 * the local sandbox; throws V3SignatureError 'missing_header' | 'bad_authorization' (WeChat 签名生成,
 * "以上五项签名信息，无顺序要求").
 */
export function parseAuthorization(header: string): {
  mchid: string;
  nonce_str: string;
  signature: string;
  timestamp: string;
  serial_no: string;
} {
  if (typeof header !== 'string' || header.trim() === '') throw new V3SignatureError('missing_header');
  if (header.length > MAX_AUTHORIZATION_CHARS) throw badAuthorization('header too long');
  const prefix = `${AUTH_SCHEME} `;
  if (!header.startsWith(prefix)) throw badAuthorization(`scheme must be ${AUTH_SCHEME}`);
  const items = new Map<string, string>();
  for (const part of header.slice(prefix.length).split(',')) {
    const match = AUTHORIZATION_ITEM_PATTERN.exec(part.trim());
    const key = match?.[1];
    const value = match?.[2];
    if (key === undefined || value === undefined) throw badAuthorization('malformed item');
    if (!(AUTHORIZATION_KEYS as readonly string[]).includes(key)) {
      throw badAuthorization(`unknown item ${key}`);
    }
    if (items.has(key)) throw badAuthorization(`duplicate item ${key}`);
    if (value === '') throw badAuthorization(`empty item ${key}`);
    items.set(key, value);
  }
  const pick = (key: (typeof AUTHORIZATION_KEYS)[number]): string => {
    const value = items.get(key);
    if (value === undefined) throw badAuthorization(`missing item ${key}`);
    return value;
  };
  return {
    mchid: pick('mchid'),
    nonce_str: pick('nonce_str'),
    signature: pick('signature'),
    timestamp: pick('timestamp'),
    serial_no: pick('serial_no'),
  };
}

/**
 * Verifies a merchant request's `Authorization` header as WeChat Pay does (used by the local sandbox): parse
 * (parseAuthorization) → `mchid` equals `mchId` → `serial_no` equals `serialNo` (hex, case-insensitive) →
 * `timestamp` unix seconds within ±MAX_SKEW_SECONDS of `now` (unix seconds, may be fractional) → SHA256withRSA
 * under the merchant's `publicKey` over the message buildAuthorization signs, `METHOD\nURL\nTIMESTAMP\nNONCE\nBODY\n`
 * (`url` = path + query as sent, `body` = the raw body, '' for GET). Returns the parsed items; throws
 * V3SignatureError 'missing_header' | 'bad_authorization' | 'unknown_mchid' | 'unknown_serial' | 'bad_timestamp' |
 * 'stale_timestamp' | 'bad_signature' (WeChat 签名生成 / request-body-parameters-signature; a bad one gets HTTP 401).
 */
export function verifyAuthorization(input: {
  header: string;
  method: string;
  url: string;
  body: string;
  publicKey: KeyObject;
  mchId: string;
  serialNo: string;
  now: number;
}): ReturnType<typeof parseAuthorization> {
  const auth = parseAuthorization(input.header);
  if (auth.mchid !== input.mchId) throw new V3SignatureError('unknown_mchid');
  if (auth.serial_no.toUpperCase() !== input.serialNo.toUpperCase())
    throw new V3SignatureError('unknown_serial');
  assertFresh(auth.timestamp, input.now);
  const message = requestMessage(
    input.method.toUpperCase(),
    input.url,
    auth.timestamp,
    auth.nonce_str,
    input.body,
  );
  if (!verifyRsaSha256(input.publicKey, message, auth.signature)) throw new V3SignatureError('bad_signature');
  return auth;
}

/**
 * `wx.requestPayment` arguments for v3: paySign = SHA256withRSA over `appId\ntimeStamp\nnonceStr\nprepay_id=…\n`
 * (timeStamp unix s as a string, default now; signType 'RSA' is not signed); throws TypeError on an
 * empty/multi-line field or a prepayId that already has the `prepay_id=` prefix (WeChat 小程序调起支付签名).
 */
export function buildPayParamsV3(input: {
  appId: string;
  prepayId: string;
  privateKey: KeyObject;
  timeStamp?: string;
  nonceStr?: string;
}): { timeStamp: string; nonceStr: string; package: string; signType: 'RSA'; paySign: string } {
  const timeStamp = input.timeStamp ?? String(nowSeconds());
  const nonceStr = input.nonceStr ?? randomNonce();
  if (!TIMESTAMP_PATTERN.test(timeStamp)) {
    throw new TypeError('buildPayParamsV3: timeStamp must be unix seconds');
  }
  assertSingleLine('appId', input.appId);
  assertSingleLine('nonceStr', nonceStr);
  assertSingleLine('prepayId', input.prepayId);
  if (input.prepayId.includes('=')) {
    throw new TypeError('buildPayParamsV3: prepayId must be the bare id, without the "prepay_id=" prefix');
  }
  const pkg = `prepay_id=${input.prepayId}`;
  const paySign = signRsaSha256(input.privateKey, `${input.appId}\n${timeStamp}\n${nonceStr}\n${pkg}\n`);
  return { timeStamp, nonceStr, package: pkg, signType: 'RSA', paySign };
}

/**
 * An AES key: a secret KeyObject (createSecretKey, imported once per container: on Node 24 a Buffer key makes
 * each createDecipheriv import it again, about four times the cost) or the raw bytes.
 */
export type AesKey = Buffer | KeyObject;

/**
 * Decrypts base64(ciphertext ‖ 16-byte tag) with AES-GCM (16-byte key → aes-128-gcm, 32 → aes-256-gcm), UTF-8
 * nonce and AAD → UTF-8 plaintext; throws V3DecryptError 'bad_key' | 'bad_nonce' | 'bad_ciphertext' |
 * 'short_input' | 'bad_tag' | 'bad_plaintext' (WeChat 证书和回调报文解密, RFC 5116).
 */
export function aesGcmDecrypt(
  key: AesKey,
  nonce: string,
  associatedData: string,
  ciphertextB64: string,
): string {
  const algorithm = gcmAlgorithm(key);
  const iv = gcmNonce(nonce);
  return gcmOpen(algorithm, key, iv, Buffer.from(associatedData, 'utf8'), ciphertextB64);
}

/**
 * The AES-GCM open shared by aesGcmDecrypt and decryptResource (their checks done): strict base64 → data ‖
 * 16-byte tag → plaintext checked to be UTF-8. No `authTagLength` option: the tag handed to setAuthTag is always
 * the last GCM_TAG_BYTES bytes, so only a full 16-byte tag is ever checked (and the option costs a few % a call).
 */
function gcmOpen(
  algorithm: 'aes-128-gcm' | 'aes-256-gcm',
  key: AesKey,
  iv: Buffer,
  aad: Buffer,
  ciphertextB64: string,
): string {
  const data = decodeBase64Strict(ciphertextB64);
  if (data === undefined) throw new V3DecryptError('bad_ciphertext');
  const end = data.length - GCM_TAG_BYTES;
  if (end < 0) throw new V3DecryptError('short_input');
  let plaintext: Buffer;
  try {
    const decipher = createDecipheriv(algorithm, key, iv);
    decipher.setAuthTag(data.subarray(end));
    decipher.setAAD(aad);
    plaintext = decipher.update(data.subarray(0, end));
    // GCM is a stream mode: final() only checks the tag (throws on a bad one) and returns no bytes.
    decipher.final();
  } catch {
    throw new V3DecryptError('bad_tag');
  }
  if (!isUtf8(plaintext)) throw new V3DecryptError('bad_plaintext');
  return plaintext.toString('utf8');
}

/**
 * Inverse of aesGcmDecrypt (used by the local sandbox to build notifies): UTF-8 plaintext → base64(ciphertext ‖
 * 16-byte tag); throws V3DecryptError 'bad_key' | 'bad_nonce' (WeChat 回调报文加密格式).
 */
export function aesGcmEncrypt(key: AesKey, nonce: string, associatedData: string, plaintext: string): string {
  const cipher = createCipheriv(gcmAlgorithm(key), key, gcmNonce(nonce), { authTagLength: GCM_TAG_BYTES });
  cipher.setAAD(Buffer.from(associatedData, 'utf8'));
  const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
  return Buffer.concat([body, cipher.getAuthTag()]).toString('base64');
}

/**
 * Decrypts a notify `resource` ({algorithm 'AEAD_AES_256_GCM', ciphertext, nonce of 12 bytes, associated_data ≤ 16
 * bytes or absent}) with the 32-byte APIv3 key → plaintext JSON string; throws V3DecryptError 'bad_key' |
 * 'bad_resource' | 'bad_algorithm' | 'bad_ciphertext' | 'bad_nonce' | 'bad_associated_data' | 'short_input' |
 * 'bad_tag' (WeChat 支付通知 / 证书和回调报文解密).
 */
export function decryptResource(resource: unknown, apiV3Key: AesKey): string {
  if (aesKeyBytes(apiV3Key) !== API_V3_KEY_BYTES) throw new V3DecryptError('bad_key');
  if (typeof resource !== 'object' || resource === null || Array.isArray(resource)) {
    throw new V3DecryptError('bad_resource');
  }
  const fields = resource as Record<string, unknown>;
  if (fields.algorithm !== 'AEAD_AES_256_GCM') throw new V3DecryptError('bad_algorithm');
  const { ciphertext, nonce } = fields;
  if (typeof ciphertext !== 'string' || ciphertext === '' || ciphertext.length > MAX_CIPHERTEXT_CHARS) {
    throw new V3DecryptError('bad_ciphertext');
  }
  // Encoded once and measured in bytes; a string never has fewer UTF-8 bytes than UTF-16 units, so a longer one is
  // refused unencoded.
  const iv =
    typeof nonce === 'string' && nonce.length <= RESOURCE_NONCE_BYTES
      ? Buffer.from(nonce, 'utf8')
      : undefined;
  if (iv?.length !== RESOURCE_NONCE_BYTES) throw new V3DecryptError('bad_nonce');
  const associatedData = fields.associated_data ?? '';
  const aad =
    typeof associatedData === 'string' && associatedData.length <= MAX_ASSOCIATED_DATA_BYTES
      ? associatedDataBytes(associatedData)
      : undefined;
  if (aad === undefined || aad.length > MAX_ASSOCIATED_DATA_BYTES) {
    throw new V3DecryptError('bad_associated_data');
  }
  return gcmOpen('aes-256-gcm', apiV3Key, iv, aad, ciphertext);
}

/**
 * Builds a verifier from a WeChat Pay public key ({id 'PUB_KEY_ID_<digits>', pem SPKI}) and/or platform
 * certificate PEMs (one per element; combined mode for migration), parsed once; verify() checks non-empty headers
 * → /^\d{1,10}$/ and |now − ts| ≤ 300 s → known serial → not a WECHATPAY/SIGNTEST/ probe → SHA256withRSA over
 * `timestamp\nnonce\nbody\n`, throwing V3SignatureError 'missing_header' | 'bad_timestamp' | 'stale_timestamp' |
 * 'unknown_serial' | 'probe' | 'bad_signature'; creation throws Error on a bad id, bad PEM, non-RSA key, duplicate
 * serial or no key at all (WeChat 验签 / 如何使用微信支付公钥验签).
 */
export function createVerifier(opts: {
  publicKey?: { id: string; pem: string };
  platformCertificates?: string[];
}): WechatPayVerifier {
  const keys = new Map<string, KeyObject>();
  const ids: string[] = [];

  if (opts.publicKey !== undefined) {
    const { id, pem } = opts.publicKey;
    if (!PUBLIC_KEY_ID_PATTERN.test(id)) {
      throw new Error('createVerifier: publicKey.id must look like PUB_KEY_ID_<digits>');
    }
    if (pem.includes('PRIVATE KEY')) throw new Error('createVerifier: publicKey.pem holds a private key');
    let key: KeyObject;
    try {
      key = createPublicKey(pem);
    } catch {
      throw new Error(`createVerifier: publicKey.pem for ${id} is not a valid public key PEM`);
    }
    assertRsa(key, id);
    keys.set(id, key);
    ids.push(id);
  }

  for (const [index, pem] of (opts.platformCertificates ?? []).entries()) {
    let certificate: X509Certificate;
    try {
      certificate = new X509Certificate(pem);
    } catch {
      throw new Error(`createVerifier: platformCertificates[${index}] is not a valid PEM certificate`);
    }
    const serial = certificate.serialNumber.toUpperCase();
    const key = certificate.publicKey;
    assertRsa(key, serial);
    const lookup = normaliseSerial(serial);
    const existing = keys.get(lookup);
    if (existing !== undefined) {
      if (existing.equals(key)) continue;
      throw new Error(`createVerifier: two different certificates share serial ${serial}`);
    }
    keys.set(lookup, key);
    ids.push(serial);
  }

  if (keys.size === 0) {
    throw new Error('createVerifier: no WeChat Pay public key or platform certificate given');
  }

  // Keys are stored under a PUB_KEY_ID_<digits> id or a normalised hex serial, so an exact hit is what the
  // patterns would find; only a miss needs them.
  const keyFor = (serial: string): KeyObject | undefined => {
    const exact = keys.get(serial);
    if (exact !== undefined) return exact;
    if (HEX_SERIAL_PATTERN.test(serial)) return keys.get(normaliseSerial(serial));
    return undefined;
  };

  return {
    serials: () => [...ids],
    verify(input) {
      const { serial, signature, timestamp, nonce, body, now } = input;
      if (!isFilled(serial) || !isFilled(signature) || !isFilled(timestamp) || !isFilled(nonce)) {
        throw new V3SignatureError('missing_header');
      }
      if (typeof body !== 'string') throw new TypeError('verify: body must be the raw body string');
      if (!Number.isFinite(now)) throw new TypeError('verify: now must be unix seconds');
      assertFresh(timestamp, now);
      const key = keyFor(serial);
      if (key === undefined) throw new V3SignatureError('unknown_serial');
      if (signature.startsWith(PROBE_PREFIX)) throw new V3SignatureError('probe');
      if (signature.includes(',')) throw new V3SignatureError('bad_signature');
      if (!verifyRsaSha256Message(key, responseMessageBytes(timestamp, nonce, body), signature)) {
        throw new V3SignatureError('bad_signature');
      }
    },
  };
}

/**
 * Signs a response/notify as WeChat Pay does (`timestamp\nnonce\nbody\n`, timestamp unix s) → base64
 * `Wechatpay-Signature`; for the local sandbox; throws TypeError on a bad key or timestamp (WeChat 验签 message
 * format).
 */
export function signResponse(privateKey: KeyObject, timestamp: number, nonce: string, body: string): string {
  assertUnixSeconds('signResponse', timestamp);
  return signRsaSha256(privateKey, responseMessage(String(timestamp), nonce, body));
}

/**
 * The signature headers WeChat Pay puts on a response or notify with this raw body: `Wechatpay-Timestamp` (unix s,
 * default now), `Wechatpay-Nonce` (default 32 random hex characters), `Wechatpay-Signature` (signResponse),
 * `Wechatpay-Serial` (the public key id or platform certificate serial) and `Wechatpay-Signature-Type`; for the
 * local sandbox and notify fixtures; throws TypeError on a bad key or timestamp (WeChat 验签 / 如何使用微信支付公钥验签).
 */
export function wechatpayHeaders(
  privateKey: KeyObject,
  serial: string,
  body: string,
  timestamp = nowSeconds(),
  nonce = randomNonce(),
): Record<string, string> {
  return {
    'Wechatpay-Timestamp': String(timestamp),
    'Wechatpay-Nonce': nonce,
    'Wechatpay-Signature': signResponse(privateKey, timestamp, nonce, body),
    'Wechatpay-Serial': serial,
    'Wechatpay-Signature-Type': AUTH_SCHEME,
  };
}

/** RSA-OAEP with SHA-1 and MGF1-SHA1: WeChat Pay's 敏感信息加密 padding (RSA_PKCS1_OAEP_PADDING). */
const OAEP_HASH = 'sha1';
/** OAEP overhead with SHA-1, bytes: 2 × 20 + 2; what an RSA modulus leaves for the plaintext is the rest. */
const OAEP_SHA1_OVERHEAD_BYTES = 42;

/**
 * Encrypts one sensitive field (bank_account, real_name, …) for WeChat Pay (敏感信息加密): RSA-OAEP, SHA-1 and
 * MGF1-SHA1, with the WeChat Pay public key (or the platform certificate's key) → base64 of the ciphertext (344
 * characters for RSA-2048; random padding, so never the same twice). The request carrying it must name that key in
 * `Wechatpay-Serial`. Throws TypeError on a key that is not an RSA public KeyObject, an empty or non-string
 * plaintext, or one longer than the key can hold (214 bytes UTF-8 for RSA-2048).
 * WeChat Pay API v3 敏感信息加解密 rules.
 */
export function encryptSensitiveField(publicKey: KeyObject, plaintext: string): string {
  if (
    !(publicKey instanceof KeyObject) ||
    publicKey.type !== 'public' ||
    publicKey.asymmetricKeyType !== 'rsa'
  ) {
    throw new TypeError('encryptSensitiveField: publicKey must be an RSA public KeyObject');
  }
  if (typeof plaintext !== 'string' || plaintext === '') {
    throw new TypeError('encryptSensitiveField: plaintext must be a non-empty string');
  }
  const bytes = Buffer.from(plaintext, 'utf8');
  const room = (rsaModulusBytes(publicKey) ?? 0) - OAEP_SHA1_OVERHEAD_BYTES;
  if (bytes.length > room) {
    throw new TypeError(`encryptSensitiveField: plaintext exceeds ${room} bytes UTF-8`);
  }
  return publicEncrypt(
    { key: publicKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: OAEP_HASH },
    bytes,
  ).toString('base64');
}

/**
 * The inverse of encryptSensitiveField with the private key (what WeChat Pay does; the local sandbox's side): base64
 * RSA-OAEP SHA-1 ciphertext → the UTF-8 plaintext. Throws TypeError on a key that is not an RSA private KeyObject or
 * a ciphertext that is not standard padded base64 of the key's modulus length; V3DecryptError 'bad_ciphertext' when
 * the padding does not open (another key, altered bytes) and 'bad_plaintext' when it is not UTF-8.
 */
export function decryptSensitiveField(privateKey: KeyObject, ciphertext: string): string {
  if (
    !(privateKey instanceof KeyObject) ||
    privateKey.type !== 'private' ||
    privateKey.asymmetricKeyType !== 'rsa'
  ) {
    throw new TypeError('decryptSensitiveField: privateKey must be an RSA private KeyObject');
  }
  const bytes = decodeBase64Strict(ciphertext);
  if (bytes === undefined || bytes.length !== rsaModulusBytes(privateKey)) {
    throw new TypeError('decryptSensitiveField: ciphertext must be base64 of one RSA block');
  }
  let plain: Buffer;
  try {
    plain = privateDecrypt(
      { key: privateKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: OAEP_HASH },
      bytes,
    );
  } catch {
    throw new V3DecryptError('bad_ciphertext');
  }
  if (!isUtf8(plain)) throw new V3DecryptError('bad_plaintext');
  return plain.toString('utf8');
}

/**
 * The key WeChat Pay wants sensitive fields encrypted with, and the `Wechatpay-Serial` that names it: the WeChat Pay
 * public key ({id PUB_KEY_ID_…, pem}) when configured; else, in platform certificate mode, the certificate valid at
 * `now` (unix ms) that expires last (its serial, upper-case hex). Throws Error when neither gives a usable RSA key.
 */
export function sensitiveFieldKey(
  opts: { publicKey?: { id: string; pem: string }; platformCertificates?: string[] },
  now = Date.now(),
): { serial: string; key: KeyObject } {
  if (opts.publicKey?.pem) {
    const key = createPublicKey(opts.publicKey.pem);
    assertRsa(key, opts.publicKey.id);
    return { serial: opts.publicKey.id, key };
  }
  const valid = (opts.platformCertificates ?? [])
    .map((pem) => new X509Certificate(pem))
    .filter((cert) => Date.parse(cert.validFrom) <= now && now <= Date.parse(cert.validTo))
    .sort((a, b) => Date.parse(b.validTo) - Date.parse(a.validTo));
  const [newest] = valid;
  if (!newest) throw new Error('sensitiveFieldKey: no WeChat Pay public key or valid platform certificate');
  assertRsa(newest.publicKey, newest.serialNumber);
  return { serial: newest.serialNumber.toUpperCase(), key: newest.publicKey };
}

/** The request signing message, five lines each ending in `\n`: `METHOD\nURL\nTIMESTAMP\nNONCE\nBODY\n`. */
function requestMessage(method: string, url: string, timestamp: string, nonce: string, body: string): string {
  return `${method}\n${url}\n${timestamp}\n${nonce}\n${body}\n`;
}

/**
 * Throws V3SignatureError 'bad_timestamp' unless `timestamp` is 1–10 digits, 'stale_timestamp' beyond
 * ±MAX_SKEW_SECONDS of `now`.
 */
function assertFresh(timestamp: string, now: number): void {
  if (!TIMESTAMP_PATTERN.test(timestamp)) throw new V3SignatureError('bad_timestamp');
  if (Math.abs(now - Number(timestamp)) > MAX_SKEW_SECONDS) throw new V3SignatureError('stale_timestamp');
}

function responseMessage(timestamp: string, nonce: string, body: string): string {
  return `${timestamp}\n${nonce}\n${body}\n`;
}

/** Largest message, in bytes, responseMessageBytes writes into its reused buffer; longer ones stay strings. */
const MESSAGE_BUFFER_MAX_BYTES = 64 * 1024;
let messageBuffer = Buffer.allocUnsafeSlow(4096);

/**
 * responseMessage as UTF-8 bytes (the same bytes Verify.update(string, 'utf8') hashes), written into one buffer
 * reused by every call: the caller must consume the view before anything else runs (Verify.update copies it
 * into the digest at once). Saves joining and flattening a body-sized string per verification (about 4 % of an
 * RSA-2048 verify). A message that could exceed MESSAGE_BUFFER_MAX_BYTES is returned as the joined string.
 */
function responseMessageBytes(timestamp: string, nonce: string, body: string): Buffer | string {
  // A UTF-16 unit never takes more than 3 UTF-8 bytes (a surrogate pair: 4 bytes for 2 units).
  const most = (timestamp.length + nonce.length + body.length + 3) * 3;
  if (most > MESSAGE_BUFFER_MAX_BYTES) return responseMessage(timestamp, nonce, body);
  if (messageBuffer.length < most) messageBuffer = Buffer.allocUnsafeSlow(most);
  const buffer = messageBuffer;
  let end = buffer.write(timestamp, 0, 'utf8');
  buffer[end++] = 0x0a;
  end += buffer.write(nonce, end, 'utf8');
  buffer[end++] = 0x0a;
  end += buffer.write(body, end, 'utf8');
  buffer[end++] = 0x0a;
  return buffer.subarray(0, end);
}

/**
 * Standard padded base64 (what BASE64_PATTERN describes) → bytes, else undefined. Checked by arithmetic
 * rather than the pattern (a regex over a 344-character signature costs a microsecond): Node's decoder skips
 * characters outside the alphabet and stops at `=`, so any of them, or a short last group, leaves fewer bytes
 * than the length promises; `-` and `_` (base64url, which Node also reads) are refused by name.
 */
export function decodeBase64Strict(value: string): Buffer | undefined {
  if (typeof value !== 'string' || value === '' || value.length % 4 !== 0) return undefined;
  if (value.includes('-') || value.includes('_')) return undefined;
  const padding = value.endsWith('==') ? 2 : value.endsWith('=') ? 1 : 0;
  const bytes = Buffer.from(value, 'base64');
  return bytes.length === (value.length / 4) * 3 - padding ? bytes : undefined;
}

/** RSA modulus bytes per key, read once (asymmetricKeyDetails builds a new object on every read). */
const modulusBytes = new WeakMap<KeyObject, number | undefined>();
function rsaModulusBytes(key: KeyObject): number | undefined {
  if (!modulusBytes.has(key)) {
    const bits = key.asymmetricKeyDetails?.modulusLength;
    modulusBytes.set(key, bits === undefined ? undefined : Math.ceil(bits / 8));
  }
  return modulusBytes.get(key);
}

/**
 * associated_data as bytes, kept for the few values WeChat sends ('transaction', 'refund', 'certificate'): at most
 * ASSOCIATED_DATA_KEPT distinct values, each ≤ 16 UTF-16 units; setAAD only reads them.
 */
const associatedDataKept = new Map<string, Buffer>();
const ASSOCIATED_DATA_KEPT = 8;
function associatedDataBytes(text: string): Buffer {
  let bytes = associatedDataKept.get(text);
  if (bytes === undefined) {
    bytes = Buffer.from(text, 'utf8');
    if (associatedDataKept.size < ASSOCIATED_DATA_KEPT) associatedDataKept.set(text, bytes);
  }
  return bytes;
}

function gcmAlgorithm(key: AesKey): 'aes-128-gcm' | 'aes-256-gcm' {
  const bytes = aesKeyBytes(key);
  if (bytes === 16) return 'aes-128-gcm';
  if (bytes === 32) return 'aes-256-gcm';
  throw new V3DecryptError('bad_key');
}

/** The length of a Buffer or secret KeyObject, bytes; undefined for anything else. */
function aesKeyBytes(key: AesKey): number | undefined {
  if (Buffer.isBuffer(key)) return key.length;
  if (key instanceof KeyObject && key.type === 'secret') return key.symmetricKeySize;
  return undefined;
}

function gcmNonce(nonce: string): Buffer {
  if (typeof nonce !== 'string' || nonce === '') throw new V3DecryptError('bad_nonce');
  return Buffer.from(nonce, 'utf8');
}

/** Certificate serials compare as numbers: case-insensitive, leading zeros ignored. */
function normaliseSerial(serial: string): string {
  return serial.toUpperCase().replace(/^0+(?=.)/, '');
}

function assertRsa(key: KeyObject, label: string): void {
  if (key.asymmetricKeyType !== 'rsa') throw new Error(`createVerifier: key ${label} is not an RSA key`);
}

function isFilled(value: unknown): value is string {
  return typeof value === 'string' && value !== '';
}

function assertHeaderToken(name: string, value: string): void {
  if (typeof value !== 'string' || !HEADER_TOKEN_PATTERN.test(value)) {
    throw new TypeError(`buildAuthorization: ${name} must be non-empty [0-9A-Za-z_-]`);
  }
}

function assertSingleLine(name: string, value: string): void {
  if (typeof value !== 'string' || value === '' || /[\r\n]/.test(value)) {
    throw new TypeError(`buildPayParamsV3: ${name} must be a non-empty single-line string`);
  }
}

function assertUnixSeconds(caller: string, timestamp: number): void {
  if (!Number.isSafeInteger(timestamp) || timestamp < 0 || timestamp > MAX_TIMESTAMP_SECONDS) {
    throw new TypeError(`${caller}: timestamp must be unix seconds (an integer with at most 10 digits)`);
  }
}

function badAuthorization(detail: string): V3SignatureError {
  return new V3SignatureError('bad_authorization', `Malformed WeChat Pay Authorization header: ${detail}`);
}

function nowSeconds(): number {
  return Math.floor(Date.now() / 1000);
}

function randomNonce(): string {
  return randomBytes(16).toString('hex').toUpperCase();
}
