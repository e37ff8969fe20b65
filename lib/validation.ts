import * as v from 'valibot';
import { type FieldError, ValidationError } from './errors';

/** The sentence a client reads when a schema gave no message of its own: no library text reaches a client. */
export const INVALID_INPUT_MESSAGE = '请求参数不正确';

/** Stable field error codes by valibot issue type; anything else is INVALID_VALUE. */
const FIELD_CODES: Record<string, string> = {
  string: 'INVALID_TYPE',
  number: 'INVALID_TYPE',
  boolean: 'INVALID_TYPE',
  object: 'INVALID_TYPE',
  strict_object: 'INVALID_TYPE',
  array: 'INVALID_TYPE',
  min_length: 'TOO_SHORT',
  max_length: 'TOO_LONG',
  min_graphemes: 'TOO_SHORT',
  max_graphemes: 'TOO_LONG',
  regex: 'INVALID_FORMAT',
  url: 'INVALID_FORMAT',
  iso_timestamp: 'INVALID_FORMAT',
  picklist: 'NOT_ALLOWED',
};

/** The `{field, code}` of one issue: a missing key is REQUIRED; `body` names the body itself. */
function fieldError(issue: v.BaseIssue<unknown>): FieldError {
  const field = v.getDotPath(issue) ?? 'body';
  if (issue.kind === 'schema' && issue.input === undefined && field !== 'body')
    return { field, code: 'REQUIRED' };
  return { field, code: FIELD_CODES[issue.type] ?? 'INVALID_VALUE' };
}

/**
 * Validates input against a valibot schema; throws ValidationError (400 VALIDATION_ERROR) whose message is the
 * first issue's own Chinese message (or INVALID_INPUT_MESSAGE) and whose `errors` lists each refused field once
 * (its first failing check).
 */
export function validate<S extends v.GenericSchema>(schema: S, input: unknown): v.InferOutput<S> {
  const result = v.safeParse(schema, input, { message: INVALID_INPUT_MESSAGE, abortPipeEarly: true });
  if (!result.success) {
    const errors = result.issues.map(fieldError);
    const unique = errors.filter(
      (e, i) => errors.findIndex((o) => o.field === e.field && o.code === e.code) === i,
    );
    const [first] = unique;
    const own = result.issues[0]?.message;
    // A missing field without a message of its own says which field.
    const message =
      first?.code === 'REQUIRED' && own === INVALID_INPUT_MESSAGE
        ? `缺少参数 ${first.field}`
        : (own ?? INVALID_INPUT_MESSAGE);
    throw new ValidationError(message, unique);
  }
  return result.output;
}
