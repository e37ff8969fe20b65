import { createServer, type Server, type Socket } from 'node:net';
import { GetParametersCommand, SSMClient } from '@aws-sdk/client-ssm';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { getSecureParameters, SsmDeadlineError } from '#lib/clients/ssm';

const secure = (Name: string, Value = `value of ${Name}`) => ({ Name, Value, Type: 'SecureString' as const });

// Runs first: the module's client is built on first use, here against the silent endpoint.
describe('getSecureParameters against an endpoint that accepts and never answers', () => {
  let server: Server;
  const sockets = new Set<Socket>();

  beforeAll(async () => {
    server = createServer((socket) => sockets.add(socket));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as { port: number };
    vi.stubEnv('AWS_ENDPOINT_URL_SSM', `http://127.0.0.1:${port}`);
    vi.stubEnv('AWS_REGION', 'ap-southeast-1');
    vi.stubEnv('AWS_ACCESS_KEY_ID', 'test');
    vi.stubEnv('AWS_SECRET_ACCESS_KEY', 'test');
  });
  afterAll(async () => {
    vi.unstubAllEnvs();
    for (const socket of sockets) socket.destroy();
    await new Promise((resolve) => server.close(resolve));
  });

  it('gives up at the deadline on the real HTTP handler', async () => {
    // Prepare
    const started = performance.now();

    // Act
    const error = await getSecureParameters(['/a'], { timeoutMs: 300 }).catch((caught: unknown) => caught);

    // Assess
    expect(error).toBeInstanceOf(SsmDeadlineError);
    expect(performance.now() - started).toBeLessThan(1500);
    expect(sockets.size).toBeGreaterThan(0);
  });
});

describe('getSecureParameters', () => {
  // Stubbed only while this block runs (the block above talks to a real socket).
  let ssm = mockClient(SSMClient);
  ssm.restore();
  beforeAll(() => {
    ssm = mockClient(SSMClient);
  });
  afterEach(() => ssm.reset());
  afterAll(() => ssm.restore());

  it('asks for every name decrypted, in batches of at most 10', async () => {
    // Prepare
    const names = Array.from({ length: 23 }, (_, i) => `/svc/prod/P${i}`);
    ssm.on(GetParametersCommand).callsFake(({ Names }: { Names: string[] }) => ({
      Parameters: Names.map((name) => secure(name)),
    }));

    // Act
    const result = await getSecureParameters(names, { timeoutMs: 1000 });

    // Assess
    const calls = ssm.commandCalls(GetParametersCommand).map((call) => call.args[0].input);
    expect(calls.map((input) => input.Names?.length)).toEqual([10, 10, 3]);
    expect(calls.every((input) => input.WithDecryption === true)).toBe(true);
    expect(Object.keys(result.values)).toEqual(names);
    expect(result).toMatchObject({ missing: [], notSecure: [] });
  });

  it('reports names SSM lists as invalid or leaves out as missing', async () => {
    // Prepare
    ssm.on(GetParametersCommand).resolves({ Parameters: [secure('/a')], InvalidParameters: ['/b'] });

    // Act
    const result = await getSecureParameters(['/a', '/b', '/c'], { timeoutMs: 1000 });

    // Assess
    expect(result).toEqual({ values: { '/a': 'value of /a' }, missing: ['/b', '/c'], notSecure: [] });
  });

  it('refuses String and StringList parameters: named in notSecure, value dropped', async () => {
    // Prepare
    ssm.on(GetParametersCommand).resolves({
      Parameters: [
        { Name: '/plain', Value: 'leaked', Type: 'String' },
        { Name: '/list', Value: 'a,b', Type: 'StringList' },
        secure('/ok'),
      ],
    });

    // Act
    const result = await getSecureParameters(['/plain', '/list', '/ok'], { timeoutMs: 1000 });

    // Assess
    expect(result.notSecure).toEqual(['/plain', '/list']);
    expect(result.missing).toEqual([]);
    expect(JSON.stringify(result)).not.toContain('leaked');
  });

  it('passes the SDK error through (throttling, access denied)', async () => {
    // Prepare
    const throttled = Object.assign(new Error('Rate exceeded'), { name: 'ThrottlingException' });
    ssm.on(GetParametersCommand).rejects(throttled);

    // Act
    const error = await getSecureParameters(['/a'], { timeoutMs: 1000 }).catch((caught: unknown) => caught);

    // Assess
    expect((error as Error).name).toBe('ThrottlingException');
  });

  it('rejects with SsmDeadlineError when SSM does not answer within the deadline', async () => {
    // Prepare
    ssm.on(GetParametersCommand).callsFake(() => new Promise(() => {}));
    const started = performance.now();

    // Act
    const error = await getSecureParameters(['/a'], { timeoutMs: 150 }).catch((caught: unknown) => caught);

    // Assess
    expect(error).toBeInstanceOf(SsmDeadlineError);
    expect(performance.now() - started).toBeLessThan(1000);
  });
});
