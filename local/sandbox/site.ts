import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { openApiDocument } from '#local/openapi';
import { json, type Sandbox, type SandboxReply, type SandboxRequest } from './server';

/**
 * The sandbox's own site on the same origin as its control API: the simulator page (`GET /`, assets under
 * `/simulator/`), an official-account H5 page (`GET /h5/demo.html`: web OAuth, JS-SDK, H5 pay; it goes to the
 * local API itself for the OAuth redirects, whose cookie and 302s must be the browser's), the mini-program client helper as a browser script (`GET /client.js`), the OpenAPI spec
 * (`GET /openapi.json`) with its docs page (`GET /docs`), and `/wechat/*` forwarded to the local API, so the page
 * needs no CORS from the API.
 */

const ROOT = resolve(import.meta.dirname, '../..');
const SIMULATOR = resolve(ROOT, 'local/simulator');
const SWAGGER_UI = resolve(ROOT, 'node_modules/swagger-ui-dist');

const TYPES: Record<string, string> = {
  html: 'text/html; charset=utf-8',
  css: 'text/css; charset=utf-8',
  js: 'text/javascript; charset=utf-8',
};

/** A file from an allow-listed directory, read on every request (edits show on reload). */
function file(directory: string, name: string): SandboxReply {
  const type = TYPES[name.split('.').pop() ?? ''] ?? 'text/plain; charset=utf-8';
  return {
    status: 200,
    headers: { 'content-type': type },
    body: readFileSync(resolve(directory, name), 'utf8'),
  };
}

/** client/index.js (CommonJS) wrapped as a browser script that sets `window.MiniProgramClient`. */
function clientScript(): SandboxReply {
  const source = readFileSync(resolve(ROOT, 'client/index.js'), 'utf8');
  const body = `(function () {\nvar module = { exports: {} };\nvar exports = module.exports;\n${source}\nwindow.MiniProgramClient = module.exports;\n})();\n`;
  return { status: 200, headers: { 'content-type': TYPES.js as string }, body };
}

const DOCS_PAGE = `<!doctype html>
<html lang="zh-CN">
<head>
<meta charset="utf-8"><title>API · WeChat Mini Program backend</title>
<link rel="icon" href="data:,"><link rel="stylesheet" href="/docs/swagger-ui.css">
<style>body{margin:0}.swagger-ui .topbar{display:none}</style>
</head>
<body><div id="docs"></div>
<script src="/docs/swagger-ui-bundle.js"></script>
<script>SwaggerUIBundle({ url: '/openapi.json', dom_id: '#docs', deepLinking: true, tryItOutEnabled: false });</script>
</body>
</html>`;

/** Forwards a request to the local API unchanged (method, path and query, JSON or XML body, authorization). */
async function forward(apiBase: string, request: SandboxRequest): Promise<SandboxReply> {
  const headers: Record<string, string> = {};
  for (const name of ['authorization', 'content-type']) {
    const value = request.headers[name];
    if (typeof value === 'string') headers[name] = value;
  }
  try {
    const response = await fetch(`${apiBase}${request.url.pathname}${request.url.search}`, {
      method: request.method,
      headers,
      body: request.method === 'GET' || request.method === 'HEAD' ? undefined : request.body,
      signal: AbortSignal.timeout(30_000),
    });
    const type = response.headers.get('content-type') ?? 'application/json';
    const retryAfter = response.headers.get('retry-after');
    return {
      status: response.status,
      headers: { 'content-type': type, ...(retryAfter ? { 'retry-after': retryAfter } : {}) },
      body: await response.text(),
    };
  } catch (error) {
    const reason = (error as Error).name;
    return json(502, {
      success: false,
      message: `本地 API 未响应（${apiBase}）`,
      code: 'API_UNREACHABLE',
      reason,
    });
  }
}

/** Registers the site; `apiBase` is the local API the page and the docs reach through `/wechat/*`. */
export function registerSite(sandbox: Sandbox, apiBase: string): void {
  sandbox.site('GET', '/', () => file(SIMULATOR, 'index.html'));
  // The H5 page learns where the API is (its OAuth links go there, not through the forward below).
  sandbox.site('GET', '/h5/demo.html', () => {
    const page = file(SIMULATOR, 'h5.html');
    return { ...page, body: (page.body as string).replace('%API_BASE%', apiBase) };
  });
  for (const name of ['simulator.css', 'kit.js', 'simulator.js', 'h5.js']) {
    sandbox.site('GET', `/simulator/${name}`, () => file(SIMULATOR, name));
  }
  sandbox.site('GET', '/client.js', clientScript);
  sandbox.site('GET', '/openapi.json', () =>
    json(200, openApiDocument([{ url: '/', description: 'this local stack, through the sandbox' }])),
  );
  sandbox.site('GET', '/docs', () => ({
    status: 200,
    headers: { 'content-type': TYPES.html as string },
    body: DOCS_PAGE,
  }));
  for (const name of ['swagger-ui.css', 'swagger-ui-bundle.js']) {
    sandbox.site('GET', `/docs/${name}`, () => file(SWAGGER_UI, name));
  }
  sandbox.site('*', '/wechat/', (request) => forward(apiBase, request), true);
  // The admin routes are open on loopback locally (IAM-authorized on AWS): the page runs the reconciler.
  sandbox.site('*', '/admin/', (request) => forward(apiBase, request), true);
}
