import * as v from 'valibot';
import { describe, expect, it } from 'vitest';
import { ValidationError } from '#lib/errors';
import { errorToResponse } from '#lib/http';
import { CreatePaymentBody } from '#lib/payments/orders';
import { SignInBody } from '#lib/users';
import { INVALID_INPUT_MESSAGE, validate } from '#lib/validation';

function refusal(schema: v.GenericSchema, input: unknown): ValidationError {
  try {
    validate(schema, input);
  } catch (error) {
    expect(error).toBeInstanceOf(ValidationError);
    return error as ValidationError;
  }
  throw new Error('expected a ValidationError');
}

describe('validate', () => {
  it('answers our own sentence, never valibot text, for a schema without a message', () => {
    // Act
    const error = refusal(CreatePaymentBody, { outTradeNo: '../../etc' });

    // Assess
    expect(error.message).toBe(INVALID_INPUT_MESSAGE);
    expect(error.errors).toEqual([{ field: 'outTradeNo', code: 'INVALID_FORMAT' }]);
  });

  it('names a missing field', () => {
    // Act
    const error = refusal(SignInBody, {});

    // Assess
    expect(error.message).toBe('缺少参数 code');
    expect(error.errors).toEqual([{ field: 'code', code: 'REQUIRED' }]);
  });

  it('keeps the schema’s own Chinese message and maps issue types to stable codes', () => {
    // Arrange
    const schema = v.object({
      a: v.pipe(v.string(), v.maxLength(2, '太长了')),
      b: v.pipe(v.string(), v.minLength(3)),
      c: v.picklist([1, 2]),
      d: v.string(),
    });

    // Act
    const error = refusal(schema, { a: 'xyz', b: 'x', c: 3, d: 1 });

    // Assess
    expect(error.message).toBe('太长了');
    expect(error.errors).toEqual([
      { field: 'a', code: 'TOO_LONG' },
      { field: 'b', code: 'TOO_SHORT' },
      { field: 'c', code: 'NOT_ALLOWED' },
      { field: 'd', code: 'INVALID_TYPE' },
    ]);
  });

  it('calls a body that is not an object `body`', () => {
    expect(refusal(SignInBody, 'abc').errors).toEqual([{ field: 'body', code: 'INVALID_TYPE' }]);
  });

  it('puts errors into the failure envelope', () => {
    // Act
    const response = errorToResponse(refusal(SignInBody, { code: '' }));

    // Assess
    expect(response.statusCode).toBe(400);
    expect(JSON.parse(response.body ?? '')).toEqual({
      success: false,
      message: '请提供微信登录 code',
      code: 'VALIDATION_ERROR',
      errors: [{ field: 'code', code: 'TOO_SHORT' }],
    });
  });
});
