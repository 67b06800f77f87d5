"""Proves that check_infrastructure.py notices drift: runs it on copies of
template.yaml and infrastructure/, each with one deliberate difference, and
fails if the check passes any of them (or fails on the unchanged pair).

Usage: check_infrastructure_selftest.py template.yaml infrastructure
"""

import contextlib
import io
import os
import shutil
import sys
import tempfile

import check_infrastructure

# (what changes, file under the copy, text to replace, replacement, words the report must contain)
MUTATIONS = [
    (
        "an action dropped from a Terraform policy",
        "infrastructure/modules/stack/functions_workers.tf",
        '["sqs:SendMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility"]',
        '["sqs:SendMessage", "sqs:DeleteMessage"]',
        "sqs:ChangeMessageVisibility on OutboundQueue only in template.yaml",
    ),
    (
        "an action dropped from a statement functions share",
        "infrastructure/modules/stack/grants.tf",
        '"dynamodb:PutItem", "dynamodb:TransactWriteItems"]',
        '"dynamodb:PutItem"]',
        "dynamodb:TransactWriteItems on EventsTable only in template.yaml",
    ),
    (
        "a grant widened to another resource",
        "infrastructure/modules/stack/functions_http.tf",
        'resources = ["${module.data.blob_bucket_arn}/*/media/inbound/*"]',
        'resources = ["${module.data.blob_bucket_arn}/*"]',
        "s3:DeleteObject on BlobBucket/* only in terraform",
    ),
    (
        "an environment variable added to the template only",
        "template.yaml",
        "          PARLEY_HANDLER: sender\n",
        "          PARLEY_HANDLER: sender\n          PARLEY_EXTRA: x\n",
        "environment variable 'PARLEY_EXTRA' only in template.yaml",
    ),
    (
        "a schedule default changed",
        "infrastructure/modules/stack/variables.tf",
        'default     = "rate(15 minutes)"',
        'default     = "rate(30 minutes)"',
        "function message-cleanup",
    ),
    (
        "a stream parallelization factor changed",
        "infrastructure/modules/stack/functions_workers.tf",
        "parallelization_factor             = 4",
        "parallelization_factor             = 2",
        "stream source",
    ),
    (
        "a GSI renamed",
        "infrastructure/modules/data/dynamodb.tf",
        'name            = "gsi3"',
        'name            = "gsi5"',
        "table parley-${stage}-read-models: gsis gsi3 is",
    ),
    (
        "a queue renamed",
        "infrastructure/modules/messaging/sqs.tf",
        '"parley-${var.stage}-jobs-dlq"',
        '"parley-${var.stage}-jobs-dead-letters"',
        "queue parley-${stage}-jobs-dlq",
    ),
    (
        "a route left without its authorizer",
        "infrastructure/modules/stack/api.tf",
        'path = "/v1/{proxy+}", function = "api", authorized = true',
        'path = "/v1/{proxy+}", function = "api", authorized = false',
        "route",
    ),
    (
        "a function missing in Terraform",
        "infrastructure/modules/stack/functions_workers.tf",
        'module "template_poller" {\n  source = "../function"',
        'module "template_poller" {\n  source = "../not-a-function"',
        "function template-poller (template TemplatePollerFunction): missing in terraform",
    ),
]


def run(template, infrastructure):
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = check_infrastructure.main(template, infrastructure)
    return code, err.getvalue()


def main(template, infrastructure):
    failures = []
    code, report = run(template, infrastructure)
    if code != 0:
        failures.append(f"the unchanged files do not pass:\n{report}")
    for what, path, old, new, expected in MUTATIONS:
        with tempfile.TemporaryDirectory() as tmp:
            shutil.copy(template, os.path.join(tmp, "template.yaml"))
            shutil.copytree(infrastructure, os.path.join(tmp, "infrastructure"))
            target = os.path.join(tmp, path)
            with open(target, encoding="utf-8") as f:
                text = f.read()
            if old not in text:
                failures.append(f"{what}: {path} no longer contains {old!r}; update this self-test")
                continue
            with open(target, "w", encoding="utf-8") as f:
                f.write(text.replace(old, new, 1))
            code, report = run(os.path.join(tmp, "template.yaml"), os.path.join(tmp, "infrastructure"))
            if code == 0 or expected not in report:
                failures.append(f"{what}: not reported (exit {code}, wanted {expected!r}):\n{report}")
    for failure in failures:
        print(failure, file=sys.stderr)
    if failures:
        return 1
    print(f"check_infrastructure.py reports each of {len(MUTATIONS)} deliberate differences")
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 3:
        print(__doc__.strip().splitlines()[-1], file=sys.stderr)
        sys.exit(2)
    sys.exit(main(sys.argv[1], sys.argv[2]))
