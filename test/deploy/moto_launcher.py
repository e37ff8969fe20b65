"""moto_server for the deploy rehearsal (npm run test:deploy), with three gaps of moto 5 closed.

1. moto's ValidateTemplate refuses a template on any cfn-lint match, warnings included (the framework's
   templates carry W3005, a redundant DependsOn): keep only errors, as CloudFormation would.
2. moto's CloudFormation has no AWS::Lambda::Url: model it through moto's own Lambda backend, so
   Fn::GetAtt [PayNotifyLambdaFunctionUrl, FunctionUrl] resolves and the URL reaches createPayment.
3. moto deletes RetainExceptOnCreate resources with the stack: keep them, as CloudFormation does on a
   stack delete after the creating operation succeeded (what `serverless remove` does).

Usage: python3 moto_launcher.py <workdir>; prints "port <n>" once listening on a free 127.0.0.1 port.
"""

import logging
import os
import sys
import warnings

from moto.awslambda.models import lambda_backends
from moto.cloudformation import models as cfn_models
from moto.cloudformation import parsing
from moto.core.common_models import CloudFormationModel
from moto.server import ThreadedMotoServer

_lint = cfn_models.validate_template_cfn_lint
cfn_models.validate_template_cfn_lint = lambda template: [
    match for match in _lint(template) if match.rule.id.startswith("E")
]


class FunctionUrl(CloudFormationModel):
    __module__ = "moto.awslambda.launcher"  # moto files models by service, read from the module name

    def __init__(self, config):
        self.config = config

    @staticmethod
    def cloudformation_type():
        return "AWS::Lambda::Url"

    @staticmethod
    def cloudformation_name_type():
        return ""

    @classmethod
    def has_cfn_attr(cls, attr):
        return attr in ("FunctionArn", "FunctionUrl")

    def get_cfn_attribute(self, attribute_name):
        return self.config.to_dict()[attribute_name]

    @property
    def physical_resource_id(self):
        return self.config.function.function_arn

    @classmethod
    def create_from_cloudformation_json(
        cls, resource_name, cloudformation_json, account_id, region_name, **kwargs
    ):
        props = cloudformation_json["Properties"]
        config = {"AuthType": props["AuthType"]}
        if "Cors" in props:
            config["Cors"] = props["Cors"]
        backend = lambda_backends[account_id][region_name]
        return cls(backend.create_function_url_config(props["TargetFunctionArn"], config))

    @classmethod
    def delete_from_cloudformation_json(
        cls, resource_name, cloudformation_json, account_id, region_name
    ):
        backend = lambda_backends[account_id][region_name]
        try:
            backend.delete_function_url_config(cloudformation_json["Properties"]["TargetFunctionArn"])
        except Exception:  # the function may be gone already
            pass


_delete = parsing.ResourceMap.delete


def _delete_keeping_retained(self):
    kept = {
        key: value
        for key, value in self._resource_json_map.items()
        if value.get("DeletionPolicy") == "RetainExceptOnCreate"
    }
    for value in kept.values():
        value["DeletionPolicy"] = "Retain"
    try:
        _delete(self)
    finally:
        for value in kept.values():
            value["DeletionPolicy"] = "RetainExceptOnCreate"


parsing.ResourceMap.delete = _delete_keeping_retained
parsing.get_model_list.cache_clear()
parsing.get_model_map.cache_clear()
parsing.get_name_type_map.cache_clear()

if __name__ == "__main__":
    # Quiet: no request log, no "not supported" notes (ApiGatewayV2, CloudWatch alarms: checked statically).
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    logging.getLogger("moto").setLevel(logging.ERROR)
    warnings.simplefilter("ignore")
    os.chdir(sys.argv[1])  # moto's cfn-lint call writes file.tmp into the working directory
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    print(f"port {server.get_host_and_port()[1]}", flush=True)
    sys.stdin.read()  # runs until the parent closes stdin (or kills us)
    server.stop()
