/**
 * The floor of `npm run bench:init` (issue 12): a minimal handler that imports only DynamoDBDocumentClient,
 * jose's jwtVerify, fast-xml-parser's XMLParser and @middy/core, and constructs each once at module level.
 * bench/init.ts bundles it with esbuild (minified ESM for Node 24, as serverless.yml bundles the functions).
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, GetCommand } from '@aws-sdk/lib-dynamodb';
import middy from '@middy/core';
import { XMLParser } from 'fast-xml-parser';
import { jwtVerify } from 'jose';

const dynamo = DynamoDBDocumentClient.from(new DynamoDBClient({}));
const parser = new XMLParser();
const key = new TextEncoder().encode(process.env.JWT_SECRET ?? 'a-floor-secret-of-at-least-32-bytes');

export const handler = middy(async (event: { token: string; xml: string }) => {
  const { payload } = await jwtVerify(event.token, key);
  const { id } = parser.parse(event.xml).xml;
  return dynamo.send(new GetCommand({ TableName: 'floor', Key: { id, sub: payload.sub } }));
});
