/**
 * AWS credentials from the environment, as Lambda provides them (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
 * AWS_SESSION_TOKEN). The Lambda bundles use this module in place of `@aws-sdk/credential-provider-node`
 * (serverless.yml, custom.esbuild.alias), so they carry neither the default chain's SSO, INI, process,
 * web-identity and instance-metadata providers nor the STS/SSO clients those load (about 100 KB of every
 * bundle). Runs from source (tsx, vitest, the deploy scripts) resolve the SDK's own chain; DynamoDB Local is
 * given explicit credentials by lib/clients/dynamodb.ts either way.
 */

/** An AWS credential identity (the SDK's AwsCredentialIdentity). */
export interface EnvCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
  expiration?: Date;
}

/**
 * The SDK's `credentialDefaultProvider` signature (the init argument is ignored): a provider that reads the
 * credentials from `env` on every call (Lambda sets them before the handler runs), with the expiration of
 * AWS_CREDENTIAL_EXPIRATION (ISO 8601) when set. Rejects with an Error naming the missing variables (never
 * their values) when the key id or the secret is absent.
 */
export function defaultProvider(
  _init?: unknown,
  env: NodeJS.ProcessEnv = process.env,
): () => Promise<EnvCredentials> {
  return async () => {
    const accessKeyId = env.AWS_ACCESS_KEY_ID;
    const secretAccessKey = env.AWS_SECRET_ACCESS_KEY;
    if (!accessKeyId || !secretAccessKey) {
      throw new Error('AWS credentials missing: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY must be set');
    }
    const credentials: EnvCredentials = { accessKeyId, secretAccessKey };
    if (env.AWS_SESSION_TOKEN) credentials.sessionToken = env.AWS_SESSION_TOKEN;
    if (env.AWS_CREDENTIAL_EXPIRATION) credentials.expiration = new Date(env.AWS_CREDENTIAL_EXPIRATION);
    return credentials;
  };
}
