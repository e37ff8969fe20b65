import { loadConfig } from '#lib/config';

/**
 * One cold start of the real config loader with this process's environment (a deployed function's, pointed
 * at moto): prints `{ok, ms, payVersion}` or `{ok: false, ms, error}` (the ConfigError detail) as JSON.
 */
const started = performance.now();
try {
  const config = await loadConfig(process.env);
  console.log(JSON.stringify({ ok: true, ms: performance.now() - started, payVersion: config.payVersion }));
} catch (error) {
  const { detail, message } = error as { detail?: string; message: string };
  console.log(JSON.stringify({ ok: false, ms: performance.now() - started, error: detail ?? message }));
}
