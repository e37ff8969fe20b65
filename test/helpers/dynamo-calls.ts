import { dynamo } from '../../lib/clients/dynamodb';

const WRITE_COMMANDS = new Set([
  'PutCommand',
  'UpdateCommand',
  'DeleteCommand',
  'TransactWriteCommand',
  'BatchWriteCommand',
  'PutItemCommand',
  'UpdateItemCommand',
  'DeleteItemCommand',
  'TransactWriteItemsCommand',
  'BatchWriteItemCommand',
]);

/**
 * Records every command the shared DynamoDB client sends (a middleware on the real client, so it works
 * against DynamoDB Local). `writes()` is what INV-4 ("reject ⇒ inert") counts.
 */
export function recordDynamoCalls() {
  const names: string[] = [];
  const name = `testCallRecorder${Math.random().toString(36).slice(2)}`;
  dynamo.middlewareStack.add(
    (next, context) => async (args) => {
      names.push(String(context.commandName));
      return next(args);
    },
    { step: 'initialize', name },
  );
  return {
    all: () => [...names],
    writes: () => names.filter((command) => WRITE_COMMANDS.has(command)),
    clear: () => {
      names.length = 0;
    },
    stop: () => dynamo.middlewareStack.remove(name),
  };
}
