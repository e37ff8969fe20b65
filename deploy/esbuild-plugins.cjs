'use strict';
/**
 * esbuild plugins of the Lambda bundles (serverless.yml, custom.esbuild.plugins), for a shorter cold start
 * (issue 12; measured by `npm run bench:init`). CommonJS because serverless-esbuild loads it with require().
 *
 * - builtinsViaRequire: a Node built-in that a bundled ES module imports (`import { request } from 'node:http'`)
 *   is taken with `require()` (the bundle banner's createRequire) and its named imports read from that object.
 *   An ES import of a built-in makes Node build the module's namespace from every export, which runs the lazy
 *   getters: `http.WebSocket` loads all of undici (40–80 ms on the bench machine), `crypto.webcrypto` the Web
 *   Crypto module, `process.stdin` a stream. Here only the names the bundle imports are read, once, at load (a
 *   getter among them runs then, as it did), and a dynamic import reads its names when used.
 * - awsSdkSchemas: the schemas of the AWS SDK clients (schemas_0.js) as esbuild can tree-shake them, and of
 *   the SSM client only what GetParameters needs. @aws-sdk/client-ssm registers all of SSM's ~140 error classes
 *   and their schemas at load (`registerError` at top level), and esbuild keeps every schema written with a
 *   computed key (`{ [_e]: _c }`): together about 75 KB of every bundle that reads secrets, although
 *   lib/clients/ssm.ts sends only GetParameters. The keys are written out (plainSchemaKeys) and only
 *   GetParameters' errors stay registered (InternalServerError, InvalidKeyId, per the SSM API reference), so
 *   esbuild drops the other operations and errors. An error SSM answers that is not registered still arrives
 *   as an SSMServiceException carrying SSM's error name, message, `$fault` and `$metadata` (@aws-sdk/core
 *   ProtocolLib), which is all lib/secrets.ts reads. Fails the build when a file no longer has the expected
 *   shape.
 */
const { readFile } = require('node:fs/promises');
const { isBuiltin } = require('node:module');

const BUILTIN_NAMESPACE = 'builtin-require';
const BUILTIN_COMMONJS_NAMESPACE = 'builtin-require-commonjs';

/**
 * The ES module esbuild bundles for a static import of built-in `name` (`crypto`; `node:sqlite` as `sqlite`): the
 * module object as default export, and each export of the built-in (as this Node lists them, getters included)
 * read from it in a pure expression, which esbuild drops when nothing imports that name.
 */
function builtinModule(name) {
  const specifier = `node:${name}`;
  const names = Object.keys(require(specifier)).filter((key) => key !== 'default');
  const reads = names.map((key, i) => `const e${i} = /* @__PURE__ */ (() => m[${JSON.stringify(key)}])();`);
  const exports = names.map((key, i) => `e${i} as ${JSON.stringify(key)}`);
  return [
    `const m = require(${JSON.stringify(specifier)});`,
    'export default m;',
    ...reads,
    `export { ${exports.join(', ')} };`,
    '',
  ].join('\n');
}

/**
 * A dynamic `import('node:http')` needs the whole namespace, which would read every export (getters too): it gets
 * the built-in as a CommonJS module instead, whose namespace esbuild reads name by name when used.
 */
function builtinCommonJsModule(name) {
  return `module.exports = require(${JSON.stringify(`node:${name}`)});\n`;
}

/** @type {import('esbuild').Plugin} */
const builtinsViaRequire = {
  name: 'builtins-via-require',
  setup(build) {
    build.onResolve({ filter: /^(node:)?[a-z][a-z0-9_/]*$/ }, (args) => {
      // The modules below require the built-in themselves: those calls stay external requires.
      if (args.kind === 'require-call' || !isBuiltin(args.path)) return undefined;
      const name = args.path.replace(/^node:/, '');
      return args.kind === 'dynamic-import'
        ? { path: name, namespace: BUILTIN_COMMONJS_NAMESPACE }
        : { path: name, namespace: BUILTIN_NAMESPACE };
    });
    build.onLoad({ filter: /.*/, namespace: BUILTIN_NAMESPACE }, (args) => ({
      contents: builtinModule(args.path),
      loader: 'js',
    }));
    build.onLoad({ filter: /.*/, namespace: BUILTIN_COMMONJS_NAMESPACE }, (args) => ({
      contents: builtinCommonJsModule(args.path),
      loader: 'js',
    }));
  },
};

/** The errors the SSM API reference lists for GetParameters: their classes stay registered. */
const GET_PARAMETERS_ERRORS = ['InternalServerError', 'InvalidKeyId'];

/**
 * A client's schemas_0.js with its constant computed keys written out (`{ [_e]: _c }`, `_e` a top-level
 * `const _e = "error"`, becomes `{ "error": _c }`: the same object): esbuild keeps every schema with a computed
 * key, since a key could have side effects, and so keeps all of the service's shapes; with plain keys it drops
 * the schemas nothing uses. Throws when a computed key is not such a constant.
 */
function plainSchemaKeys(source) {
  const constants = new Map(
    [...source.matchAll(/^const (_\w+) = ("[^"\\\n]*");$/gm)].map((match) => [match[1], match[2]]),
  );
  return source.replace(/\[(\w+)\]:/g, (key, name) => {
    const value = constants.get(name);
    if (value === undefined) throw new Error(`aws-sdk schemas: computed key [${name}] is not a string constant`);
    return `${value}:`;
  });
}

/**
 * @aws-sdk/client-ssm's schemas_0.js with only `keep`'s errors registered: drops the other
 * `n0_registry.registerError(X$, X);` lines, so that nothing uses those errors' schemas and classes any more.
 * Throws when the file lacks that shape or a kept error.
 */
function keepSsmErrors(source, keep) {
  const registration = /^n0_registry\.registerError\((\w+)\$, \1\);\n/gm;
  const registered = [...source.matchAll(registration)].map((match) => match[1]);
  const missing = keep.filter((name) => !registered.includes(name));
  if (registered.length < 10 || missing.length > 0) {
    throw new Error(
      `aws-sdk-schemas: @aws-sdk/client-ssm schemas_0.js has an unexpected shape (registers ${registered.length} errors; lacks ${missing.join(', ') || 'none'})`,
    );
  }
  return source.replace(registration, (line, name) => (keep.includes(name) ? line : ''));
}

const SCHEMAS = /[\\/]@aws-sdk[\\/]client-[a-z0-9-]+[\\/]dist-es[\\/]schemas[\\/]schemas_0\.js$/;
const SSM_SCHEMAS = /[\\/]@aws-sdk[\\/]client-ssm[\\/]/;

/** @type {import('esbuild').Plugin} */
const awsSdkSchemas = {
  name: 'aws-sdk-schemas',
  setup(build) {
    build.onLoad({ filter: SCHEMAS }, async (args) => {
      let contents = plainSchemaKeys(await readFile(args.path, 'utf8'));
      if (SSM_SCHEMAS.test(args.path)) contents = keepSsmErrors(contents, GET_PARAMETERS_ERRORS);
      return { contents, loader: 'js' };
    });
  },
};

module.exports = [builtinsViaRequire, awsSdkSchemas];
module.exports.builtinsViaRequire = builtinsViaRequire;
module.exports.builtinModule = builtinModule;
module.exports.awsSdkSchemas = awsSdkSchemas;
module.exports.plainSchemaKeys = plainSchemaKeys;
module.exports.keepSsmErrors = keepSsmErrors;
module.exports.GET_PARAMETERS_ERRORS = GET_PARAMETERS_ERRORS;
