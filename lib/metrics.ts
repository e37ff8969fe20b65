import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';

/** The one CloudWatch metrics emitter (Powertools, embedded metric format in the logs). */
export const metrics = new Metrics({ namespace: 'WechatMiniprogramBackend', serviceName: 'payments' });

/**
 * Counts one payment exception and flushes it at once. Its only dimension is `service` (the one the alarm in
 * deploy/stage.cjs watches: a metric with more dimensions is a different metric to CloudWatch); the reason
 * travels as metadata in the same log line.
 */
export function countPaymentException(reason: string): void {
  const single = metrics.singleMetric();
  single.addMetadata('reason', reason);
  single.addMetric('PaymentException', MetricUnit.Count, 1);
}

/** Counts the differences one daily bill run found (0 too, so a missing run shows as missing data) and flushes it. */
export function countBillDifferences(count: number): void {
  const single = metrics.singleMetric();
  single.addMetric('BillDifferences', MetricUnit.Count, count);
}
