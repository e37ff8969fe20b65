'use strict';
/**
 * Per-stage deploy settings for serverless.yml: `stages/<stage>.yml`, committed by the team (no secrets:
 * those go to SSM with `npm run secrets`). serverless.yml reads `${file(./deploy/stage.cjs):settings}`
 * (values for the functions and the template) and `${file(./deploy/stage.cjs):resources}` (alarms and the
 * optional custom domain). A real stage with a missing or malformed setting fails here, before
 * CloudFormation, with a message naming it. `npm start` (IS_LOCAL_STACK=true) reads the process
 * environment instead (.env.example), as before. CommonJS because the framework loads it with require().
 */
const { existsSync, readFileSync } = require('node:fs');
const { createHash } = require('node:crypto');
const { join, relative, resolve } = require('node:path');
const { parse } = require('yaml');

const ROOT = resolve(__dirname, '..');
const MAX_STAGE_LENGTH = 16;
/** Role names are `<prefix>-<function>`; IAM allows 64 characters, and our function names stay within 16. */
const MAX_ROLE_NAME = 64;
const MAX_FUNCTION_NAME = 16;
const NO_VALUE = { Ref: 'AWS::NoValue' };
/** Names of secrets (lib/config.ts SECRET_NAMES): refused in a stage file, they belong in SSM. */
const SECRET_LIKE = /SECRET|_KEY$|_CERTS$/;
const LOG_RETENTION_DAYS = [1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 3653];

const oneOf = (values) => (value) => values.includes(value) || `must be one of ${values.join(', ')}`;
const matches = (pattern, what) => (value) => pattern.test(value) || `must be ${what}`;
const bool = oneOf(['true', 'false']);

/**
 * Every setting a stage file may hold: `required` (true, or a predicate on the other settings), a
 * `default` used when absent, and a `check` returning true or what is wrong.
 */
const SETTINGS = {
  WECHAT_APPID: { required: true, check: matches(/^wx[0-9a-zA-Z]{16}$/, 'the mini-program AppID, wx + 16 characters') },
  WECHAT_MCH_ID: { required: true, check: matches(/^\d{6,16}$/, 'the merchant id (mchid), digits') },
  WECHAT_PAY_VERSION: { required: true, check: oneOf(['v2', 'v3']) },
  WECHAT_PAY_SIGN_TYPE: { default: 'MD5', check: oneOf(['MD5', 'HMAC-SHA256']) },
  WECHAT_MCH_SERIAL_NO: {
    required: (s) => s.WECHAT_PAY_VERSION === 'v3' || s.WECHAT_PAY_MIGRATION_FROM === 'v3',
    default: '',
    check: matches(/^[0-9A-Fa-f]{8,40}$/, 'the merchant API certificate serial number (hex)'),
  },
  WECHAT_PAY_PUBLIC_KEY_ID: { default: '', check: matches(/^PUB_KEY_ID_\d+$/, 'PUB_KEY_ID_<digits>') },
  WECHAT_API_BASE: { default: 'https://api.weixin.qq.com', check: matches(/^https:\/\//, 'an https URL') },
  WECHAT_PAY_API_BASE: { default: 'https://api.mch.weixin.qq.com', check: matches(/^https:\/\//, 'an https URL') },
  // H5 (official account): optional; absent, the H5 routes answer 404 FEATURE_DISABLED.
  WECHAT_MP_APPID: { default: '', check: matches(/^wx[0-9a-zA-Z]{16}$/, 'the official account AppID, wx + 16 characters') },
  WECHAT_OPEN_BASE: { default: 'https://open.weixin.qq.com', check: matches(/^https:\/\//, 'an https URL') },
  H5_ORIGINS: {
    default: '',
    check: matches(
      /^https:\/\/[a-z0-9.-]+(:\d{1,5})?(,https:\/\/[a-z0-9.-]+(:\d{1,5})?)*$/,
      'comma-separated https origins (https://host[:port], lowercase, no path)',
    ),
  },
  // The URL browsers reach the API at, when a proxy (CloudFront) sends API Gateway its own Host: the H5 OAuth
  // callback is built from it. Absent: from each request's Host and path. Kept to what lib/settings.ts accepts.
  PUBLIC_API_URL: {
    default: '',
    check: (v) =>
      (/^https:\/\/[a-z0-9.-]+(:\d{1,5})?(\/[A-Za-z0-9_~-][A-Za-z0-9._~-]*)*\/?$/.test(v) && URL.canParse(v)) ||
      'must be the https URL browsers reach the API at (https://host[:port][/base path], lowercase host, no query)',
  },
  JWT_TTL_SECONDS: {
    default: '604800',
    check: (v) => (/^\d+$/.test(v) && +v >= 60 && +v <= 7776000) || 'must be seconds between 60 and 7776000',
  },
  LOG_LEVEL: { default: 'INFO', check: oneOf(['DEBUG', 'INFO', 'WARN', 'ERROR']) },
  WECHAT_PAY_MIGRATION_FROM: {
    default: '',
    check: (v, s) =>
      ((v === 'v2' || v === 'v3') && v !== s.WECHAT_PAY_VERSION) ||
      'the previous WeChat Pay version (v2 or v3, not WECHAT_PAY_VERSION), or leave it out',
  },
  RECONCILE_SCHEDULE: {
    default: 'rate(5 minutes)',
    check: matches(/^(rate\(\d+ (minute|minutes|hour|hours)\)|cron\(.+\))$/, 'an EventBridge rate(…) or cron(…)'),
  },
  // The daily bill: 10:30 China time (WeChat makes yesterday's bill from 09:00), then hourly until 14:30 while
  // WeChat still answers STATEMENT_CREATING (a day with a final report is not fetched again).
  BILL_SCHEDULE: {
    default: 'cron(30 2-6 * * ? *)',
    check: matches(/^(rate\(\d+ (minute|minutes|hour|hours)\)|cron\(.+\))$/, 'an EventBridge rate(…) or cron(…)'),
  },
  REGION: { default: 'ap-southeast-1', check: matches(/^[a-z]{2}(-[a-z]+)+-\d$/, 'an AWS region') },
  DOMAIN_NAME: {
    required: (s) => Boolean(s.DOMAIN_CERTIFICATE_ARN) || s.NOTIFY_ON_DOMAIN === 'true',
    default: '',
    check: matches(/^([a-z0-9-]+\.)+[a-z]{2,}$/, 'a host name such as api.example.com'),
  },
  DOMAIN_CERTIFICATE_ARN: {
    required: (s) => Boolean(s.DOMAIN_NAME),
    default: '',
    check: matches(/^arn:aws[a-z-]*:acm:[a-z0-9-]+:\d{12}:certificate\/.+$/, 'an ACM certificate ARN'),
  },
  NOTIFY_ON_DOMAIN: { default: 'false', check: bool },
  ALARM_EMAIL: { default: '', check: matches(/^[^@\s]+@[^@\s]+\.[^@\s]+$/, 'an email address') },
  TRACING: { default: 'false', check: bool },
  PAY_NOTIFY_RESERVED_CONCURRENCY: {
    default: '',
    check: (v) => (/^\d+$/.test(v) && +v >= 1) || 'must be a whole number ≥ 1 (leave it out for none)',
  },
  LOG_RETENTION_DAYS: {
    default: '30',
    check: (v) => LOG_RETENTION_DAYS.includes(+v) || `must be one of ${LOG_RETENTION_DAYS.join(', ')}`,
  },
  RETAIN_DATA: { default: 'true', check: bool },
  TABLE_DELETION_PROTECTION: { default: 'false', check: bool },
};

function fail(message) {
  const error = new Error(message);
  error.stack = message; // the framework prints the stack: keep it to the message
  throw error;
}

/** The directory holding the stage files (STAGE_SETTINGS_DIR: tests only). */
function stagesDir() {
  return resolve(ROOT, process.env.STAGE_SETTINGS_DIR || 'stages');
}

/**
 * Reads and validates `stages/<stage>.yml`: every setting as a string, defaults applied. Throws one
 * error listing every problem, each naming the setting.
 */
function readStageFile(stage) {
  if (stage.length > MAX_STAGE_LENGTH || !/^[a-z][a-z0-9-]*$/.test(stage)) {
    fail(`stage "${stage}": use lowercase letters, digits and -, at most ${MAX_STAGE_LENGTH} characters`);
  }
  const file = join(stagesDir(), `${stage}.yml`);
  const shown = relative(ROOT, file);
  if (!existsSync(file)) {
    fail(`${shown} not found: copy stages/example.yml to ${shown} and fill it in (see README, Deploy)`);
  }
  const raw = parse(readFileSync(file, 'utf8')) ?? {};
  const problems = [];
  const values = {};
  for (const [name, value] of Object.entries(raw)) {
    if (!(name in SETTINGS) && SECRET_LIKE.test(name)) {
      problems.push(`${name} is a secret: remove it and use npm run secrets`);
    } else if (!(name in SETTINGS)) problems.push(`${name} is not a setting (typo?)`);
    else if (value !== null && value !== '') values[name] = String(value);
  }
  for (const [name, spec] of Object.entries(SETTINGS)) {
    const required = typeof spec.required === 'function' ? spec.required(values) : spec.required;
    if (values[name] === undefined) {
      if (required) problems.push(`${name} is required`);
      else values[name] = spec.default;
    } else {
      const verdict = spec.check(values[name], values);
      if (verdict !== true) problems.push(`${name} ${verdict}`);
    }
  }
  if (values.WECHAT_PAY_VERSION === 'v2' && values.WECHAT_PAY_PUBLIC_KEY_ID) {
    problems.push('WECHAT_PAY_PUBLIC_KEY_ID is for v3 only');
  }
  if (problems.length > 0) fail(`${shown}:\n  - ${problems.join('\n  - ')}`);
  return values;
}

/** The local stack's settings: the process environment (.env.example applied by npm start), as before. */
function localSettings() {
  const values = {};
  for (const [name, spec] of Object.entries(SETTINGS)) values[name] = process.env[name] ?? spec.default;
  values.PAY_NOTIFY_RESERVED_CONCURRENCY = '';
  return values;
}

/**
 * `<service>-<stage>-<region>`, shortened (service truncated, plus a hash of the whole) when a role name
 * `<prefix>-<function>` could exceed IAM's 64 characters. Deterministic, and unique per service, stage and
 * region (roles are global, so the region is part of it).
 */
function roleNamePrefix(service, stage, region) {
  const full = `${service}-${stage}-${region}`;
  const budget = MAX_ROLE_NAME - 1 - MAX_FUNCTION_NAME;
  if (full.length <= budget) return full;
  const hash = createHash('sha256').update(full).digest('hex').slice(0, 6);
  const tail = `-${hash}-${stage}-${region}`;
  return `${service.slice(0, Math.max(1, budget - tail.length))}${tail}`;
}

async function context(resolveVariable, options) {
  const stage = options.stage || (await resolveVariable('sls:stage'));
  const service = await resolveVariable('self:service');
  const local = process.env.IS_LOCAL_STACK === 'true';
  const values = local ? localSettings() : readStageFile(stage);
  const region = options.region || values.REGION;
  return { stage, service, local, values, region };
}

/** The pay secrets of each version (also the only SSM parameters the pay functions may read). */
const PAY_SECRET_NAMES = {
  v2: ['WECHAT_MCH_KEY'],
  v3: ['WECHAT_APIV3_KEY', 'WECHAT_MCH_PRIVATE_KEY', 'WECHAT_PAY_PUBLIC_KEY', 'WECHAT_PAY_PLATFORM_CERTS'],
};

/** What the functions that refund read beside the pay secrets: v2's mutual-TLS certificate and key. */
const REFUND_SECRET_NAMES = { v2: ['WECHAT_MCH_CERT', 'WECHAT_MCH_PRIVATE_KEY'], v3: [] };

/** payNotify's HTTP API route: locally, and on the custom domain with NOTIFY_ON_DOMAIN. */
const NOTIFY_EVENTS = [{ httpApi: 'POST /wechat/notify' }];

/** `${file(./deploy/stage.cjs):settings}`: the resolved settings serverless.yml uses. */
async function settings({ resolveVariable, options }) {
  const { stage, service, local, values, region } = await context(resolveVariable, options);
  const onDomain = values.NOTIFY_ON_DOMAIN === 'true';
  let notifyUrl = { 'Fn::GetAtt': ['PayNotifyLambdaFunctionUrl', 'FunctionUrl'] };
  if (local) notifyUrl = process.env.WECHAT_NOTIFY_URL || 'http://127.0.0.1:3000/wechat/notify';
  else if (onDomain) notifyUrl = `https://${values.DOMAIN_NAME}/wechat/notify`;
  // A migration window (WECHAT_PAY_MIGRATION_FROM): the functions that notify, query and close also read the
  // previous version's pay secrets, so its in-flight orders are handled with their own version.
  const windowNames = [
    ...PAY_SECRET_NAMES[values.WECHAT_PAY_VERSION],
    ...(values.WECHAT_PAY_MIGRATION_FROM ? PAY_SECRET_NAMES[values.WECHAT_PAY_MIGRATION_FROM] : []),
  ];
  const refundNames = [...new Set([...windowNames, ...REFUND_SECRET_NAMES[values.WECHAT_PAY_VERSION]])];
  const ssmArn = (name) => ({
    'Fn::Sub': `arn:\${AWS::Partition}:ssm:\${AWS::Region}:\${AWS::AccountId}:parameter/${service}/${stage}/${name}`,
  });
  return {
    ...values,
    region,
    payVersion: values.WECHAT_PAY_VERSION,
    windowPaySecretNames: windowNames.join(','),
    windowPaySecretArns: windowNames.map(ssmArn),
    // The reconciler and POST /admin/refunds also refund (v2: over mutual TLS).
    refundSecretNames: refundNames.join(','),
    refundSecretArns: refundNames.map(ssmArn),
    secretsSource: local ? 'env' : 'ssm',
    roleNamePrefix: roleNamePrefix(service, stage, region),
    notifyUrl,
    notifyEvents: local || onDomain ? NOTIFY_EVENTS : [],
    tracing: values.TRACING === 'true',
    // X-Ray accepts no resource-level permissions, hence '*' (only when TRACING is on).
    roleStatements:
      values.TRACING === 'true'
        ? [{ Effect: 'Allow', Action: ['xray:PutTraceSegments', 'xray:PutTelemetryRecords'], Resource: '*' }]
        : [],
    logRetentionInDays: Number(values.LOG_RETENTION_DAYS),
    dataDeletionPolicy: values.RETAIN_DATA === 'true' ? 'RetainExceptOnCreate' : 'Delete',
    tableDeletionProtection: values.TABLE_DELETION_PROTECTION === 'true',
    payNotifyReservedConcurrency: values.PAY_NOTIFY_RESERVED_CONCURRENCY
      ? Number(values.PAY_NOTIFY_RESERVED_CONCURRENCY)
      : NO_VALUE,
  };
}

const upperFirst = (name) => name[0].toUpperCase() + name.slice(1);

function alarm(description, namespace, metric, dimensions, { threshold = 1, minutes = 5 } = {}) {
  return {
    Type: 'AWS::CloudWatch::Alarm',
    Properties: {
      AlarmDescription: description,
      Namespace: namespace,
      MetricName: metric,
      Dimensions: dimensions,
      Statistic: 'Sum',
      Period: 60,
      EvaluationPeriods: minutes,
      DatapointsToAlarm: 1,
      Threshold: threshold,
      ComparisonOperator: 'GreaterThanOrEqualToThreshold',
      TreatMissingData: 'notBreaching',
      AlarmActions: [{ Ref: 'AlarmTopic' }],
      OKActions: [{ Ref: 'AlarmTopic' }],
    },
  };
}

/**
 * `${file(./deploy/stage.cjs):resources}`: an SNS topic (email subscription when ALARM_EMAIL is set) and
 * alarms on every function's errors and throttles, payNotify's Function URL 5xx and the HTTP API's 5xx;
 * plus, with DOMAIN_NAME, the API Gateway custom domain and its mapping. Nothing locally.
 */
async function resources({ resolveVariable, resolveConfigurationProperty, options }) {
  let stageContext;
  try {
    stageContext = await context(resolveVariable, options);
  } catch {
    return {}; // custom.settings reports the same problem, once
  }
  const { stage, service, local, values } = stageContext;
  if (local) return {};
  const functions = Object.keys((await resolveConfigurationProperty(['functions'])) ?? {});
  const out = {
    AlarmTopic: {
      Type: 'AWS::SNS::Topic',
      Properties: {
        DisplayName: `${service} ${stage} alarms`,
        Subscription: values.ALARM_EMAIL ? [{ Protocol: 'email', Endpoint: values.ALARM_EMAIL }] : NO_VALUE,
      },
    },
  };
  for (const name of functions) {
    const fn = [{ Name: 'FunctionName', Value: { Ref: `${upperFirst(name)}LambdaFunction` } }];
    // A failed notify costs a payment its acknowledgement: alarm on the first one, minute by minute.
    const minutes = name === 'payNotify' ? 1 : 5;
    out[`${upperFirst(name)}ErrorsAlarm`] = alarm(`${name} errors`, 'AWS/Lambda', 'Errors', fn, { minutes });
    out[`${upperFirst(name)}ThrottlesAlarm`] = alarm(`${name} throttled`, 'AWS/Lambda', 'Throttles', fn);
  }
  out.PayNotifyUrl5xxAlarm = alarm(
    'payNotify Function URL answered 5xx (WeChat will resend; look at the payNotify logs)',
    'AWS/Lambda',
    'Url5xxCount',
    [{ Name: 'FunctionName', Value: { Ref: 'PayNotifyLambdaFunction' } }],
    { minutes: 1 },
  );
  // A validly signed payment that cannot be credited (lib/payments/settle.ts): an operator must look.
  out.PaymentExceptionAlarm = alarm(
    'payment exception: a verified payment was not credited (GET /admin/exceptions)',
    'WechatMiniprogramBackend',
    'PaymentException',
    [{ Name: 'service', Value: 'payments' }],
    { minutes: 1 },
  );
  out.HttpApi5xxAlarm = alarm('HTTP API answered 5xx', 'AWS/ApiGateway', '5xx', [
    { Name: 'ApiId', Value: { Ref: 'HttpApi' } },
  ]);
  const outputs = {};
  if (values.DOMAIN_NAME) {
    out.ApiDomainName = {
      Type: 'AWS::ApiGatewayV2::DomainName',
      Properties: {
        DomainName: values.DOMAIN_NAME,
        DomainNameConfigurations: [
          { CertificateArn: values.DOMAIN_CERTIFICATE_ARN, EndpointType: 'REGIONAL', SecurityPolicy: 'TLS_1_2' },
        ],
      },
    };
    out.ApiDomainMapping = {
      Type: 'AWS::ApiGatewayV2::ApiMapping',
      DependsOn: ['HttpApiStage'],
      Properties: { ApiId: { Ref: 'HttpApi' }, DomainName: { Ref: 'ApiDomainName' }, Stage: '$default' },
    };
    outputs.ApiDomainUrl = { Description: 'Request domain for the mini-program', Value: `https://${values.DOMAIN_NAME}` };
    outputs.ApiDomainDnsTarget = {
      Description: `CNAME ${values.DOMAIN_NAME} to this`,
      Value: { 'Fn::GetAtt': ['ApiDomainName', 'RegionalDomainName'] },
    };
  }
  return { Resources: out, Outputs: outputs };
}

module.exports = { settings, resources, readStageFile, roleNamePrefix, SETTINGS, MAX_STAGE_LENGTH, NOTIFY_EVENTS };
