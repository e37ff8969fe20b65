import type { AddressInfo } from 'node:net';
import { createServer, type Socket } from 'node:net';

/** A running stalled server (see startStalled). */
export type StalledServer = Awaited<ReturnType<typeof startStalled>>;

/**
 * A TCP server on loopback that accepts every connection and never answers (reads and drops the bytes):
 * the dependency that hangs. Counts connections and records request lines; close destroys them.
 */
export async function startStalled() {
  const sockets = new Set<Socket>();
  let connections = 0;
  const requestLines: string[] = [];
  const server = createServer((socket) => {
    connections++;
    sockets.add(socket);
    let seen = false;
    socket.on('data', (chunk: Buffer) => {
      if (!seen) requestLines.push(chunk.toString('latin1').split('\r\n', 1)[0] ?? '');
      seen = true;
    });
    socket.on('error', () => {});
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    /** Connections accepted so far. */
    connections: () => connections,
    /** The first line of each request received (one per connection that sent anything). */
    requests: () => [...requestLines],
    close: () => {
      for (const socket of sockets) socket.destroy();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
