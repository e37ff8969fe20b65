import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { type BuildOptions, build, type Plugin } from 'esbuild';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readServerlessYml } from '#local/serverless-routes';

const ROOT = resolve(import.meta.dirname, '../../..');
const plugins = createRequire(import.meta.url)('../../../deploy/esbuild-plugins.cjs') as Plugin[] & {
  builtinModule: (name: string) => string;
  plainSchemaKeys: (source: string) => string;
  keepSsmErrors: (source: string, keep: string[]) => string;
  GET_PARAMETERS_ERRORS: string[];
};

/** lib/clients/ssm.ts bundled with serverless.yml's custom.esbuild options, with or without its plugins. */
async function bundleSsmClient(outfile: string, withPlugins: boolean): Promise<string> {
  const { esbuild } = readServerlessYml().custom;
  expect(esbuild.plugins).toBe('./deploy/esbuild-plugins.cjs');
  const options: BuildOptions = {
    entryPoints: [join(ROOT, 'lib/clients/ssm.ts')],
    outfile,
    bundle: true,
    minify: esbuild.minify,
    keepNames: esbuild.keepNames,
    target: esbuild.target,
    platform: esbuild.platform,
    format: esbuild.format,
    mainFields: esbuild.mainFields,
    banner: esbuild.banner,
    alias: Object.fromEntries(
      Object.entries<string>(esbuild.alias).map(([name, path]) => [name, resolve(ROOT, path)]),
    ),
    absWorkingDir: ROOT,
    logLevel: 'error',
    plugins: withPlugins ? plugins : [],
  };
  await build(options);
  return readFile(outfile, 'utf8');
}

/**
 * Run in a fresh node: imports the bundle (noting whether that loaded undici), then asks a local SSM for three
 * parameter sets with getSecureParameters: one answered, one refused with InvalidKeyId (a GetParameters error),
 * one with AccessDeniedException (an SSM error the trimmed schema does not register). Prints what came back.
 */
const DRIVER = `
const undiciBefore = process.moduleLoadList.some((name) => name.includes('undici'));
const { getSecureParameters } = await import(process.argv[2]);
const undici = !undiciBefore && process.moduleLoadList.some((name) => name.includes('undici'));
const require = (await import('node:module')).createRequire(import.meta.url);
const server = require('node:http').createServer((request, response) => {
  let body = '';
  request.on('data', (chunk) => (body += chunk));
  request.on('end', () => {
    const [name] = JSON.parse(body).Names;
    const answer = (status, json) => {
      response.writeHead(status, { 'content-type': 'application/x-amz-json-1.1' });
      response.end(JSON.stringify(json));
    };
    if (name === '/ok') answer(200, { Parameters: [{ Name: '/ok', Type: 'SecureString', Value: 'v' }], InvalidParameters: ['/gone'] });
    else if (name === '/kms') answer(400, { __type: 'com.amazonaws.ssm#InvalidKeyId', message: 'key disabled' });
    else answer(400, { __type: 'AccessDeniedException', Message: 'not yours' });
  });
});
await new Promise((done) => server.listen(0, '127.0.0.1', done));
process.env.AWS_ENDPOINT_URL_SSM = 'http://127.0.0.1:' + server.address().port;
const outcome = async (names) => {
  try {
    return await getSecureParameters(names, { timeoutMs: 5000 });
  } catch (error) {
    return { name: error.name, fault: error.$fault, status: error.$metadata?.httpStatusCode, message: error.message };
  }
};
const results = [await outcome(['/ok', '/gone']), await outcome(['/kms']), await outcome(['/denied'])];
server.close();
console.log(JSON.stringify({ undici, results }));
`;

describe('deploy/esbuild-plugins.cjs on lib/clients/ssm.ts', () => {
  let work: string;
  let trimmed: string;
  let plain: string;

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'esbuild-plugins-'));
    await writeFile(join(work, 'driver.mjs'), DRIVER);
    [trimmed, plain] = await Promise.all([
      bundleSsmClient(join(work, 'trimmed.mjs'), true),
      bundleSsmClient(join(work, 'plain.mjs'), false),
    ]);
  }, 60_000);
  afterAll(async () => {
    if (work) await rm(work, { recursive: true, force: true });
  });

  /** The driver's findings for one bundle. */
  async function drive(bundle: string): Promise<{ undici: boolean; results: unknown[] }> {
    const { stdout } = await promisify(execFile)(
      process.execPath,
      [join(work, 'driver.mjs'), join(work, bundle)],
      {
        env: {
          PATH: process.env.PATH,
          AWS_REGION: 'ap-southeast-1',
          AWS_ACCESS_KEY_ID: 'test',
          AWS_SECRET_ACCESS_KEY: 'test',
        },
        timeout: 30_000,
      },
    );
    return JSON.parse(stdout);
  }

  it('leaves out every SSM operation and error but GetParameters and its errors', () => {
    // Prepare: names the full client carries although GetParameters never uses them: errors of other operations
    // (registered at load) and the shapes their schemas hold.
    const others = [
      'ParameterNotFound',
      'ParameterAlreadyExists',
      'AutomationStepNotFoundException',
      'AssociationDescription',
    ];

    // Act
    const left = others.filter((name) => trimmed.includes(name));

    // Assess
    expect(left).toEqual([]);
    for (const name of others) expect(plain, name).toContain(name);
    for (const name of ['GetParameters', ...plugins.GET_PARAMETERS_ERRORS])
      expect(trimmed, name).toContain(name);
    expect(plain.length - trimmed.length).toBeGreaterThan(50_000);
  });

  it('imports no Node built-in as an ES module', () => {
    // Prepare: the static imports of a bundle (the banner's node:module is the one left).
    const esImports = (code: string) =>
      [...code.matchAll(/(?:from|import)\s*["']([\w@][\w:@./-]*)["']/g)].map((m) => m[1]);

    // Assess
    expect(esImports(trimmed)).toEqual(['node:module']);
    expect(esImports(plain)).toEqual(expect.arrayContaining(['node:module', 'node:https', 'node:crypto']));
  });

  it('loads no undici for an import of node:http (an ES import runs its WebSocket getter)', async () => {
    // Prepare
    const entry = "import { Agent, request } from 'node:http';\nexport const used = [Agent, request];\n";
    const bundle = async (outfile: string, withPlugins: boolean) =>
      build({
        stdin: { contents: entry, loader: 'js', resolveDir: ROOT },
        outfile,
        bundle: true,
        platform: 'node',
        format: 'esm',
        banner: readServerlessYml().custom.esbuild.banner,
        logLevel: 'error',
        plugins: withPlugins ? plugins : [],
      });
    await Promise.all([bundle(join(work, 'http.mjs'), true), bundle(join(work, 'http-plain.mjs'), false)]);
    const probe = async (file: string) => {
      const code = `await import(process.argv[1]); console.log(process.moduleLoadList.some((m) => m.includes('undici')));`;
      const { stdout } = await promisify(execFile)(process.execPath, [
        '--input-type=module',
        '-e',
        code,
        file,
      ]);
      return stdout.trim();
    };

    // Act
    const [withPlugins, without] = await Promise.all([
      probe(join(work, 'http.mjs')),
      probe(join(work, 'http-plain.mjs')),
    ]);

    // Assess
    expect(withPlugins).toBe('false');
    expect(without).toBe('true');
  }, 30_000);

  it('answers GetParameters and SSM errors as the full client does', async () => {
    // Act
    const [withPlugins, without] = await Promise.all([drive('trimmed.mjs'), drive('plain.mjs')]);

    // Assess
    expect(withPlugins.undici).toBe(false);
    expect(withPlugins.results).toEqual([
      { values: { '/ok': 'v' }, missing: ['/gone'], notSecure: [] },
      { name: 'InvalidKeyId', fault: 'client', status: 400, message: 'key disabled' },
      { name: 'AccessDeniedException', fault: 'client', status: 400, message: 'not yours' },
    ]);
    expect(withPlugins.results).toEqual(without.results);
  }, 60_000);
});

describe('builtinModule', () => {
  it('reads each export of the built-in in a pure expression, getters included, and exports the module', () => {
    // Act
    const http = plugins.builtinModule('http');

    // Assess
    expect(http).toContain('const m = require("node:http");');
    expect(http).toContain('export default m;');
    expect(http).toMatch(
      /const (e\d+) = \/\* @__PURE__ \*\/ \(\(\) => m\["request"\]\)\(\);[\s\S]*\1 as "request"/,
    );
    expect(http).toMatch(
      /const (e\d+) = \/\* @__PURE__ \*\/ \(\(\) => m\["WebSocket"\]\)\(\);[\s\S]*\1 as "WebSocket"/,
    );
  });
});

describe('plainSchemaKeys', () => {
  it('writes constant computed keys out and refuses any other computed key', () => {
    // Prepare
    const source =
      'const _e = "error";\nconst _c = "client";\nexport var X$ = [-3, n0, _X,\n    { [_e]: _c },\n];\n';

    // Act
    const plainKeys = plugins.plainSchemaKeys(source);

    // Assess
    expect(plainKeys).toContain('{ "error": _c }');
    expect(plainKeys).not.toContain('[_e]');
    expect(() => plugins.plainSchemaKeys('const _e = "error";\nvar y = { [other]: 1 };\n')).toThrow(
      'computed key [other] is not a string constant',
    );
  });
});

describe('keepSsmErrors', () => {
  const registrations = Array.from({ length: 12 }, (_, i) => `n0_registry.registerError(E${i}$, E${i});\n`);

  it('keeps the registration of the listed errors only', () => {
    // Act
    const kept = plugins.keepSsmErrors(registrations.join(''), ['E3', 'E7']);

    // Assess
    expect(kept).toBe(`${registrations[3]}${registrations[7]}`);
  });

  it('fails the build when the file has another shape or lacks a kept error', () => {
    // Assess
    expect(() => plugins.keepSsmErrors('export const x = 1;\n', ['E3'])).toThrow('unexpected shape');
    expect(() => plugins.keepSsmErrors(registrations.join(''), ['InvalidKeyId'])).toThrow(
      'lacks InvalidKeyId',
    );
  });
});
