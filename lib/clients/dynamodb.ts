import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { envValue } from '#lib/config';

const endpoint = envValue('DYNAMODB_ENDPOINT') || undefined;

/**
 * The one DynamoDB client (module singleton). Timeouts keep a notify inside WeChat's 5 s window;
 * DYNAMODB_ENDPOINT points it at DynamoDB Local.
 */
export const dynamo = DynamoDBDocumentClient.from(
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
