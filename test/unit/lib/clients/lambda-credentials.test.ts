import { describe, expect, it } from 'vitest';
import { defaultProvider } from '#lib/clients/lambda-credentials';
import { rejection } from '#test/helpers/outcomes';

describe('defaultProvider (the Lambda bundles’ credentials)', () => {
  it('returns the key id, secret and session token Lambda puts in the environment', async () => {
    // Prepare
    const env = {
      AWS_ACCESS_KEY_ID: 'ASIAEXAMPLE',
      AWS_SECRET_ACCESS_KEY: 'example-secret',
      AWS_SESSION_TOKEN: 'example-token',
    };

    // Act
    const credentials = await defaultProvider(undefined, env)();

    // Assess
    expect(credentials).toEqual({
      accessKeyId: 'ASIAEXAMPLE',
      secretAccessKey: 'example-secret',
      sessionToken: 'example-token',
    });
  });

  it('reads the environment on every call and carries AWS_CREDENTIAL_EXPIRATION as a Date', async () => {
    // Prepare
    const env: NodeJS.ProcessEnv = {};
    const provider = defaultProvider({ logger: console }, env);
    Object.assign(env, {
      AWS_ACCESS_KEY_ID: 'AKIAEXAMPLE',
      AWS_SECRET_ACCESS_KEY: 'example-secret',
      AWS_CREDENTIAL_EXPIRATION: '2026-11-30T06:00:00Z',
    });

    // Act
    const credentials = await provider();

    // Assess
    expect(credentials).toEqual({
      accessKeyId: 'AKIAEXAMPLE',
      secretAccessKey: 'example-secret',
      expiration: new Date('2026-11-30T06:00:00Z'),
    });
  });

  it('rejects naming the variables, never a value, when the secret is missing', async () => {
    // Act
    const error = await rejection(defaultProvider(undefined, { AWS_ACCESS_KEY_ID: 'AKIAEXAMPLE' })());

    // Assess
    expect((error as Error).message).toMatch(/AWS_SECRET_ACCESS_KEY/);
    expect((error as Error).message).not.toMatch(/AKIAEXAMPLE/);
  });
});
