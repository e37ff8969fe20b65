import { GetParametersCommand, SSMClient } from '@aws-sdk/client-ssm';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { attemptBudget } from '#lib/deadline';

/** SSM answers at most 10 names per GetParameters call. */
const BATCH = 10;

export interface SecureParameters {
  /** Decrypted values of the SecureString parameters found, by parameter name. */
  values: Record<string, string>;
  /** Names SSM does not have (or did not return). */
  missing: string[];
  /** Names that exist but are not SecureString (`String`, `StringList`): their values are dropped. */
  notSecure: string[];
}

/** Raised when SSM has not answered within the deadline (a hung endpoint must not eat the Lambda's time). */
export class SsmDeadlineError extends Error {
  override readonly name = 'SsmDeadlineError';
  constructor(readonly timeoutMs: number) {
    super(`SSM did not answer within ${timeoutMs} ms`);
  }
}

let client: SSMClient | undefined;

/**
 * The SSM client (module singleton, built on first use). The SDK's default handler has no timeouts, so an
 * endpoint that accepts the connection and never answers would hold a cold start until the Lambda dies:
 * connect within 1 s, and `throwOnRequestTimeout` turns the per-request timeout (passed per call) into an
 * error (without it @smithy/node-http-handler only logs a warning).
 */
function ssm(): SSMClient {
  client ??= new SSMClient({
    maxAttempts: 3,
    requestHandler: new NodeHttpHandler({ connectionTimeout: 1000, throwOnRequestTimeout: true }),
  });
  return client;
}

/**
 * Reads SecureString parameters with decryption in parallel GetParameters batches of 10, all within
 * `timeoutMs` or the time the invocation has left (lib/deadline), whichever ends first (each attempt gets
 * at most half of it, so one hung attempt leaves room for a retry). Rejects with SsmDeadlineError on the
 * deadline, or the SDK's error (ThrottlingException, AccessDeniedException …).
 */
export async function getSecureParameters(
  names: readonly string[],
  { timeoutMs: cap }: { timeoutMs: number },
): Promise<SecureParameters> {
  const timeoutMs = Math.floor(attemptBudget(cap));
  if (timeoutMs < 1) throw new SsmDeadlineError(0);
  const deadline = AbortSignal.timeout(timeoutMs);
  const batches: string[][] = [];
  for (let i = 0; i < names.length; i += BATCH) batches.push(names.slice(i, i + BATCH));
  const calls = Promise.all(
    batches.map((Names) =>
      ssm().send(new GetParametersCommand({ Names, WithDecryption: true }), {
        abortSignal: deadline,
        requestTimeout: Math.max(1, Math.floor(timeoutMs / 2)),
      }),
    ),
  );
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new SsmDeadlineError(timeoutMs)), timeoutMs);
  });
  try {
    const answers = await Promise.race([calls, expired]);
    const result: SecureParameters = { values: {}, missing: [], notSecure: [] };
    for (const parameter of answers.flatMap((answer) => answer.Parameters ?? [])) {
      if (!parameter.Name || parameter.Value === undefined) continue;
      if (parameter.Type === 'SecureString') result.values[parameter.Name] = parameter.Value;
      else result.notSecure.push(parameter.Name);
    }
    const found = new Set([...Object.keys(result.values), ...result.notSecure]);
    result.missing = names.filter((name) => !found.has(name));
    return result;
  } catch (error) {
    throw deadline.aborted ? new SsmDeadlineError(timeoutMs) : error;
  } finally {
    clearTimeout(timer);
  }
}
