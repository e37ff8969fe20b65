import { describe, expect, it } from 'vitest';
import { openApiDocument } from '#local/openapi';
import { serverlessRoutes } from '#local/serverless-routes';
import { checkResponse } from '#test/helpers/openapi';

/** The spec and serverless.yml name the same routes; the validator used by the stack and integration suites bites. */

const routeKeys = (routes: { method: string; path: string }[]) =>
  routes.map((r) => `${r.method} ${r.path}`).sort();

describe('OpenAPI spec', () => {
  it('describes every route in serverless.yml, and nothing else', () => {
    // Arrange
    const spec = Object.entries(openApiDocument().paths).flatMap(([path, operations]) =>
      Object.keys(operations).map((method) => ({ method: method.toUpperCase(), path })),
    );

    // Assess
    expect(routeKeys(spec)).toEqual(routeKeys(serverlessRoutes()));
  });

  it('gives every operation an operationId and a 2xx response (a 302 for the browser redirects of H5 OAuth)', () => {
    for (const operations of Object.values(openApiDocument().paths)) {
      for (const operation of Object.values(operations) as { operationId?: string; responses: object }[]) {
        expect(operation.operationId).toMatch(/^[a-z][A-Za-z]+$/);
        expect(Object.keys(operation.responses).some((status) => /^(2..|302)$/.test(status))).toBe(true);
      }
    }
  });

  it('accepts a response as declared and refuses an undeclared field, status or route', () => {
    // Arrange
    const plans = {
      success: true,
      message: 'ok',
      data: { plans: [{ id: 'm', name: '月', months: 1, days: 31, totalFee: 1 }] },
    };
    const failure = { success: false, message: '请先登录', code: 'UNAUTHORIZED' };

    // Act / Assess
    expect(() => checkResponse('GET', '/wechat/plans', 200, plans)).not.toThrow();
    expect(() => checkResponse('GET', '/wechat/me', 401, failure)).not.toThrow();
    expect(() =>
      checkResponse('GET', '/wechat/plans', 200, { ...plans, data: { plans: [{ id: 'm' }] } }),
    ).toThrow(/does not match/);
    expect(() => checkResponse('GET', '/wechat/me', 401, { ...failure, stack: 'Error: …' })).toThrow(
      /does not match/,
    );
    expect(() => checkResponse('GET', '/wechat/plans', 418, plans)).toThrow(/does not declare/);
    expect(() => checkResponse('DELETE', '/wechat/plans', 200, plans)).toThrow(/no operation/);
  });
});
