/**
 * INV-6: a sink on stdout/stderr that fails a test when any log line carries a session_key, a configured
 * INV-6: a sink on stdout/stderr that fails a test when any log line carries a session_key, a configured
 * secret, a private-key PEM, a JWT or an Authorization value, a web OAuth code or web access_token in the
 * sandbox's shapes (local/sandbox/oauth.ts), a mainland mobile number, an access_token or jsapi_ticket in a URL
 * or a JSON field, or personal data the test named (forbidInLogs, also for lines logged earlier in the same
 * test). Structured log lines are swallowed (set TEST_LOGS=1 to see them); everything else passes through.
 */

const SECRET_ENV = ['WECHAT_SECRET', 'JWT_SECRET', 'WECHAT_MCH_KEY', 'WECHAT_APIV3_KEY', 'WECHAT_MP_SECRET'];

function patterns(): RegExp[] {
  const escapeRegExp = (value: string) => value.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const secrets = SECRET_ENV.map((name) => process.env[name]).filter(
    (value): value is string => !!value && value.length >= 8,
  );
  return [
    /session_key/i,
    /-----BEGIN [A-Z ]*PRIVATE KEY-----/,
    /\beyJ[\w-]{8,}\.[\w-]{8,}\.[\w-]{8,}/,
    /WECHATPAY2-SHA256-RSA2048\s+\w+="/,
    /Bearer\s+[\w-]+\.[\w-]+/i,
    // The sandbox's web OAuth codes (`oc` + 32 hex) and web access / refresh tokens (`wt` / `rt` + 48 hex).
    /\boc[0-9a-f]{32}\b/,
    /\b[wr]t[0-9a-f]{48}\b/,
    // A mainland mobile number (11 digits, 13x–19x) standing alone: phone numbers are never logged.
    /(?<![\d.])1[3-9]\d{9}(?![\d.])/,
    // An access_token or ticket value, in a query string or a JSON field.
    /(access_token|ticket)=[\w-]{16,}/i,
    /"(access_token|accessToken|ticket|jsapi_ticket|jsapiTicket)":"[^"]{16,}"/,
    ...secrets.map((secret) => new RegExp(escapeRegExp(secret))),
  ];
}

const found: string[] = [];
let installed = false;
/** Personal values a test wrote (openid, nickname, …): no log line may carry them until the test ends. */
const personal = new Set<string>();

/** The log lines written since the last takeLeaks (the current test), for values forbidden after they were logged. */
const lines: string[] = [];

/**
 * Makes every log line that carries one of `values` a leak, until the end of the current test (takeLeaks): lines
 * written later, and lines this test already wrote (a token or code learnt only after the call that used it).
 */
export function forbidInLogs(...values: string[]): void {
  for (const value of values) {
    if (value.length < 4) continue;
    personal.add(value);
    for (const line of lines) if (line.includes(value)) found.push(`personal data in ${line.slice(0, 160)}`);
  }
}

/** Wraps process.stdout/stderr writes once per worker. */
export function installLogSink(): void {
  if (installed) return;
  installed = true;
  const checks = patterns();
  for (const stream of [process.stdout, process.stderr]) {
    const write = stream.write.bind(stream) as (...args: unknown[]) => boolean;
    stream.write = ((chunk: unknown, ...rest: unknown[]) => {
      const text =
        typeof chunk === 'string' ? chunk : Buffer.isBuffer(chunk) ? chunk.toString('utf8') : String(chunk);
      const isLogLine = text.startsWith('{"level"') || text.startsWith('{"cold_start"');
      if (isLogLine) {
        for (const check of checks) {
          if (check.test(text)) found.push(`${check} in ${text.slice(0, 160)}`);
        }
        lines.push(text);
        for (const value of personal) {
          if (text.includes(value)) found.push(`personal data in ${text.slice(0, 160)}`);
        }
        if (process.env.TEST_LOGS !== '1') return true;
      }
      return write(chunk, ...rest);
    }) as typeof stream.write;
  }
}

/** Returns and clears what the sink caught since the last call. */
export function takeLeaks(): string[] {
  personal.clear();
  lines.length = 0;
  return found.splice(0, found.length);
}
