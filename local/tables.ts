import {
  CreateTableCommand,
  type CreateTableCommandInput,
  DeleteTableCommand,
  DynamoDBClient,
  ListTablesCommand,
  waitUntilTableExists,
} from '@aws-sdk/client-dynamodb';
import { readServerlessYml } from './serverless-routes';

interface TableResource {
  Type: string;
  Properties: Record<string, unknown>;
}

/**
 * The DynamoDB tables as serverless.yml deploys them (one source of truth), keyed by logical id
 * (UsersTable, OrdersTable). CloudFormation-only properties are dropped; names come from `names`.
 */
export function tableDefinitions(names: Record<string, string>): CreateTableCommandInput[] {
  // `resources` is a list of fragments; the tables are in the one with `Resources`.
  const fragments: { Resources?: Record<string, TableResource> }[] = [
    readServerlessYml().resources ?? [],
  ].flat();
  const resources = Object.assign({}, ...fragments.map((fragment) => fragment?.Resources ?? {}));
  return Object.entries(resources as Record<string, TableResource>)
    .filter(([, resource]) => resource.Type === 'AWS::DynamoDB::Table')
    .map(([logicalId, { Properties: p }]) => {
      const TableName = names[logicalId];
      if (!TableName) throw new Error(`no local name for table ${logicalId}`);
      return {
        TableName,
        BillingMode: 'PAY_PER_REQUEST',
        AttributeDefinitions: p.AttributeDefinitions,
        KeySchema: p.KeySchema,
        GlobalSecondaryIndexes: p.GlobalSecondaryIndexes,
      } as CreateTableCommandInput;
    });
}

/** A DynamoDB client for DynamoDB Local at `endpoint`. */
export function localDynamo(endpoint: string): DynamoDBClient {
  return new DynamoDBClient({
    endpoint,
    region: 'localhost',
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
  });
}

/** Creates the tables that do not exist yet (or recreates them all when `fresh`). */
export async function createTables(
  endpoint: string,
  names: Record<string, string>,
  fresh = false,
): Promise<void> {
  const client = localDynamo(endpoint);
  const { TableNames = [] } = await client.send(new ListTablesCommand({}));
  for (const table of tableDefinitions(names)) {
    const name = table.TableName as string;
    if (TableNames.includes(name)) {
      if (!fresh) continue;
      await client.send(new DeleteTableCommand({ TableName: name }));
    }
    await client.send(new CreateTableCommand(table));
    await waitUntilTableExists({ client, maxWaitTime: 30 }, { TableName: name });
  }
  client.destroy();
}

/** Waits until something answers HTTP at `url` (any status), or throws after `timeoutMs`. */
export async function waitForHttp(url: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      await fetch(url, { signal: AbortSignal.timeout(1000) });
      return;
    } catch {
      if (Date.now() > deadline) throw new Error(`${url} did not answer within ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 250));
    }
  }
}
