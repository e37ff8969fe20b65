import { describe, expect, it } from 'vitest';
import { accessProblems, type Template } from '#test/deploy/template-checks';

/** The shape `serverless package` gives routes, Function URLs and schedules, reduced to what the checks read. */
function template(): Template {
  const fn = (secrets: string) => ({
    Type: 'AWS::Lambda::Function',
    Properties: { Environment: { Variables: { SECRET_NAMES: secrets } } },
  });
  const route = (key: string, integration: string, authorization?: string) => ({
    Type: 'AWS::ApiGatewayV2::Route',
    Properties: {
      RouteKey: key,
      Target: { 'Fn::Join': ['/', ['integrations', { Ref: integration }]] },
      ...(authorization ? { AuthorizationType: authorization } : {}),
    },
  });
  const integration = (fnId: string) => ({
    Type: 'AWS::ApiGatewayV2::Integration',
    Properties: { IntegrationUri: { 'Fn::GetAtt': [fnId, 'Arn'] } },
  });
  return {
    Resources: {
      SignInLambdaFunction: fn('WECHAT_SECRET,JWT_SECRET'),
      ListPlansLambdaFunction: fn(''),
      AdminReconcileLambdaFunction: fn('WECHAT_MCH_KEY'),
      PayNotifyLambdaFunction: fn('WECHAT_MCH_KEY'),
      ReconcileLambdaFunction: fn('WECHAT_MCH_KEY'),
      HttpApiIntegrationSignIn: integration('SignInLambdaFunction'),
      HttpApiIntegrationListPlans: integration('ListPlansLambdaFunction'),
      HttpApiIntegrationAdminReconcile: integration('AdminReconcileLambdaFunction'),
      HttpApiRoutePostWechatSignin: route('POST /wechat/sign_in', 'HttpApiIntegrationSignIn'),
      HttpApiRouteGetWechatPlans: route('GET /wechat/plans', 'HttpApiIntegrationListPlans'),
      HttpApiRoutePostAdminReconcile: route(
        'POST /admin/reconcile',
        'HttpApiIntegrationAdminReconcile',
        'AWS_IAM',
      ),
      PayNotifyLambdaFunctionUrl: {
        Type: 'AWS::Lambda::Url',
        Properties: {
          AuthType: 'NONE',
          TargetFunctionArn: { 'Fn::GetAtt': ['PayNotifyLambdaFunction', 'Arn'] },
        },
      },
      PayNotifyLambdaPermissionFnUrl: {
        Type: 'AWS::Lambda::Permission',
        Properties: { FunctionName: { 'Fn::GetAtt': ['PayNotifyLambdaFunction', 'Arn'] }, Principal: '*' },
      },
      ReconcileEventsRuleSchedule1: {
        Type: 'AWS::Events::Rule',
        Properties: {
          ScheduleExpression: 'rate(5 minutes)',
          State: 'ENABLED',
          Targets: [{ Arn: { 'Fn::GetAtt': ['ReconcileLambdaFunction', 'Arn'] }, Id: 'reconcileSchedule' }],
        },
      },
      ReconcileLambdaPermissionEventsRuleSchedule1: {
        Type: 'AWS::Lambda::Permission',
        Properties: {
          FunctionName: { 'Fn::GetAtt': ['ReconcileLambdaFunction', 'Arn'] },
          Principal: 'events.amazonaws.com',
          SourceArn: { 'Fn::GetAtt': ['ReconcileEventsRuleSchedule1', 'Arn'] },
        },
      },
    },
  };
}

describe('accessProblems', () => {
  it('accepts IAM admin routes, Bearer-checking writes, the public notify URL and a scheduled reconciler', () => {
    expect(accessProblems(template())).toEqual([]);
  });

  it('refuses an /admin/ route without the IAM authorizer', () => {
    const t = template();
    delete t.Resources.HttpApiRoutePostAdminReconcile?.Properties.AuthorizationType;
    expect(accessProblems(t)).toEqual([
      'HttpApiRoutePostAdminReconcile: POST /admin/reconcile is an admin route with AuthorizationType NONE',
      'HttpApiRoutePostAdminReconcile: POST /admin/reconcile writes unauthenticated, and AdminReconcileLambdaFunction checks no Bearer token',
    ]);
  });

  it('refuses an unauthenticated write to a function that checks no Bearer token', () => {
    const t = template();
    Object.assign(t.Resources.HttpApiRouteGetWechatPlans?.Properties, { RouteKey: 'DELETE /wechat/plans' });
    expect(accessProblems(t)).toEqual([
      'HttpApiRouteGetWechatPlans: DELETE /wechat/plans writes unauthenticated, and ListPlansLambdaFunction checks no Bearer token',
    ]);
  });

  it('refuses a public Function URL or invoke permission on anything but the notify', () => {
    const t = template();
    t.Resources.AdminUrl = {
      Type: 'AWS::Lambda::Url',
      Properties: {
        AuthType: 'NONE',
        TargetFunctionArn: { 'Fn::GetAtt': ['AdminReconcileLambdaFunction', 'Arn'] },
      },
    };
    t.Resources.AdminPublic = {
      Type: 'AWS::Lambda::Permission',
      Properties: { FunctionName: { Ref: 'AdminReconcileLambdaFunction' }, Principal: '*' },
    };
    expect(accessProblems(t)).toEqual([
      'AdminUrl: AdminReconcileLambdaFunction is invocable by anyone (only the notify may be)',
      'AdminPublic: AdminReconcileLambdaFunction is invocable by anyone (only the notify may be)',
    ]);
  });

  it.each([
    [
      'disabled',
      (t: Template) =>
        Object.assign(t.Resources.ReconcileEventsRuleSchedule1?.Properties, { State: 'DISABLED' }),
    ],
    [
      'not allowed to invoke',
      (t: Template) => delete t.Resources.ReconcileLambdaPermissionEventsRuleSchedule1,
    ],
    ['absent', (t: Template) => delete t.Resources.ReconcileEventsRuleSchedule1],
  ])('refuses a reconciler whose schedule is %s', (_, breakIt) => {
    const t = template();
    breakIt(t);
    expect(accessProblems(t)).toEqual([
      'ReconcileLambdaFunction: no enabled schedule (EventBridge rule allowed to invoke it)',
    ]);
  });

  it('refuses a daily bill function without an enabled schedule', () => {
    const t = template();
    t.Resources.DailyBillLambdaFunction = { Type: 'AWS::Lambda::Function', Properties: {} };
    expect(accessProblems(t)).toEqual([
      'DailyBillLambdaFunction: no enabled schedule (EventBridge rule allowed to invoke it)',
    ]);
  });
});
