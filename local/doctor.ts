import { createPrivateKey, createPublicKey, type KeyObject, X509Certificate } from 'node:crypto';
import { DescribeTableCommand } from '@aws-sdk/client-dynamodb';
import { dynamo } from '#lib/clients/dynamodb';
import { loadConfig, resetConfigCache } from '#lib/config';
import { AppError } from '#lib/errors';
import { publicCallbackUrl } from '#lib/oauth';
import { fetchSecretsFromSsm, type RawSecrets, SECRET_NAMES, secretNamesFor, splitPems } from '#lib/secrets';
import { readSettings, type Settings } from '#lib/settings';
import { V2_SIGN_TYPES } from '#lib/wechat-pay/fields';

/**
 * `npm run doctor [-- --stage <stage>]`'s checks of a stage's effective configuration: key lengths, PEMs parse, the
 * merchant key matches its certificate and serial, PUB_KEY_ID_ format, sign type, the WeChat bases answer, the
 * clock against WeChat Pay's `Date`, the tables exist. A check reports what it found, never a secret's value.
 */

export interface Check {
  name: string;
  ok: boolean;
  detail: string;
}

/** How far our clock may be from WeChat Pay's before signatures fail (WeChat accepts 300 s), seconds. */
const MAX_SKEW_SECONDS = 60;

type Probe = () => string | Promise<string>;

/** Runs one check: `probe` returns what it found (ok) or throws the reason (failed). */
async function check(name: string, probe: Probe): Promise<Check> {
  try {
    return { name, ok: true, detail: await probe() };
  } catch (error) {
    const detail = error instanceof AppError ? (error.detail ?? error.message) : (error as Error).message;
    return { name, ok: false, detail };
  }
}

function fail(reason: string): never {
  throw new Error(reason);
}

const bytes = (value: string) => Buffer.byteLength(value, 'utf8');

function pem(raw: RawSecrets, name: keyof RawSecrets): string {
  return (raw[name] ?? '').replace(/\\n/g, '\n');
}

function privateKey(text: string): KeyObject {
  const key = createPrivateKey(text);
  if (key.asymmetricKeyType !== 'rsa') fail(`is ${key.asymmetricKeyType}, not RSA`);
  return key;
}

/** The checks of the secrets and keys of one pay version. */
function keyChecks(env: NodeJS.ProcessEnv, settings: Settings, raw: RawSecrets): [string, Probe][] {
  const common: [string, Probe][] = [
    [
      'WECHAT_SECRET',
      () => (raw.WECHAT_SECRET ? `set (${bytes(raw.WECHAT_SECRET)} bytes)` : fail('missing')),
    ],
    [
      'JWT_SECRET',
      () =>
        bytes(raw.JWT_SECRET ?? '') >= 32 ? 'at least 32 bytes' : fail('shorter than 32 bytes (or missing)'),
    ],
  ];
  const mchCert = pem({ WECHAT_PAY_PLATFORM_CERTS: env.WECHAT_MCH_CERT }, 'WECHAT_PAY_PLATFORM_CERTS');
  if (settings.payVersion === 'v2') {
    return [
      ...common,
      [
        'WECHAT_MCH_KEY',
        () =>
          /^[0-9A-Za-z]{32}$/.test(raw.WECHAT_MCH_KEY ?? '')
            ? '32 letters or digits'
            : fail('not 32 letters or digits'),
      ],
      [
        'WECHAT_PAY_SIGN_TYPE',
        () => (V2_SIGN_TYPES.includes(settings.v2SignType) ? settings.v2SignType : fail('unknown')),
      ],
      ...(mchCert
        ? ([['WECHAT_MCH_CERT', () => `parses, serial ${new X509Certificate(mchCert).serialNumber}`]] as [
            string,
            Probe,
          ][])
        : []),
    ];
  }
  const mchKey = pem(raw, 'WECHAT_MCH_PRIVATE_KEY');
  return [
    ...common,
    [
      'WECHAT_APIV3_KEY',
      () => (bytes(raw.WECHAT_APIV3_KEY ?? '') === 32 ? '32 bytes' : fail('not 32 bytes')),
    ],
    [
      'WECHAT_MCH_PRIVATE_KEY',
      () => `parses (RSA ${privateKey(mchKey).asymmetricKeyDetails?.modulusLength} bits)`,
    ],
    [
      'WECHAT_MCH_SERIAL_NO',
      () =>
        /^[0-9A-Fa-f]{8,40}$/.test(settings.mchSerialNo)
          ? settings.mchSerialNo
          : fail('not a hex certificate serial'),
    ],
    [
      'WECHAT_MCH_CERT',
      () => {
        if (!mchCert) return 'not given: key ↔ certificate not checked';
        const cert = new X509Certificate(mchCert);
        if (!cert.publicKey.equals(createPublicKey(privateKey(mchKey))))
          fail('does not match WECHAT_MCH_PRIVATE_KEY');
        if (cert.serialNumber.toUpperCase() !== settings.mchSerialNo.toUpperCase()) {
          fail(`serial ${cert.serialNumber} is not WECHAT_MCH_SERIAL_NO`);
        }
        return 'matches the private key and the serial';
      },
    ],
    [
      'WECHAT_PAY_PUBLIC_KEY_ID',
      () => {
        if (!settings.payPublicKeyId) return 'not set (platform-certificate mode)';
        return /^PUB_KEY_ID_\d+$/.test(settings.payPublicKeyId)
          ? 'PUB_KEY_ID_ + digits'
          : fail('not PUB_KEY_ID_ + digits');
      },
    ],
    [
      'WECHAT_PAY_PUBLIC_KEY',
      () => {
        const text = pem(raw, 'WECHAT_PAY_PUBLIC_KEY');
        if (!text)
          return settings.payPublicKeyId ? fail('missing while WECHAT_PAY_PUBLIC_KEY_ID is set') : 'not set';
        return `parses (${createPublicKey(text).asymmetricKeyType})`;
      },
    ],
    [
      'WECHAT_PAY_PLATFORM_CERTS',
      () => {
        const certs = splitPems(pem(raw, 'WECHAT_PAY_PLATFORM_CERTS')).map(
          (text) => new X509Certificate(text),
        );
        if (certs.length === 0 && !pem(raw, 'WECHAT_PAY_PUBLIC_KEY'))
          fail('neither a public key nor a certificate');
        return `${certs.length} certificate(s)`;
      },
    ],
  ];
}

/** GETs a base URL; any HTTP answer means it is reachable. */
async function reach(base: string): Promise<Response> {
  if (!base) fail('not set');
  const started = Date.now();
  const response = await fetch(base, { signal: AbortSignal.timeout(5000) }).catch((error: Error) =>
    fail(`no answer (${error.name})`),
  );
  await response.arrayBuffer();
  Object.defineProperty(response, 'elapsed', { value: Date.now() - started });
  return response;
}

/** Every check, in order; `env` is the effective environment (the local files merged, or a stage's). */
export async function diagnose(env: NodeJS.ProcessEnv): Promise<Check[]> {
  let settings: Settings | undefined;
  const results = [
    await check('settings', () => {
      settings = readSettings(env);
      return `stage ${settings.stage}, pay ${settings.payVersion}, appid ${settings.appId}, mchid ${settings.mchId}`;
    }),
  ];
  if (!settings) return results;
  const current = settings;
  let raw: RawSecrets = {};
  results.push(
    await check('secrets', async () => {
      const names = secretNamesFor(current.payVersion);
      if (env.SECRETS_SOURCE === 'ssm') {
        raw = await fetchSecretsFromSsm(current, names);
        return `from SSM /${current.service}/${current.stage}/`;
      }
      raw = Object.fromEntries(SECRET_NAMES.map((name) => [name, env[name]]));
      return 'from the environment';
    }),
  );
  for (const [name, probe] of keyChecks(env, current, raw)) results.push(await check(name, probe));
  results.push(
    await check('config', async () => {
      resetConfigCache();
      const config = await loadConfig({ ...env, SECRETS_SOURCE: 'env', ...raw });
      return `the functions' loader accepts it (${config.payVersion})`;
    }),
  );
  results.push(
    await check(
      'WECHAT_API_BASE',
      async () => `${current.apiBase} answers (HTTP ${(await reach(current.apiBase)).status})`,
    ),
  );
  let payResponse: Response | undefined;
  results.push(
    await check('WECHAT_PAY_API_BASE', async () => {
      payResponse = await reach(current.payApiBase);
      return `${current.payApiBase} answers (HTTP ${payResponse.status})`;
    }),
  );
  results.push(
    await check('clock', () => {
      const date = payResponse?.headers.get('date');
      if (!date) fail('WeChat Pay gave no Date header to compare with');
      const skew = Math.round((Date.now() - Date.parse(date)) / 1000);
      if (Math.abs(skew) > MAX_SKEW_SECONDS)
        fail(`${skew} s off WeChat Pay's clock (more than ${MAX_SKEW_SECONDS} s)`);
      return `${skew} s off WeChat Pay's clock`;
    }),
  );
  results.push(
    await check('H5', async () => {
      if (!current.mpAppId) return 'off (WECHAT_MP_APPID not set: the H5 routes answer 404 FEATURE_DISABLED)';
      if (!raw.WECHAT_MP_SECRET) fail('WECHAT_MP_APPID is set but WECHAT_MP_SECRET is missing');
      if (current.h5Origins.length === 0) fail('WECHAT_MP_APPID is set but H5_ORIGINS lists no origin');
      const open = await reach(current.openBase);
      // The redirect_uri WeChat gets when PUBLIC_API_URL is set: its host must be the
      // official account's 网页授权域名, or WeChat refuses the sign-in (10003).
      const fixed = current.publicApiUrl && new URL(publicCallbackUrl(current.publicApiUrl));
      const callback = fixed
        ? `OAuth callback ${fixed.origin}${fixed.pathname} (PUBLIC_API_URL; 网页授权域名 ${fixed.hostname})`
        : 'OAuth callback on the host each H5 page calls (PUBLIC_API_URL unset; 网页授权域名 that host)';
      return `official account ${current.mpAppId}, ${current.h5Origins.length} H5 origin(s), ${callback}, ${current.openBase} answers (HTTP ${open.status})`;
    }),
  );
  for (const table of [current.usersTable, current.ordersTable]) {
    results.push(
      await check(`table ${table}`, async () => {
        const { Table } = await dynamo().send(new DescribeTableCommand({ TableName: table }));
        return Table?.TableStatus === 'ACTIVE' ? 'ACTIVE' : fail(`status ${Table?.TableStatus}`);
      }),
    );
  }
  return results;
}
