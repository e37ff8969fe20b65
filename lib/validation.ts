import * as v from 'valibot';
import { BadRequestError } from './errors';

/** Validates input against a valibot schema; throws BadRequestError VALIDATION_ERROR (400) with the first issue. */
export function validate<S extends v.GenericSchema>(schema: S, input: unknown): v.InferOutput<S> {
  const result = v.safeParse(schema, input);
  if (!result.success) {
    const issue = result.issues[0];
    throw new BadRequestError(
      issue?.message ?? '请求参数错误',
      'VALIDATION_ERROR',
      issue ? (v.getDotPath(issue) ?? undefined) : undefined,
    );
  }
  return result.output;
}
