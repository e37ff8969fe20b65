/**
 * The raw floor of a notify storm: only the DynamoDB work any correct notify handler must do, sent with the
 * SDK's defaults and nothing of ours (no HTTP event, XML, signature, deadline or retry budget): a strongly
 * consistent GetItem of the order and, for a PENDING one, one TransactWriteItems (order PENDING → PAID on
 * its status; owner version + 1 and membership end + plan days in place). Run on the same DynamoDB Local with
 * the same deliveries shape and concurrency as the app's storm, it shows what the emulator alone costs on
 * this machine, so a latency target the emulator cannot meet is stated as a same-run ratio (issue 12).
 */
import { TransactionCanceledException } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, GetCommand, TransactWriteCommand } from '@aws-sdk/lib-dynamodb';
import type { Population } from '#load/harness';
import { runPool, shuffle } from '#load/util';
import { localDynamo } from '#local/tables';

const DAY_MS = 86_400_000;

export interface RawStorm {
  wallMs: number;
  latencies: Float64Array;
  /** Orders moved to PAID (each exactly once: a second transaction fails the order's status condition). */
  credits: number;
  /** Deliveries that took longer than the app's 3 s settle budget. */
  overBudget: number;
}

/** Delivers every order `duplicates` times, shuffled, `concurrency` in flight, through the raw floor. */
export async function rawStorm(
  endpoint: string,
  population: Population,
  duplicates: number,
  concurrency: number,
  random: () => number,
): Promise<RawStorm> {
  const client = DynamoDBDocumentClient.from(localDynamo(endpoint));
  const { tables } = population;
  const deliveries = shuffle(
    population.orders.flatMap((order) => Array.from({ length: duplicates }, () => order)),
    random,
  );
  let credits = 0;
  try {
    const started = performance.now();
    const latencies = await runPool(deliveries, concurrency, async (order) => {
      const { Item } = await client.send(
        new GetCommand({
          TableName: tables.orders,
          Key: { outTradeNo: order.outTradeNo },
          ConsistentRead: true,
        }),
      );
      if (Item?.status !== 'PENDING') return;
      try {
        await client.send(
          new TransactWriteCommand({
            TransactItems: [
              {
                Update: {
                  TableName: tables.orders,
                  Key: { outTradeNo: order.outTradeNo },
                  UpdateExpression: 'SET #s = :paid, transactionId = :tx',
                  ConditionExpression: '#s = :pending',
                  ExpressionAttributeNames: { '#s': 'status' },
                  ExpressionAttributeValues: {
                    ':paid': 'PAID',
                    ':pending': 'PENDING',
                    ':tx': order.transactionId,
                  },
                },
              },
              {
                Update: {
                  TableName: tables.users,
                  Key: { id: order.userId },
                  UpdateExpression: 'SET membershipEndMs = membershipEndMs + :d ADD version :one',
                  ExpressionAttributeValues: { ':d': order.plan.days * DAY_MS, ':one': 1 },
                },
              },
            ],
          }),
        );
        credits++;
      } catch (error) {
        // Another delivery of the order committed first (or conflicted): what a duplicate acknowledges.
        if (!(error instanceof TransactionCanceledException)) throw error;
      }
    });
    const wallMs = performance.now() - started;
    return { wallMs, latencies, credits, overBudget: latencies.filter((ms) => ms > 3000).length };
  } finally {
    client.destroy();
  }
}
