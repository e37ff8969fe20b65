import { allCustomMatcherWithAliases } from 'aws-sdk-client-mock-vitest';
import type {} from 'aws-sdk-client-mock-vitest/extend';
import { afterEach, expect } from 'vitest';
import { installLogSink, takeLeaks } from './helpers/log-sink';
import { applyTestEnv } from './test-env';

export { TEST_DYNAMODB_PORT, TEST_SANDBOX_PORT } from './test-env';

applyTestEnv();
expect.extend(allCustomMatcherWithAliases);
installLogSink();

afterEach(() => {
  const leaks = takeLeaks();
  if (leaks.length > 0) throw new Error(`a log line leaked a secret (INV-6):\n${leaks.join('\n')}`);
});
