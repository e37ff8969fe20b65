import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { resolve } from 'node:path';
import { parseDocument } from 'yaml';

const ROOT = resolve(import.meta.dirname, '..');
const stage = createRequire(import.meta.url)('../deploy/stage.cjs') as { NOTIFY_EVENTS: unknown[] };

// biome-ignore lint/suspicious/noExplicitAny: serverless.yml is free-form YAML.
type Yaml = Record<string, any>;

/** serverless.yml as plain data; CloudFormation tags (!Sub, !Ref, …) are kept as their plain values. */
export function readServerlessYml(): Yaml {
  const keep = (value: unknown) => value;
  const tags = ['!Sub', '!Ref', '!GetAtt', '!Join'].map((tag) => ({ tag, resolve: keep }));
  return parseDocument(readFileSync(resolve(ROOT, 'serverless.yml'), 'utf8'), { customTags: tags }).toJS();
}

/** One HTTP route of serverless.yml: `GET /wechat/me` served by `functions/me.handler`. */
export interface ServerlessRoute {
  method: string;
  path: string;
  /** The function's name in serverless.yml. */
  name: string;
  /** Its module, `functions/me`. */
  module: string;
}

/**
 * Every httpApi route in serverless.yml, including those a function takes from a `${self:custom.X.…}` table (the
 * local-only notify route: every variant of the table counts).
 */
export function serverlessRoutes(): ServerlessRoute[] {
  const yml = readServerlessYml();
  const routes: ServerlessRoute[] = [];
  for (const [name, fn] of Object.entries<Yaml>(yml.functions ?? {})) {
    let events: unknown[] = Array.isArray(fn.events) ? fn.events : [];
    // payNotify's events come from the stage settings (deploy/stage.cjs): its route when served by the API.
    if (fn.events === '${self:custom.settings.notifyEvents}') events = stage.NOTIFY_EVENTS;
    for (const event of events as Yaml[]) {
      const api = event?.httpApi;
      if (!api) continue;
      const [method, path] = typeof api === 'string' ? api.split(' ') : [api.method, api.path];
      routes.push({
        method: String(method).toUpperCase(),
        path,
        name,
        module: fn.handler.replace(/\.\w+$/, ''),
      });
    }
  }
  return routes;
}
