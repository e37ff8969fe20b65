/**
 * The ledger check after a scenario: Scan both tables (test-only; the app never scans) with a client of
 * our own (so the INV-4 call counter on the app's client stays clean) and compare with what must hold.
 *
 * INV-1 each order is PAID (with the expected transaction_id) iff WeChat reported it paid, and credited at
 *       most once: a user's `version` moves by exactly one per credit, so Σ(version − start) = credits.
 * INV-2 each user's membership end equals the start folded with extendMembership over the plan days of
 *       their PAID orders, computed in two different orders (they must agree: starts use days 1–28).
 */
import { DynamoDBDocumentClient, ScanCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { localDynamo } from '#local/tables';
import type { App, Tables } from './app';
import { shuffle } from './util';

export interface ExpectedOrder {
  outTradeNo: string;
  userId: string;
  planId: string;
  /** WeChat says paid (a genuine notify or order query was delivered). */
  paid: boolean;
  transactionId?: string;
}

export interface ExpectedUser {
  id: string;
  openid: string;
  /** The membership end seeded before the run (always in the future, day of month ≤ 28). */
  start?: string;
  startVersion: number;
}

export interface LedgerResult {
  failures: string[];
  paidOrders: number;
  credits: number;
  paidVia: Record<string, number>;
}

export class Ledger {
  readonly client: DynamoDBDocumentClient;

  constructor(endpoint: string) {
    this.client = DynamoDBDocumentClient.from(localDynamo(endpoint));
  }

  async scan(table: string): Promise<Record<string, unknown>[]> {
    const items: Record<string, unknown>[] = [];
    let startKey: Record<string, unknown> | undefined;
    do {
      const page = await this.client.send(
        new ScanCommand({ TableName: table, ExclusiveStartKey: startKey, ConsistentRead: true }),
      );
      items.push(...((page.Items ?? []) as Record<string, unknown>[]));
      startKey = page.LastEvaluatedKey;
    } while (startKey);
    return items;
  }

  /** Test fixture: gives a user an existing membership end (not through the app; version untouched). */
  async seedMembership(table: string, userId: string, end: string): Promise<void> {
    await this.client.send(
      new UpdateCommand({
        TableName: table,
        Key: { id: userId },
        UpdateExpression: 'SET membershipEndMs = :end',
        ConditionExpression: 'attribute_exists(id)',
        ExpressionAttributeValues: { ':end': Date.parse(end) },
      }),
    );
  }

  /** Checks INV-1 and INV-2 for a scenario's tables. */
  async check(
    app: App,
    tables: Tables,
    expectedOrders: readonly ExpectedOrder[],
    expectedUsers: readonly ExpectedUser[],
    random: () => number,
  ): Promise<LedgerResult> {
    const failures: string[] = [];
    const fail = (message: string) => {
      if (failures.length < 20) failures.push(message);
      else if (failures.length === 20) failures.push('… (more failures not shown)');
    };
    const storedOrders = new Map(
      (await this.scan(tables.orders)).map((item) => [String(item.outTradeNo), item] as const),
    );
    const storedUsers = new Map(
      (await this.scan(tables.users)).map((item) => [String(item.id), item] as const),
    );

    const paidVia: Record<string, number> = {};
    const daysByUser = new Map<string, number[]>();
    let paidOrders = 0;
    for (const expected of expectedOrders) {
      const stored = storedOrders.get(expected.outTradeNo);
      if (!stored) {
        fail(`INV-1 order ${expected.outTradeNo} is missing`);
        continue;
      }
      const status = String(stored.status);
      if (expected.paid) {
        if (status !== 'PAID') fail(`INV-1 order ${expected.outTradeNo} was paid but is ${status}`);
        else if (expected.transactionId && stored.transactionId !== expected.transactionId) {
          fail(`INV-1 order ${expected.outTradeNo} PAID with transaction ${String(stored.transactionId)}`);
        }
      } else if (status !== 'PENDING') {
        fail(`INV-1 order ${expected.outTradeNo} was never paid but is ${status}`);
      }
      if (status === 'PAID') {
        paidOrders++;
        const via = String(stored.paidVia ?? 'unknown');
        paidVia[via] = (paidVia[via] ?? 0) + 1;
        const plan = app.findPlan(String(stored.planId));
        if (!plan) fail(`order ${expected.outTradeNo} has unknown plan ${String(stored.planId)}`);
        const days = daysByUser.get(String(stored.userId)) ?? [];
        days.push(plan?.days ?? 0);
        daysByUser.set(String(stored.userId), days);
      }
    }
    const expectedNos = new Set(expectedOrders.map((order) => order.outTradeNo));
    for (const outTradeNo of storedOrders.keys()) {
      if (!expectedNos.has(outTradeNo)) {
        fail(`INV-1 unexpected order ${outTradeNo} in the table`);
      }
    }

    let credits = 0;
    const now = new Date();
    for (const expected of expectedUsers) {
      const stored = storedUsers.get(expected.id);
      if (!stored) {
        fail(`user ${expected.id} is missing`);
        continue;
      }
      const days = daysByUser.get(expected.id) ?? [];
      const version = Number(stored.version ?? 0);
      const userCredits = version - expected.startVersion;
      credits += userCredits;
      if (userCredits !== days.length) {
        fail(
          `INV-1 user ${expected.id}: ${userCredits} credits (version ${version}) for ${days.length} PAID orders`,
        );
      }
      if (expected.start === undefined) continue;
      // Both folds start from a future end, so max(now, end) is always the end: order must not matter.
      const fold = (sequence: number[]) =>
        sequence.reduce<string>((end, m) => app.extendMembership(end, now, m), expected.start as string);
      const inOrder = fold(days);
      const shuffled = fold(shuffle([...days], random));
      if (inOrder !== shuffled) {
        fail(
          `INV-2 setup: membership arithmetic is order-dependent from ${expected.start} (${inOrder} vs ${shuffled})`,
        );
      }
      const actual = app.toUserRecord(stored)?.membershipExpiredAt;
      if (actual !== inOrder) {
        fail(
          `INV-2 user ${expected.id}: membership ends ${actual}, expected ${inOrder} (${days.length} credits)`,
        );
      }
      if (days.length > 0 && stored.role !== 1)
        fail(`INV-2 user ${expected.id}: role ${String(stored.role)}, expected 1`);
    }
    return { failures, paidOrders, credits, paidVia };
  }

  destroy(): void {
    this.client.destroy();
  }
}
