import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { openApiDocument } from '#local/openapi';

/**
 * Holds responses to the OpenAPI spec (local/openapi.ts): `checkResponse` finds the operation for a method and
 * concrete path, and validates a JSON body against the schema of its status (or `default`) with ajv. A status
 * the spec does not list, or a body that does not match, throws with the reasons.
 */

const document = openApiDocument();
const ajv = new Ajv2020({ allErrors: true, strict: false });
addFormats.default(ajv);
ajv.addSchema(document, 'openapi.json');

type Operation = { responses: Record<string, { content?: Record<string, unknown> }> };

const templates = Object.keys(document.paths).map((template) => ({
  template,
  pattern: new RegExp(`^${template.replace(/\{[^}]+\}/g, '[^/]+')}$`),
}));

/** The spec's path template for a concrete path (`/wechat/orders/M123` → `/wechat/orders/{outTradeNo}`). */
export function specPath(path: string): string | undefined {
  return templates.find(({ pattern }) => pattern.test(path))?.template;
}

const pointer = (...parts: string[]) =>
  parts.map((p) => p.replaceAll('~', '~0').replaceAll('/', '~1')).join('/');

/** Validates one JSON response against the spec; throws when the route, status or body is not as declared. */
export function checkResponse(method: string, path: string, status: number, body: unknown): void {
  const template = specPath(path.split('?')[0] ?? '');
  const verb = method.toLowerCase();
  const paths = document.paths as Record<string, Record<string, Operation>>;
  const operation = template ? paths[template]?.[verb] : undefined;
  if (!template || !operation) throw new Error(`OpenAPI: no operation ${method} ${path}`);
  const key = String(status) in operation.responses ? String(status) : 'default';
  const response = operation.responses[key];
  if (!response) throw new Error(`OpenAPI: ${method} ${template} does not declare status ${status}`);
  if (!response.content?.['application/json']) return;
  const ref = `openapi.json#/${pointer('paths', template, verb, 'responses', key, 'content', 'application/json', 'schema')}`;
  const validate = ajv.getSchema(ref) ?? ajv.compile({ $ref: ref });
  if (!validate(body)) {
    throw new Error(
      `OpenAPI: ${method} ${template} ${status} does not match the spec: ${ajv.errorsText(validate.errors)}\n` +
        JSON.stringify(body).slice(0, 500),
    );
  }
}
