import type { APIGatewayProxyEventV2, Context } from 'aws-lambda';

export interface HttpEventInput {
  method?: string;
  path?: string;
  headers?: Record<string, string>;
  body?: string | object;
  token?: string;
  pathParameters?: Record<string, string>;
  queryStringParameters?: Record<string, string>;
  isBase64Encoded?: boolean;
  sourceIp?: string;
}

/** An API Gateway HTTP API (payload 2.0) event, as serverless-offline and AWS deliver it. */
export function httpEvent(input: HttpEventInput = {}): APIGatewayProxyEventV2 {
  const method = input.method ?? 'GET';
  const path = input.path ?? '/';
  const headers: Record<string, string> = { ...(input.headers ?? {}) };
  let body: string | undefined;
  if (input.body !== undefined) {
    body = typeof input.body === 'string' ? input.body : JSON.stringify(input.body);
    if (!Object.keys(headers).some((h) => h.toLowerCase() === 'content-type')) {
      headers['content-type'] = 'application/json';
    }
  }
  if (input.token) headers.authorization = `Bearer ${input.token}`;
  return {
    version: '2.0',
    routeKey: `${method} ${path}`,
    rawPath: path,
    rawQueryString: new URLSearchParams(input.queryStringParameters ?? {}).toString(),
    headers,
    queryStringParameters: input.queryStringParameters,
    pathParameters: input.pathParameters,
    isBase64Encoded: input.isBase64Encoded ?? false,
    body,
    requestContext: {
      accountId: '123456789012',
      apiId: 'local',
      domainName: 'localhost',
      domainPrefix: 'localhost',
      requestId: `req-${Math.random().toString(36).slice(2)}`,
      routeKey: `${method} ${path}`,
      stage: '$default',
      time: new Date().toUTCString(),
      timeEpoch: Date.now(),
      http: {
        method,
        path,
        protocol: 'HTTP/1.1',
        sourceIp: input.sourceIp ?? '203.0.113.7',
        userAgent: 'vitest',
      },
    },
  };
}

/** A fixed Lambda context. It has no getRemainingTimeInMillis, so middy arms no early-timeout timer. */
export const context = {
  callbackWaitsForEmptyEventLoop: false,
  functionName: 'test',
  functionVersion: '$LATEST',
  invokedFunctionArn: 'arn:aws:lambda:localhost:123456789012:function:test',
  memoryLimitInMB: '512',
  awsRequestId: 'test-request',
  logGroupName: '/aws/lambda/test',
  logStreamName: 'test',
} as unknown as Context;

/** Parses a handler's JSON envelope. */
export function envelope(result: { body?: string }): {
  success: boolean;
  message: string;
  code?: string;
  // biome-ignore lint/suspicious/noExplicitAny: tests read arbitrary response data.
  data?: Record<string, any>;
} {
  return JSON.parse(result.body ?? '{}');
}
