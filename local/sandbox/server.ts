import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';

/**
 * The WeChat sandbox: a node:http server that plays api.weixin.qq.com and api.mch.weixin.qq.com on
 * loopback, speaking the real wire formats, plus a control API under /sandbox/ for tests and the demo.
 * This module is the router only: each WeChat surface registers its endpoints (login.ts, pay-v2.ts, pay-v3.ts),
 * control.ts registers the /sandbox/ routes, and index.ts composes them.
 */

export interface SandboxRequest {
  method: string;
  url: URL;
  headers: IncomingMessage['headers'];
  body: string;
  /**
   * The verified client certificate's serial (upper-case hex) on the mutual-TLS listener (listenTls); undefined
   * on the plain listener.
   */
  clientCertSerial?: string;
}

export interface SandboxReply {
  status: number;
  headers?: Record<string, string>;
  /** Text, or bytes (a gzip bill). */
  body: string | Uint8Array;
}

export type RouteHandler = (request: SandboxRequest) => Promise<SandboxReply> | SandboxReply;

/**
 * A fault switched on for one WeChat endpoint: `timeout` never answers, `busy` answers WeChat's "system busy",
 * `5xx` a 502, `quota` errcode 45011 (minute quota reached; JSON endpoints of api.weixin.qq.com).
 */
export type FaultMode = 'timeout' | 'busy' | '5xx' | 'quota';

/** Every fault mode, for the control route's check. */
export const FAULT_MODES: readonly FaultMode[] = ['timeout', 'busy', '5xx', 'quota'];

export interface Fault {
  mode: FaultMode;
  /** How many calls it affects; undefined = until cleared. */
  remaining?: number;
}

export class Sandbox {
  private readonly routes = new Map<string, RouteHandler>();
  private readonly prefixRoutes: { method: string; prefix: string; handler: RouteHandler }[] = [];
  private readonly siteRoutes: { method: string; path: string; prefix: boolean; handler: RouteHandler }[] =
    [];
  private readonly busyReplies = new Map<string, (request: SandboxRequest) => SandboxReply>();
  private readonly closeHooks: (() => void)[] = [];
  readonly faults = new Map<string, Fault>();
  /** Every call to a WeChat endpoint (not /sandbox/), newest last; tests count them. */
  readonly calls: { method: string; path: string; at: number }[] = [];
  private server?: Server;
  baseUrl = '';

  /** Registers a route. `busy` builds the endpoint's own "system busy" answer (for that request) for the busy fault. */
  route(
    method: string,
    path: string,
    handler: RouteHandler,
    busy?: (request: SandboxRequest) => SandboxReply,
  ): void {
    this.routes.set(`${method} ${path}`, handler);
    if (busy) this.busyReplies.set(path, busy);
  }

  /**
   * Registers a handler for every path under `prefix` (paths carrying an id, e.g.
   * `/v3/pay/transactions/out-trade-no/`); exact routes win.
   */
  routePrefix(method: string, prefix: string, handler: RouteHandler): void {
    this.prefixRoutes.push({ method, prefix, handler });
  }

  /**
   * Registers a route of the local site (the simulator page, the API docs, the API proxy): not a WeChat endpoint,
   * so never logged in `calls` nor faulted. `method` '*' matches any; `prefix` matches every path under `path`.
   */
  site(method: string, path: string, handler: RouteHandler, prefix = false): void {
    this.siteRoutes.push({ method, path, prefix, handler });
  }

  async handle(request: SandboxRequest): Promise<SandboxReply | undefined> {
    const path = request.url.pathname;
    const site = this.siteRoutes.find(
      (r) =>
        (r.method === '*' || r.method === request.method) &&
        (r.prefix ? path.startsWith(r.path) : path === r.path),
    );
    if (site) return site.handler(request);
    if (!path.startsWith('/sandbox/')) {
      this.calls.push({ method: request.method, path, at: Date.now() });
      const fault = this.faults.get(path);
      if (fault) {
        if (fault.remaining !== undefined && --fault.remaining <= 0) this.faults.delete(path);
        if (fault.mode === 'timeout') return undefined;
        if (fault.mode === '5xx')
          return {
            status: 502,
            headers: { 'content-type': 'text/html' },
            body: '<html>502 Bad Gateway</html>',
          };
        if (fault.mode === 'quota')
          return json(
            200,
            { errcode: 45011, errmsg: 'api minute-quota reach limit, must slower, retry next minute' },
            'text/plain',
          );
        const busy = this.busyReplies.get(path);
        if (busy) return busy(request);
        return { status: 503, body: 'busy' };
      }
    }
    const handler =
      this.routes.get(`${request.method} ${path}`) ??
      this.prefixRoutes.find((r) => r.method === request.method && path.startsWith(r.prefix))?.handler;
    if (!handler) return json(404, { errcode: 404, errmsg: `no sandbox route ${request.method} ${path}` });
    try {
      return await handler(request);
    } catch (error) {
      return json(400, { errcode: 400, errmsg: (error as Error).message });
    }
  }

  private tlsServer?: Server;
  /** The mutual-TLS listener's base URL once listenTls() ran. */
  tlsBaseUrl = '';

  /** The node request listener both listeners share; a hanging (timeout fault) answer is destroyed on close. */
  private listener(hanging: Set<ServerResponse>) {
    return async (req: IncomingMessage, res: ServerResponse) => {
      const chunks: Buffer[] = [];
      for await (const chunk of req) chunks.push(chunk as Buffer);
      const socket = req.socket as Partial<TLSSocket>;
      const peer = socket.authorized ? socket.getPeerCertificate?.() : undefined;
      const request: SandboxRequest = {
        method: req.method ?? 'GET',
        url: new URL(req.url ?? '/', 'http://sandbox'),
        headers: req.headers,
        body: Buffer.concat(chunks).toString('utf8'),
        ...(peer?.serialNumber ? { clientCertSerial: peer.serialNumber.toUpperCase() } : {}),
      };
      const reply = await this.handle(request);
      if (!reply) {
        hanging.add(res);
        res.on('close', () => hanging.delete(res));
        return;
      }
      res.writeHead(reply.status, reply.headers ?? {});
      res.end(reply.body);
    };
  }

  /** Starts listening on host:port (0 = any free port); resolves with the base URL. */
  async listen(port: number, host = '127.0.0.1'): Promise<string> {
    const hanging = new Set<ServerResponse>();
    this.server = createServer(this.listener(hanging));
    this.server.on('close', () => {
      for (const res of hanging) res.destroy();
    });
    await new Promise<void>((resolve) => this.server?.listen(port, host, resolve));
    const address = this.server.address() as AddressInfo;
    this.baseUrl = `http://${host}:${address.port}`;
    return this.baseUrl;
  }

  /**
   * Starts the HTTPS listener WeChat Pay v2's `/secapi/` calls need (mutual TLS): `cert`/`key` are the server's,
   * and a client must present a certificate issued by `ca` or the handshake is refused. Same routes as listen().
   */
  async listenTls(
    port: number,
    tls: { cert: string; key: string; ca: string },
    host = '127.0.0.1',
  ): Promise<string> {
    const hanging = new Set<ServerResponse>();
    const server = createHttpsServer(
      { cert: tls.cert, key: tls.key, ca: tls.ca, requestCert: true, rejectUnauthorized: true },
      this.listener(hanging),
    );
    this.tlsServer = server;
    server.on('close', () => {
      for (const res of hanging) res.destroy();
    });
    await new Promise<void>((resolve) => server.listen(port, host, resolve));
    const address = server.address() as AddressInfo;
    this.tlsBaseUrl = `https://${host}:${address.port}`;
    return this.tlsBaseUrl;
  }

  /** Runs `hook` when close() is called (modules clear their timers there). */
  onClose(hook: () => void): void {
    this.closeHooks.push(hook);
  }

  async close(): Promise<void> {
    for (const hook of this.closeHooks) hook();
    this.server?.closeAllConnections();
    this.tlsServer?.closeAllConnections();
    await Promise.all(
      [this.server, this.tlsServer].map(
        (server) => new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve())),
      ),
    );
  }
}

/** A JSON reply. WeChat's own JSON APIs answer `text/plain`, so callers pass that content type where WeChat does. */
export function json(status: number, body: unknown, contentType = 'application/json'): SandboxReply {
  return { status, headers: { 'content-type': contentType }, body: JSON.stringify(body) };
}

/** Parses a JSON control body, answering an empty object for an empty body. */
export function controlBody(request: SandboxRequest): Record<string, unknown> {
  if (!request.body) return {};
  const parsed: unknown = JSON.parse(request.body);
  return typeof parsed === 'object' && parsed !== null ? (parsed as Record<string, unknown>) : {};
}
