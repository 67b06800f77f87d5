"""Checks that every function of template.yaml that may use a data key can
also reach where data keys are kept.

The vault keeps each scope's data key wrapped in the keys table: opening a
sealed value reads the table (`kms:Decrypt` needs `dynamodb:GetItem` on
KeysTable), and sealing the first value of a scope creates its key there
(`kms:GenerateDataKey` needs `dynamodb:PutItem` on KeysTable). Lambda tests
against the emulator do not enforce IAM, so a missing grant would first show
as AccessDenied after a deploy.

Usage: check_template_policies.py template.yaml
"""

import sys

from cfn_yaml import as_list, load_template


def grants(statements):
    """(action, resource) pairs an Allow statement list grants, resources as text."""
    for statement in statements:
        if statement.get("Effect") != "Allow":
            continue
        for action in as_list(statement.get("Action", [])):
            for resource in as_list(statement.get("Resource", [])):
                yield action, str(resource)


def main(path):
    template = load_template(path)
    problems = []
    for name, resource in template.get("Resources", {}).items():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        statements = []
        for policy in resource.get("Properties", {}).get("Policies", []) or []:
            if isinstance(policy, dict):
                statements.extend(policy.get("Statement", []))
        granted = set(grants(statements))
        actions = {action for action, _ in granted}
        on_keys = {action for action, res in granted if "KeysTable" in res}
        for kms_action, table_action in [("kms:Decrypt", "dynamodb:GetItem"), ("kms:GenerateDataKey", "dynamodb:PutItem")]:
            if kms_action in actions and table_action not in on_keys:
                problems.append(f"{name}: has {kms_action} but not {table_action} on KeysTable")
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        return 1
    print(f"{path}: every function with a KMS grant reaches the keys table")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "template.yaml"))
