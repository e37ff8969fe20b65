import { SECRET_NAMES } from '#lib/secrets';

/**
 * Checks on a packaged CloudFormation template that cfn-lint cannot make and moto cannot show (it skips
 * API Gateway v2). Returns the problems found, each naming the resource; empty when the template is fine.
 */

// biome-ignore lint/suspicious/noExplicitAny: CloudFormation JSON is walked generically.
type Json = any;
export interface Template {
  Resources: Record<
    string,
    { Type: string; Properties?: Json; DependsOn?: string | string[]; [key: string]: Json }
  >;
}

const MAX_NAME: Record<string, number> = { RoleName: 64, FunctionName: 64, PolicyName: 128 };
const REQUIRED_ENV = [
  'SERVICE_NAME',
  'STAGE',
  'USERS_TABLE',
  'ORDERS_TABLE',
  'WECHAT_APPID',
  'WECHAT_MCH_ID',
  'WECHAT_PAY_VERSION',
];

/** Logical ids a value refers to (Ref, Fn::GetAtt, ${Id} in Fn::Sub). */
function references(value: Json, into = new Set<string>()): Set<string> {
  if (Array.isArray(value)) for (const item of value) references(item, into);
  else if (value && typeof value === 'object') {
    for (const [key, inner] of Object.entries(value)) {
      if (key === 'Ref' && typeof inner === 'string') into.add(inner);
      else if (key === 'Fn::GetAtt') into.add(Array.isArray(inner) ? inner[0] : String(inner).split('.')[0]);
      else if (key === 'Fn::Sub') {
        const text = Array.isArray(inner) ? inner[0] : inner;
        for (const [, id] of String(text).matchAll(/\$\{([A-Za-z0-9]+)[.}]/g)) into.add(id as string);
        references(inner, into);
      } else references(inner, into);
    }
  }
  return into;
}

/** Every resource `id` waits for: DependsOn and references, transitively. */
export function dependencies(template: Template, id: string): Set<string> {
  const seen = new Set<string>();
  const visit = (current: string) => {
    const resource = template.Resources[current];
    if (!resource) return;
    const direct = [...[resource.DependsOn ?? []].flat(), ...references(resource.Properties)];
    for (const next of direct) {
      if (!seen.has(next) && next in template.Resources) {
        seen.add(next);
        visit(next);
      }
    }
  };
  visit(id);
  return seen;
}

/** The length of a name that may be an Fn::Join of strings and Ref AWS::Region. */
function nameLength(name: Json, region: string): number {
  if (typeof name === 'string') return name.length;
  const [separator, parts] = name?.['Fn::Join'] ?? ['', []];
  const resolved = (parts as Json[]).map((part) => (part?.Ref === 'AWS::Region' ? region : String(part)));
  return resolved.join(separator).length;
}

/** Functions that authenticate their callers themselves: WeChat's signature on a notify. */
const SIGNATURE_AUTHENTICATED = ['PayNotifyLambdaFunction'];
const WRITE_METHODS = /^(POST|PUT|PATCH|DELETE|ANY) /;

/** The logical id a value names through Ref or Fn::GetAtt, if any. */
function target(value: Json): string | undefined {
  if (typeof value?.Ref === 'string') return value.Ref;
  const getAtt = value?.['Fn::GetAtt'];
  return Array.isArray(getAtt) ? getAtt[0] : undefined;
}

export interface Route {
  id: string;
  key: string;
  authorization: string;
  /** The logical id of the Lambda function the route invokes. */
  fn?: string;
}

/** The HTTP API routes: key, authorization type (NONE when unset) and the function behind each. */
export function routes(template: Template): Route[] {
  return Object.entries(template.Resources)
    .filter(([, resource]) => resource.Type === 'AWS::ApiGatewayV2::Route')
    .map(([id, route]) => {
      const [, parts] = route.Properties?.Target?.['Fn::Join'] ?? [];
      const integration = template.Resources[target(Array.isArray(parts) ? parts[1] : undefined) ?? ''];
      return {
        id,
        key: String(route.Properties?.RouteKey),
        authorization: route.Properties?.AuthorizationType ?? 'NONE',
        fn: target(integration?.Properties?.IntegrationUri),
      };
    });
}

/**
 * Who may call what: every /admin/ route carries the IAM authorizer (no /admin/ route is unauthenticated);
 * an unauthenticated route that writes goes to the notify or to a function that checks a Bearer token
 * itself (it loads JWT_SECRET); a Function URL, or a public invoke permission, without IAM is payNotify's
 * only; the reconcile (and daily bill) functions run on an enabled schedule.
 */
export function accessProblems(template: Template): string[] {
  const problems: string[] = [];
  const resources = template.Resources;
  for (const route of routes(template)) {
    const path = route.key.split(' ')[1] ?? '';
    if (path.startsWith('/admin/') && route.authorization !== 'AWS_IAM') {
      problems.push(
        `${route.id}: ${route.key} is an admin route with AuthorizationType ${route.authorization}`,
      );
    }
    if (route.authorization !== 'NONE' || !WRITE_METHODS.test(route.key)) continue;
    const secrets = String(resources[route.fn ?? '']?.Properties?.Environment?.Variables?.SECRET_NAMES ?? '');
    const bearer = secrets.split(',').includes('JWT_SECRET');
    if (!bearer && !SIGNATURE_AUTHENTICATED.includes(route.fn ?? '')) {
      problems.push(
        `${route.id}: ${route.key} writes unauthenticated, and ${route.fn} checks no Bearer token`,
      );
    }
  }
  for (const [id, resource] of Object.entries(resources)) {
    const props = resource.Properties ?? {};
    const fn = target(resource.Type === 'AWS::Lambda::Url' ? props.TargetFunctionArn : props.FunctionName);
    const publicUrl = resource.Type === 'AWS::Lambda::Url' && props.AuthType !== 'AWS_IAM';
    const publicPermission = resource.Type === 'AWS::Lambda::Permission' && props.Principal === '*';
    if ((publicUrl || publicPermission) && !SIGNATURE_AUTHENTICATED.includes(fn ?? '')) {
      problems.push(`${id}: ${fn} is invocable by anyone (only the notify may be)`);
    }
  }
  // The reconciler and (when present) the daily bill run on an enabled schedule that may invoke them.
  for (const fn of ['ReconcileLambdaFunction', 'DailyBillLambdaFunction']) {
    const schedules = Object.entries(resources).filter(
      ([, resource]) =>
        resource.Type === 'AWS::Events::Rule' &&
        resource.Properties?.ScheduleExpression &&
        resource.Properties?.State !== 'DISABLED' &&
        (resource.Properties?.Targets ?? []).some((t: Json) => target(t.Arn) === fn),
    );
    const invokable = schedules.some(([rule]) =>
      Object.values(resources).some(
        (resource) =>
          resource.Type === 'AWS::Lambda::Permission' &&
          resource.Properties?.Principal === 'events.amazonaws.com' &&
          target(resource.Properties?.FunctionName) === fn &&
          target(resource.Properties?.SourceArn) === rule,
      ),
    );
    if (resources[fn] && !invokable) {
      problems.push(`${fn}: no enabled schedule (EventBridge rule allowed to invoke it)`);
    }
  }
  if (!resources.ReconcileLambdaFunction) problems.push('ReconcileLambdaFunction: missing');
  return problems;
}

export function templateProblems(template: Template, { region }: { region: string }): string[] {
  const problems: string[] = accessProblems(template);
  const entries = Object.entries(template.Resources);

  for (const [id, stage] of entries.filter(([, r]) => r.Type === 'AWS::ApiGatewayV2::Stage')) {
    const before = dependencies(template, id);
    const routeKeys = new Set(
      [...before]
        .map((dep) => template.Resources[dep])
        .flatMap((r) => (r?.Type === 'AWS::ApiGatewayV2::Route' ? [r.Properties?.RouteKey] : [])),
    );
    for (const key of Object.keys(stage.Properties?.RouteSettings ?? {})) {
      if (!routeKeys.has(key))
        problems.push(`${id}: RouteSettings names "${key}", a route it does not depend on`);
    }
  }

  for (const [id, resource] of entries) {
    // A name of its own: a *Name property set to a value, not a Ref/GetAtt to another resource.
    const named = Object.entries<Json>(resource.Properties ?? {}).some(
      ([key, value]) =>
        /Name$/.test(key) &&
        key !== 'DisplayName' &&
        value !== undefined &&
        !value?.Ref &&
        !value?.['Fn::GetAtt'],
    );
    if (named && resource.DeletionPolicy === 'Retain') {
      problems.push(`${id}: plain Retain on a resource with a fixed name (a retry or redeploy meets it)`);
    }
    for (const [property, limit] of Object.entries(MAX_NAME)) {
      const value = resource.Properties?.[property];
      if (value !== undefined && nameLength(value, region) > limit) {
        problems.push(`${id}: ${property} longer than ${limit} characters in ${region}`);
      }
    }
  }

  for (const [id, fn] of entries.filter(([, r]) => r.Type === 'AWS::Lambda::Function')) {
    const variables: Record<string, Json> = fn.Properties?.Environment?.Variables ?? {};
    for (const name of REQUIRED_ENV) {
      if (!variables[name]) problems.push(`${id}: ${name} is empty`);
    }
    if (variables.WECHAT_PAY_VERSION === 'v3' && !variables.WECHAT_MCH_SERIAL_NO) {
      problems.push(`${id}: WECHAT_MCH_SERIAL_NO is empty on v3`);
    }
    if (variables.SECRETS_SOURCE !== 'ssm') problems.push(`${id}: SECRETS_SOURCE is not ssm`);
    for (const [name, value] of Object.entries(variables)) {
      if ((SECRET_NAMES as readonly string[]).includes(name))
        problems.push(`${id}: secret ${name} in the environment`);
      if (typeof value === 'string' && (/-----BEGIN /.test(value) || /^[A-Za-z0-9]{32}$/.test(value))) {
        problems.push(`${id}: ${name} looks like key material`);
      }
    }
  }
  return problems;
}
