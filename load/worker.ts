/**
 * A forked notify worker: a separate process with its own module caches, config and DynamoDB client,
 * like a separate cold Lambda container. Its environment (tables, WECHAT_PAY_VERSION) comes from the
 * parent at fork time. Protocol: → {type:'ready'}; then any number of ← {type:'run', deliveries,
 * concurrency} → {type:'done', …}; it exits on ← {type:'exit'} or when the parent goes away.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import type { Delivery } from './app';
import { CallCounter, createApp, deliver, Tally } from './app';
import { collectGarbage, runPool } from './util';

export interface WorkerRun {
  type: 'run';
  deliveries: Delivery[];
  concurrency: number;
}

export interface WorkerDone {
  type: 'done';
  version: string;
  pid: number;
  latencies: Float64Array;
  /** Index-aligned with the deliveries: 0 ack, 1 fail, 2 error. */
  outcomes: Uint8Array;
  tally: ReturnType<Tally['toJSON']>;
  ddb: Record<string, number>;
  wallMs: number;
  /** RSS after GC before the run, the peak sampled during it, and after GC at the end (bytes). */
  rss: { before: number; peak: number; after: number };
  heap: { before: number; after: number };
  eventLoopMaxMs: number;
  error?: string;
}

const app = createApp();
const counter = new CallCounter(app);

const OUTCOME_CODES = { ack: 0, fail: 1, error: 2 } as const;

process.on('disconnect', () => process.exit(0));
process.on('message', (message: WorkerRun | { type: 'exit' }) => {
  if (message?.type === 'exit') process.exit(0);
  if (message?.type !== 'run') return;
  void (async () => {
    const tally = new Tally();
    collectGarbage();
    const rssBefore = process.memoryUsage.rss();
    const heapBefore = process.memoryUsage().heapUsed;
    let peak = rssBefore;
    const sampler = setInterval(() => {
      peak = Math.max(peak, process.memoryUsage.rss());
    }, 20);
    const loop = monitorEventLoopDelay({ resolution: 1 });
    loop.enable();
    counter.reset();
    const started = performance.now();
    let latencies: Float64Array = new Float64Array(0);
    const outcomes = new Uint8Array(message.deliveries.length);
    let error: string | undefined;
    try {
      latencies = await runPool(message.deliveries, message.concurrency, async (delivery, index) => {
        const result = await deliver(app, delivery);
        outcomes[index] = OUTCOME_CODES[result.outcome];
        tally.add(result);
      });
    } catch (caught) {
      error = String(caught);
    }
    const wallMs = performance.now() - started;
    loop.disable();
    clearInterval(sampler);
    peak = Math.max(peak, process.memoryUsage.rss());
    const ddb = counter.snapshot();
    collectGarbage();
    const done: WorkerDone = {
      type: 'done',
      version: process.env.WECHAT_PAY_VERSION ?? 'v2',
      pid: process.pid,
      latencies,
      outcomes,
      tally: tally.toJSON(),
      ddb,
      wallMs,
      rss: { before: rssBefore, peak, after: process.memoryUsage.rss() },
      heap: { before: heapBefore, after: process.memoryUsage().heapUsed },
      eventLoopMaxMs: loop.max / 1e6,
      error,
    };
    process.send?.(done);
  })();
});

process.send?.({ type: 'ready' });
