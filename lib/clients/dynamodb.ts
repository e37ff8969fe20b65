import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { envValue } from '#lib/env';

let client: DynamoDBDocumentClient | undefined;

/**
 * The one DynamoDB document client (module singleton), built on first use so that importing a module never
 * reads the environment. Timeouts keep a notify inside WeChat's 5 s window; DYNAMODB_ENDPOINT points it at
 * DynamoDB Local.
 */
export function dynamo(): DynamoDBDocumentClient {
  if (!client) {
    const endpoint = envValue('DYNAMODB_ENDPOINT') || undefined;
    client = DynamoDBDocumentClient.from(
      new DynamoDBClient({
        endpoint,
        ...(endpoint
          ? { region: 'localhost', credentials: { accessKeyId: 'local', secretAccessKey: 'local' } }
          : {}),
        maxAttempts: 3,
        requestHandler: new NodeHttpHandler({ connectionTimeout: 1000, requestTimeout: 2000 }),
      }),
      { marshallOptions: { removeUndefinedValues: true } },
    );
  }
  return client;
}
