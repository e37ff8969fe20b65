import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { DeadlineExceededError, deadlineSignal, timeLeft } from '#lib/deadline';
import { envValue } from '#lib/env';

/** One attempt's cap, milliseconds (DynamoDB answers a GetItem or a small transaction in single-digit ms). */
export const DYNAMO_ATTEMPT_TIMEOUT_MS = 2000;
/** Attempts per call (the SDK's retry: transient errors, throttling). */
export const DYNAMO_MAX_ATTEMPTS = 3;
/** An attempt is not started with less time than this left before the invocation's deadline, ms. */
export const DYNAMO_MIN_ATTEMPT_MS = 50;

/**
 * The node handler with the invocation's deadline: each attempt's timeout is min(DYNAMO_ATTEMPT_TIMEOUT_MS,
 * time left), and an attempt that cannot start in time fails with DeadlineExceededError (not retried).
 * `throwOnRequestTimeout` makes the timeout an error: without it @smithy/node-http-handler only logs a warning.
 */
class DeadlineHttpHandler extends NodeHttpHandler {
  override handle(
    request: Parameters<NodeHttpHandler['handle']>[0],
    options: Parameters<NodeHttpHandler['handle']>[1] = {},
  ) {
    const left = timeLeft();
    if (left < DYNAMO_MIN_ATTEMPT_MS) return Promise.reject(new DeadlineExceededError('DynamoDB'));
    const requestTimeout = Math.floor(Math.min(options.requestTimeout ?? DYNAMO_ATTEMPT_TIMEOUT_MS, left));
    return super.handle(request, { ...options, requestTimeout });
  }
}

let client: DynamoDBDocumentClient | undefined;

/**
 * The one DynamoDB document client (module singleton), built on first use so that importing a module never
 * reads the environment. Every call ends before the invocation's deadline (lib/deadline): each attempt is
 * bounded by the time left, and the back-off between attempts is cut at the deadline. Without a deadline, a
 * stalled call fails after DYNAMO_MAX_ATTEMPTS × DYNAMO_ATTEMPT_TIMEOUT_MS plus back-off. DYNAMODB_ENDPOINT
 * points it at DynamoDB Local.
 */
export function dynamo(): DynamoDBDocumentClient {
  if (!client) {
    const endpoint = envValue('DYNAMODB_ENDPOINT') || undefined;
    const base = new DynamoDBClient({
      endpoint,
      ...(endpoint
        ? { region: 'localhost', credentials: { accessKeyId: 'local', secretAccessKey: 'local' } }
        : {}),
      maxAttempts: DYNAMO_MAX_ATTEMPTS,
      requestHandler: new DeadlineHttpHandler({
        connectionTimeout: 1000,
        requestTimeout: DYNAMO_ATTEMPT_TIMEOUT_MS,
        throwOnRequestTimeout: true,
      }),
    });
    // The retry middleware sleeps between attempts racing the call's abort signal: give every call the
    // invocation's deadline as that signal unless the caller passed one.
    base.middlewareStack.add(
      (next, context) => (args) => {
        const smithy = (context as { __smithy_context?: { abortSignal?: AbortSignal } }).__smithy_context;
        const signal = deadlineSignal();
        if (smithy && signal && !smithy.abortSignal) smithy.abortSignal = signal;
        return next(args);
      },
      { step: 'initialize', name: 'invocationDeadline' },
    );
    client = DynamoDBDocumentClient.from(base, { marshallOptions: { removeUndefinedValues: true } });
  }
  return client;
}
