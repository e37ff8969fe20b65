import { createServer, type IncomingHttpHeaders, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** One request the scripted server received. */
export interface Captured {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: string;
}

/** A running scripted server (see startScripted). */
export type ScriptedServer = Awaited<ReturnType<typeof startScripted>>;

/**
 * A tiny HTTP server on loopback whose answers the test scripts (`next`, in order; 204 when none is
 * queued); records every request.
 */
export async function startScripted() {
  const requests: Captured[] = [];
  const replies: ((response: ServerResponse) => void)[] = [];
  const server: Server = createServer(async (req, response) => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const captured = {
      method: req.method ?? '',
      url: req.url ?? '',
      headers: req.headers,
      body: Buffer.concat(chunks).toString('utf8'),
    };
    requests.push(captured);
    const reply = replies.shift();
    if (reply) reply(response);
    else response.writeHead(204).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    requests,
    /** Queues the answer to the next request. */
    next(status: number, body: string, headers: Record<string, string> = {}) {
      replies.push((response) => response.writeHead(status, headers).end(body));
    },
    /** Leaves the next request unanswered (the connection stays open until close). */
    hang() {
      replies.push(() => {});
    },
    close: () => {
      server.closeAllConnections();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
