/**
 * `npm run bench:peers`: our WeChat Pay protocol code against the Node peers (research/peers.md) on the same
 * inputs in one process: v2 sign, v2 notify parse + verify, v3 AES-256-GCM decrypt and v3 RSA verify, each
 * peer called the way its own docs call it, with the key form that is fastest for it. Every output is checked
 * to agree before timing. Informational (not in CI): prints "ours vs peer" = the peer's CPU cost per op ÷
 * ours (1.00× = as fast, above = faster), the figure of issue 12's table; never fails on speed.
 * Peers are installed on first use from bench/peers/package.json (pinned) into bench/peers/node_modules.
 * Options: --time <CPU ms per side of each comparison> (default 1000); --only <text>: only the rows whose
 * "what peer" contains it.
 */
// First, before any app module: applies the benchmark's environment (see bench/environment.ts).
import './environment';
import { createPublicKey, createSecretKey, createVerify } from 'node:crypto';
import { parseArgs } from 'node:util';
import { parseV2Xml, signV2, toV2Xml, verifyV2Sign } from '#lib/wechat-pay/v2-protocol';
import { createVerifier, decryptResource } from '#lib/wechat-pay/v3-protocol';
import { v3Keys, v3Notify } from '#local/fixtures/v3';
import { hmacFields, mchKey, md5Fields, paid } from './inputs';
import { ensurePeers, pinnedPeers } from './install-peers';
import { type Comparison, compare, type MeasureOptions } from './measure';

const { values } = parseArgs({
  options: { time: { type: 'string', default: '1000' }, only: { type: 'string' } },
});
const options: MeasureOptions = { budgetMs: Number(values.time) };

const require = ensurePeers();

// --- the peers' APIs as they publish them (untyped CommonJS) -----------------------------------------------
type V2Fields = Record<string, string | number | undefined>;
interface AxiosPlugin {
  Hash: {
    sign(type: 'MD5' | 'HMAC-SHA256', data: V2Fields, key: string): string;
    equals(known: string, user?: string): boolean;
  };
  Transformer: { toObject(xml: string): Record<string, string> };
  Aes: { AesGcm: { decrypt(ciphertext: string, key: unknown, iv: string, aad?: string): string } };
  Rsa: { verify(message: string, signature: string, publicKey: unknown): boolean };
  Formatter: { timestamp(): number; response(timestamp: string, nonce: string, body: string): string };
}
interface Tenpay {
  _getSign(params: V2Fields, type: 'MD5' | 'HMAC-SHA256'): string;
  _parse(xml: string, type: string): Promise<Record<string, string>>;
}
interface NodeV3Pay {
  decipher_gcm(ciphertext: string, associatedData: string, nonce: string, key: string): unknown;
  verifySign(input: {
    timestamp: string;
    nonce: string;
    body: string;
    serial: string;
    signature: string;
  }): Promise<boolean>;
}
type NodeV3 = (new (
  options: Record<string, unknown>,
) => NodeV3Pay) & { certificates: Record<string, string> };

const axiosPlugin = require('wechatpay-axios-plugin') as AxiosPlugin;
const TenpayClass = require('tenpay') as new (options: Record<string, unknown>) => Tenpay;
const NodeV3Class = require('wechatpay-node-v3') as NodeV3;
const peers = pinnedPeers();
const label = (name: string) => `${name}@${peers[name]}`;

// --- the same inputs for everyone ---------------------------------------------------------------------------
// tenpay signs what it is given; WeChat's own fields are strings, so all sides get strings.
const stringFields = (fields: V2Fields) =>
  Object.fromEntries(
    Object.entries(fields)
      .filter(([, value]) => value !== undefined)
      .map(([name, value]) => [name, String(value)]),
  );
const md5Xml = toV2Xml(md5Fields);
const tenpay = new TenpayClass({
  appid: process.env.WECHAT_APPID,
  mchid: process.env.WECHAT_MCH_ID,
  partnerKey: mchKey,
});

const keys = v3Keys();
const apiV3Key = createSecretKey(keys.apiV3Key);
const payPublicKeyPem = process.env.WECHAT_PAY_PUBLIC_KEY as string;
const payPublicKey = createPublicKey(payPublicKeyPem);
const verifier = createVerifier({ publicKey: { id: keys.serial, pem: payPublicKeyPem } });
const notice = v3Notify(keys, paid);
const resource = JSON.parse(notice.body).resource as Record<string, string>;
const header = (name: string) => notice.headers[name] as string;
const signed = {
  serial: header('wechatpay-serial'),
  signature: header('wechatpay-signature'),
  timestamp: header('wechatpay-timestamp'),
  nonce: header('wechatpay-nonce'),
  body: notice.body,
};
// node-v3 looks public keys up in a static map by serial (and fetches /v3/certificates when it misses);
// primed here so nothing leaves the machine.
NodeV3Class.certificates[signed.serial] = payPublicKeyPem;
const nodeV3 = new NodeV3Class({
  appid: process.env.WECHAT_APPID,
  mchid: process.env.WECHAT_MCH_ID,
  serial_no: process.env.WECHAT_MCH_SERIAL_NO,
  publicKey: Buffer.from(payPublicKeyPem),
  privateKey: Buffer.from(keys.merchantKey.export({ type: 'pkcs8', format: 'pem' })),
  key: keys.apiV3Key.toString('utf8'),
});

// --- ours and each peer's way ---------------------------------------------------------------------------------
const oursParseVerify = (xml: string) => verifyV2Sign(parseV2Xml(xml), mchKey, ['MD5', 'HMAC-SHA256']);
const axiosParseVerify = (xml: string) => {
  const fields = axiosPlugin.Transformer.toObject(xml);
  const signType = fields.sign_type === 'HMAC-SHA256' ? 'HMAC-SHA256' : 'MD5';
  return axiosPlugin.Hash.equals(axiosPlugin.Hash.sign(signType, fields, mchKey), fields.sign);
};
const oursDecrypt = () => decryptResource(resource, apiV3Key);
const oursVerify = () => {
  verifier.verify({ ...signed, now: Math.floor(Date.now() / 1000) });
  return true;
};
const message = `${signed.timestamp}\n${signed.nonce}\n${signed.body}\n`;
const axiosVerify = () => axiosPlugin.Rsa.verify(message, signed.signature, payPublicKey);
/**
 * The whole check axios-plugin makes on each signed response (lib/decorator.js, its verifier): the 300 s
 * window, the key by serial, the message built per call by Formatter.response, then Rsa.verify.
 */
const axiosCerts: Record<string, unknown> = { [signed.serial]: payPublicKey };
const axiosNotifyVerify = () => {
  if (Math.abs(axiosPlugin.Formatter.timestamp() - Number(signed.timestamp)) > 300) return false;
  if (!Object.hasOwn(axiosCerts, signed.serial)) return false;
  return axiosPlugin.Rsa.verify(
    axiosPlugin.Formatter.response(signed.timestamp, signed.nonce, signed.body),
    signed.signature,
    axiosCerts[signed.serial],
  );
};
const nodeV3Verify = () => nodeV3.verifySign(signed);

// Every side must give the same answer before anything is timed.
const agree = async () => {
  const md5 = signV2(md5Fields, mchKey, 'MD5');
  const hmac = signV2(hmacFields, mchKey, 'HMAC-SHA256');
  const plaintext = oursDecrypt();
  const checks: [string, boolean][] = [
    ['axios-plugin MD5 sign', axiosPlugin.Hash.sign('MD5', md5Fields, mchKey) === md5],
    ['tenpay MD5 sign', tenpay._getSign(stringFields(md5Fields), 'MD5') === md5],
    ['axios-plugin HMAC sign', axiosPlugin.Hash.sign('HMAC-SHA256', hmacFields, mchKey) === hmac],
    ['tenpay HMAC sign', tenpay._getSign(stringFields(hmacFields), 'HMAC-SHA256') === hmac],
    ['ours parse + verify', oursParseVerify(md5Xml)],
    ['axios-plugin parse + verify', axiosParseVerify(md5Xml)],
    ['tenpay parse + verify', (await tenpay._parse(md5Xml, 'middleware_pay')).sign === md5],
    [
      'axios-plugin decrypt',
      axiosPlugin.Aes.AesGcm.decrypt(
        resource.ciphertext as string,
        apiV3Key,
        resource.nonce as string,
        resource.associated_data,
      ) === plaintext,
    ],
    [
      'node-v3 decrypt',
      JSON.stringify(
        nodeV3.decipher_gcm(
          resource.ciphertext as string,
          resource.associated_data as string,
          resource.nonce as string,
          keys.apiV3Key.toString('utf8'),
        ),
      ) === JSON.stringify(JSON.parse(plaintext)),
    ],
    ['ours verify', oursVerify()],
    ['axios-plugin verify', axiosVerify()],
    ['axios-plugin response check', axiosNotifyVerify()],
    ['node-v3 verify', await nodeV3Verify()],
  ];
  const failed = checks.filter(([, ok]) => !ok).map(([name]) => name);
  if (failed.length > 0) throw new Error(`bench:peers setup: outputs disagree: ${failed.join(', ')}`);
};
await agree();

interface Row extends Comparison {
  what: string;
  peer: string;
}
const rows: Row[] = [];
const against = async (
  what: string,
  peer: string,
  ours: () => unknown,
  theirs: () => unknown,
  async = false,
) => {
  if (values.only !== undefined && !`${what} ${peer}`.includes(values.only)) return;
  const row = await compare(
    { name: what, baseline: peer, ours, base: theirs, maxRatio: Number.POSITIVE_INFINITY, async },
    options,
  );
  rows.push({ ...row, what, peer });
};

await against(
  'v2 sign MD5',
  label('wechatpay-axios-plugin'),
  () => signV2(md5Fields, mchKey, 'MD5'),
  () => axiosPlugin.Hash.sign('MD5', md5Fields, mchKey),
);
const md5Strings = stringFields(md5Fields);
await against(
  'v2 sign MD5',
  label('tenpay'),
  () => signV2(md5Strings, mchKey, 'MD5'),
  () => tenpay._getSign(md5Strings, 'MD5'),
);
await against(
  'v2 sign HMAC-SHA256',
  label('wechatpay-axios-plugin'),
  () => signV2(hmacFields, mchKey, 'HMAC-SHA256'),
  () => axiosPlugin.Hash.sign('HMAC-SHA256', hmacFields, mchKey),
);
const hmacStrings = stringFields(hmacFields);
await against(
  'v2 sign HMAC-SHA256',
  label('tenpay'),
  () => signV2(hmacStrings, mchKey, 'HMAC-SHA256'),
  () => tenpay._getSign(hmacStrings, 'HMAC-SHA256'),
);
await against(
  `v2 notify parse + verify (${md5Xml.length} B)`,
  label('wechatpay-axios-plugin'),
  () => oursParseVerify(md5Xml),
  () => axiosParseVerify(md5Xml),
);
// tenpay's parse is async (xml2js): both sides run as one awaited op each.
await against(
  `v2 notify parse + verify (${md5Xml.length} B)`,
  `${label('tenpay')} _parse (async)`,
  async () => oursParseVerify(md5Xml),
  () => tenpay._parse(md5Xml, 'middleware_pay'),
  true,
);
await against(
  'v3 AES-256-GCM decrypt',
  `${label('wechatpay-axios-plugin')} (KeyObject key)`,
  oursDecrypt,
  () =>
    axiosPlugin.Aes.AesGcm.decrypt(
      resource.ciphertext as string,
      apiV3Key,
      resource.nonce as string,
      resource.associated_data,
    ),
);
const v3KeyText = keys.apiV3Key.toString('utf8');
await against(
  'v3 AES-256-GCM decrypt',
  `${label('wechatpay-node-v3')} (+JSON.parse, tag unchecked)`,
  oursDecrypt,
  () =>
    nodeV3.decipher_gcm(
      resource.ciphertext as string,
      resource.associated_data as string,
      resource.nonce as string,
      v3KeyText,
    ),
);
await against(
  'v3 RSA verify (notify headers)',
  `${label('wechatpay-axios-plugin')} Rsa.verify alone (message prebuilt)`,
  oursVerify,
  axiosVerify,
);
// The floor under that row: raw node:crypto with no checks at all (what Rsa.verify is), against the same peer call.
// Ours does the 300 s window, the key by serial, the probe refusal and strict base64 on top of it.
await against(
  'v3 RSA verify: raw createVerify, no checks',
  `${label('wechatpay-axios-plugin')} Rsa.verify alone (message prebuilt)`,
  () => createVerify('sha256').update(message).verify(payPublicKey, signed.signature, 'base64'),
  axiosVerify,
);
await against(
  'v3 RSA verify (notify headers)',
  `${label('wechatpay-axios-plugin')} its whole response check`,
  oursVerify,
  axiosNotifyVerify,
);
await against(
  'v3 RSA verify (notify headers)',
  `${label('wechatpay-node-v3')} verifySign (async)`,
  async () => oursVerify(),
  nodeV3Verify,
  true,
);

const whatWidth = Math.max(...rows.map((row) => row.what.length));
const peerWidth = Math.max(...rows.map((row) => row.peer.length));
console.log(
  `bench:peers node=${process.version}: ${options.budgetMs} ms of CPU per side, interleaved; "ours vs peer" = the peer's CPU per op ÷ ours (above 1.00× = we are faster)`,
);
console.log(
  `${'what'.padEnd(whatWidth)}  ${'peer'.padEnd(peerWidth)}  ${'ours ops/s'.padStart(10)}  ${'peer ops/s'.padStart(10)}  ours vs peer`,
);
for (const row of rows) {
  console.log(
    `${row.what.padEnd(whatWidth)}  ${row.peer.padEnd(peerWidth)}  ${row.oursOpsPerSecond.toFixed(0).padStart(10)}  ${row.baseOpsPerSecond.toFixed(0).padStart(10)}  ${`${(1 / row.ratio).toFixed(2)}×`.padStart(12)}`,
  );
}
