/**
 * The benchmark-only peers (bench/peers/package.json, exact versions, outside the project's dependencies):
 * installed into bench/peers/node_modules on first use with `npm ci` against the committed lock, then
 * required from there.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { resolve } from 'node:path';

export const PEERS_DIR = resolve(import.meta.dirname, 'peers');

/** The pinned packages of bench/peers/package.json, name → exact version. */
export function pinnedPeers(): Record<string, string> {
  const manifest = JSON.parse(readFileSync(resolve(PEERS_DIR, 'package.json'), 'utf8'));
  return manifest.dependencies as Record<string, string>;
}

/**
 * Installs the pinned peers unless each is already there at its pinned version; returns a `require` that
 * resolves from bench/peers. Throws when npm fails (the npm registry must be reachable on first use).
 */
export function ensurePeers(): NodeJS.Require {
  const missing = Object.entries(pinnedPeers()).filter(([name, version]) => {
    const manifest = resolve(PEERS_DIR, 'node_modules', name, 'package.json');
    return !existsSync(manifest) || JSON.parse(readFileSync(manifest, 'utf8')).version !== version;
  });
  if (missing.length > 0) {
    console.log(
      `installing bench peers into bench/peers/node_modules: ${missing.map(([n]) => n).join(', ')}`,
    );
    const npm = spawnSync('npm', ['ci', '--prefix', PEERS_DIR, '--no-audit', '--no-fund'], {
      stdio: 'inherit',
    });
    if (npm.status !== 0) throw new Error(`npm ci --prefix bench/peers failed (exit ${npm.status})`);
  }
  return createRequire(resolve(PEERS_DIR, 'package.json'));
}
