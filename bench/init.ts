/**
 * `npm run bench:init`: Lambda init cost as import time. Packages the functions as a deploy does
 * (`serverless package --stage prod`, minified ESM bundles per serverless.yml), bundles the floor
 * (bench/init-floor.ts) the same way, writes the seed stack (`require` of express, sequelize, mysql2, axios,
 * jsonwebtoken, tenpay, serverless-http and moment, pinned in bench/peers/package.json and installed there on
 * first use), then starts a fresh `node` per sample for each of them and for `node -e 0`, in rotating order
 * round after round. Prints each median, net of `node -e 0`'s median in the same run, and its ratio to the
 * floor and to the seed stack. Two informational rows beside them: the floor bundled with the functions'
 * esbuild plugins too (deploy/esbuild-plugins.cjs), and a first `fetch` (undici, which the WeChat clients load at
 * their first call: the functions' ES import of node:http no longer loads it at init, so this is what a
 * function that calls WeChat in its first request still pays). Informational (not in CI): never fails on the
 * numbers.
 * Options: --rounds <samples per target> (default 15), --package <dir> (reuse a `serverless package` output),
 * --before <dir> (also measure an earlier `serverless package` output in the same run, as `before:<function>`).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { type BuildOptions, build, type Plugin } from 'esbuild';
import { packagingEnv } from '#local/packaging-env';
import { ensurePeers } from './install-peers';

const ROOT = resolve(import.meta.dirname, '..');
const SEED_STACK = [
  'express',
  'sequelize',
  'mysql2',
  'axios',
  'jsonwebtoken',
  'tenpay',
  'serverless-http',
  'moment',
];

const { values } = parseArgs({
  options: {
    rounds: { type: 'string', default: '15' },
    package: { type: 'string' },
    before: { type: 'string' },
  },
});
const rounds = Number(values.rounds);
const work = mkdtempSync(join(tmpdir(), 'bench-init-'));

/** Each function's bundle (.mjs) from the zips of a `serverless package` output, by function name. */
function functionBundles(packageDir: string, prefix = ''): Map<string, string> {
  const bundles = new Map<string, string>();
  for (const zip of readdirSync(packageDir).filter((file) => file.endsWith('.zip'))) {
    const name = `${prefix}${basename(zip, '.zip')}`;
    const into = join(work, 'functions', name);
    mkdirSync(into, { recursive: true });
    execFileSync('unzip', ['-qo', join(packageDir, zip), '-d', into]);
    const dir = join(into, 'functions');
    const entry = readdirSync(dir).find((file) => file.endsWith('.mjs'));
    if (!entry) throw new Error(`${zip} holds no .mjs bundle`);
    bundles.set(name, join(dir, entry));
  }
  if (bundles.size === 0) throw new Error(`no function zips in ${packageDir}`);
  return bundles;
}

let packageDir = values.package;
if (!packageDir) {
  packageDir = join(work, 'package');
  console.log('packaging the functions (serverless package --stage prod) …');
  const started = performance.now();
  execFileSync('npx', ['serverless', 'package', '--stage', 'prod', '--package', packageDir], {
    cwd: ROOT,
    env: packagingEnv(),
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  console.log(`packaged in ${((performance.now() - started) / 1000).toFixed(0)} s`);
}
const bundles = functionBundles(packageDir);
const before = values.before ? functionBundles(values.before, 'before:') : new Map<string, string>();

// The floor, bundled with the options serverless.yml gives the functions (custom.esbuild) but not their
// alias and plugins; and once more with the plugins, for comparison.
const floor = join(work, 'floor.mjs');
const floorWithPlugins = join(work, 'floor-plugins.mjs');
const plugins = createRequire(import.meta.url)('../deploy/esbuild-plugins.cjs') as Plugin[];
const floorOptions: BuildOptions = {
  entryPoints: [join(import.meta.dirname, 'init-floor.ts')],
  bundle: true,
  minify: true,
  keepNames: true,
  target: 'node24',
  platform: 'node',
  format: 'esm',
  mainFields: ['module', 'main'],
  banner: {
    js: "import { createRequire } from 'node:module'; const require = createRequire(import.meta.url);",
  },
  logLevel: 'warning',
};
await build({ ...floorOptions, outfile: floor });
await build({ ...floorOptions, outfile: floorWithPlugins, plugins });

// What a first fetch adds: undici, loaded on first use.
const firstFetch = join(work, 'first-fetch.mjs');
writeFileSync(firstFetch, "await (await fetch('data:,ok')).text();\n");

// The seed stack, required from bench/peers/node_modules.
const peers = ensurePeers();
const seed = join(work, 'seed.cjs');
writeFileSync(
  seed,
  `${SEED_STACK.map((name) => `require(${JSON.stringify(peers.resolve(name))});`).join('\n')}\n`,
);

/** A Lambda-like environment for every sample: region and (fake) credentials from the environment. */
const sampleEnv: NodeJS.ProcessEnv = {
  PATH: process.env.PATH,
  AWS_REGION: 'ap-southeast-1',
  AWS_LAMBDA_FUNCTION_NAME: 'bench-init',
  AWS_ACCESS_KEY_ID: 'AKIDBENCHINIT',
  AWS_SECRET_ACCESS_KEY: 'bench-init',
  AWS_SESSION_TOKEN: 'bench-init',
};
const targets: { name: string; args: string[] }[] = [
  { name: 'node -e 0', args: ['-e', '0'] },
  { name: 'floor', args: [floor] },
  { name: 'seed stack', args: [seed] },
  { name: 'floor, plugins', args: [floorWithPlugins] },
  { name: 'first fetch', args: [firstFetch] },
  ...[...bundles].map(([name, file]) => ({ name, args: [file] })),
  ...[...before].map(([name, file]) => ({ name, args: [file] })),
];
const samples = new Map<string, number[]>(targets.map((target) => [target.name, []]));

function sample(args: string[]): number {
  const started = performance.now();
  const run = spawnSync(process.execPath, args, { env: sampleEnv, stdio: ['ignore', 'ignore', 'pipe'] });
  const ms = performance.now() - started;
  if (run.status !== 0) throw new Error(`node ${args.join(' ')} failed: ${run.stderr.toString()}`);
  return ms;
}

console.log(`sampling ${targets.length} targets × ${rounds} rounds (fresh node each, rotating order) …`);
for (const target of targets) sample(target.args); // warm the file cache
for (let round = 0; round < rounds; round++) {
  for (let i = 0; i < targets.length; i++) {
    const target = targets[(i + round) % targets.length] as (typeof targets)[number];
    samples.get(target.name)?.push(sample(target.args));
  }
}

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2
    ? (sorted[mid] as number)
    : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
};
const medianOf = (name: string) => median(samples.get(name) ?? []);
const nodeStart = medianOf('node -e 0');
const net = (name: string) => medianOf(name) - nodeStart;
const floorNet = net('floor');
const seedNet = net('seed stack');

console.log(
  `bench:init node=${process.version}: median of ${rounds} fresh processes each; net = median − node -e 0 (${nodeStart.toFixed(1)} ms)`,
);
const width = Math.max(...targets.map((target) => target.name.length));
console.log(
  `${'target'.padEnd(width)}  ${'bytes'.padStart(8)}  ${'median'.padStart(8)}  ${'net'.padStart(8)}  vs floor  vs seed`,
);
const size = (args: string[]) =>
  args[0]?.startsWith('-') ? '' : String(readFileSync(args[0] as string).length);
const ratios: number[] = [];
for (const target of targets) {
  const row = net(target.name);
  if (bundles.has(target.name)) ratios.push(row / floorNet);
  const vsFloor = target.name === 'node -e 0' ? '' : `${(row / floorNet).toFixed(2)}×`;
  const vsSeed = target.name === 'node -e 0' ? '' : `${(row / seedNet).toFixed(2)}×`;
  console.log(
    `${target.name.padEnd(width)}  ${size(target.args).padStart(8)}  ${`${medianOf(target.name).toFixed(1)}ms`.padStart(8)}  ${`${row.toFixed(1)}ms`.padStart(8)}  ${vsFloor.padStart(8)}  ${vsSeed.padStart(7)}`,
  );
}
const functionNets = [...bundles.keys()].map(net);
console.log(
  `functions: ${(Math.min(...functionNets) / floorNet).toFixed(2)}–${(Math.max(...functionNets) / floorNet).toFixed(2)}× the floor, ` +
    `${(Math.min(...functionNets) / seedNet).toFixed(2)}–${(Math.max(...functionNets) / seedNet).toFixed(2)}× the seed stack (goal ≤ 0.9× and ≤ 0.22×)`,
);
if (before.size > 0) {
  const beforeNets = [...before.keys()].map(net);
  console.log(
    `before: ${(Math.min(...beforeNets) / floorNet).toFixed(2)}–${(Math.max(...beforeNets) / floorNet).toFixed(2)}× the floor, ` +
      `${(Math.min(...beforeNets) / seedNet).toFixed(2)}–${(Math.max(...beforeNets) / seedNet).toFixed(2)}× the seed stack`,
  );
}
rmSync(work, { recursive: true, force: true });
