/**
 * The one reader of `process.env` outside the configuration loader's own `env` parameter: local tooling
 * (sandbox, runner) and the module singletons built before a config exists (logger, DynamoDB client).
 * Imports nothing, so any module may use it without an import cycle.
 */
export function envValue(name: string, fallback = ''): string {
  return process.env[name] ?? fallback;
}
