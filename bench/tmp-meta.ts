import { build } from 'esbuild';

const entry = process.argv[2] as string;
const r = await build({
  entryPoints: [entry],
  bundle: true,
  minify: true,
  keepNames: true,
  target: 'node24',
  platform: 'node',
  format: 'esm',
  mainFields: ['module', 'main'],
  write: false,
  metafile: true,
  outfile: '/tmp/speed/meta.mjs',
  logLevel: 'error',
});
const out = Object.values(r.metafile.outputs)[0]!;
const byPkg = new Map<string, number>();
for (const [file, info] of Object.entries(out.inputs)) {
  const m = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(file);
  const key = m ? m[1]! : file.split('/').slice(0, 2).join('/');
  byPkg.set(key, (byPkg.get(key) ?? 0) + info.bytesInOutput);
}
console.log('total', out.bytes);
for (const [k, v] of [...byPkg].sort((a, b) => b[1] - a[1]).slice(0, 25))
  console.log(String(v).padStart(8), k);
