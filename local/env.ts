import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseEnv } from 'node:util';

const ROOT = resolve(import.meta.dirname, '..');

/**
 * The local environment: `.env.example` (sandbox defaults) < `.env` < the process environment.
 * Values written `file:<path>` are replaced by that file's text (the dev PEMs under local/keys).
 */
export function localEnv(overrides: NodeJS.ProcessEnv = process.env): Record<string, string> {
  const read = (name: string) => {
    const path = resolve(ROOT, name);
    return existsSync(path) ? parseEnv(readFileSync(path, 'utf8')) : {};
  };
  const merged: Record<string, string> = {};
  for (const layer of [read('.env.example'), read('.env'), overrides]) {
    for (const [name, value] of Object.entries(layer)) if (value !== undefined) merged[name] = value;
  }
  for (const [name, value] of Object.entries(merged)) {
    if (value.startsWith('file:')) merged[name] = readFileSync(resolve(ROOT, value.slice(5)), 'utf8');
  }
  return merged;
}

/** Puts the local environment into process.env (for the sandbox, the runner and the tests). */
export function applyLocalEnv(overrides: NodeJS.ProcessEnv = {}): Record<string, string> {
  const env = localEnv({ ...process.env, ...overrides });
  Object.assign(process.env, env);
  return env;
}
