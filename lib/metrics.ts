import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';

/** The one CloudWatch metrics emitter (Powertools, embedded metric format in the logs). */
export const metrics = new Metrics({ namespace: 'WechatMiniprogramBackend', serviceName: 'payments' });

/** Counts one payment exception (alarmed in serverless.yml) and flushes it at once. */
export function countPaymentException(reason: string): void {
  const single = metrics.singleMetric();
  single.addDimension('reason', reason);
  single.addMetric('PaymentException', MetricUnit.Count, 1);
}

/** Counts the differences one daily bill run found (0 too, so a missing run shows as missing data) and flushes it. */
export function countBillDifferences(count: number): void {
  const single = metrics.singleMetric();
  single.addMetric('BillDifferences', MetricUnit.Count, count);
}
