import { afterEach, describe, expect, it, vi } from 'vitest';

/** The EMF documents a metrics module printed while `act` ran (Powertools writes one JSON line each). */
async function emitted(
  act: (metrics: typeof import('#lib/metrics')) => void,
): Promise<Record<string, any>[]> {
  vi.resetModules();
  vi.stubEnv('POWERTOOLS_METRICS_DISABLED', 'false');
  vi.stubEnv('POWERTOOLS_DEV', 'false');
  const lines: string[] = [];
  const capture = (chunk: unknown) => {
    lines.push(String(chunk));
    return true;
  };
  const stdout = vi.spyOn(process.stdout, 'write').mockImplementation(capture);
  const log = vi.spyOn(console, 'log').mockImplementation(capture);
  const metrics = await import('#lib/metrics');
  act(metrics);
  stdout.mockRestore();
  log.mockRestore();
  return lines
    .flatMap((text) => text.split('\n'))
    .filter((line) => line.includes('"_aws"'))
    .map((line) => JSON.parse(line));
}

afterEach(() => {
  vi.unstubAllEnvs();
  vi.resetModules();
});

describe('countPaymentException', () => {
  it('emits PaymentException on the service dimension alone (what the alarm watches), the reason as metadata', async () => {
    // Act
    const [document] = await emitted((metrics) => metrics.countPaymentException('amount_mismatch'));
    // Assess
    expect(document?._aws.CloudWatchMetrics).toEqual([
      {
        Namespace: 'WechatMiniprogramBackend',
        Dimensions: [['service']],
        Metrics: [{ Name: 'PaymentException', Unit: 'Count' }],
      },
    ]);
    expect(document).toMatchObject({ service: 'payments', PaymentException: 1, reason: 'amount_mismatch' });
  });
});
