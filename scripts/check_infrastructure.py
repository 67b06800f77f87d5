"""Checks that the Terraform in infrastructure/ and template.yaml describe the
same stack, so that a change made to one deployment path is not forgotten in
the other.

Compared, per function (keyed by its PARLEY_HANDLER): that it exists on both
sides; its binary, memory and timeout; the names of its environment
variables; the IAM grants of its policy as (action, resource, condition)
triples, resources reduced to the template's logical ids (EventsTable,
ReadModelsTable/index/*, BlobBucket/exports/*, "*"); its HTTP routes; its
stream or queue event source with batch settings; its schedule expression
(parameter and variable defaults) and retries. Also compared: the tables'
names, key schemas, attribute types, GSIs, streams, TTL and point-in-time
recovery; the queues' names, visibility timeouts and dead-letter targets;
the template's Parameters against the stack module's variables (defaults,
NoEcho against sensitive).

Not compared: what has no counterpart to key on (SAM's implicit execution,
X-Ray and event-source grants, which the function module adds scoped to the
function's own log group, stream and queue).

Usage: check_infrastructure.py template.yaml infrastructure
Exits 1 and prints one line per difference when they drift apart.
"""

import os
import re
import sys

import hcl2

from cfn_yaml import as_list, load_template

# Outputs of the Terraform modules the functions reference -> the template's
# logical id (and attribute, where it is not the ARN) of the same resource.
REFERENCES = {
    "module.data.events_table_arn": "EventsTable",
    "module.data.events_table_stream_arn": "EventsTable.StreamArn",
    "module.data.read_models_table_arn": "ReadModelsTable",
    "module.data.idempotency_table_arn": "IdempotencyTable",
    "module.data.keys_table_arn": "KeysTable",
    "module.data.blob_bucket_arn": "BlobBucket",
    "module.data.data_key_arn": "DataKey",
    "module.messaging.outbound_queue_arn": "OutboundQueue",
    "module.messaging.jobs_queue_arn": "JobsQueue",
    "module.messaging.event_bus_arn": "EventBus",
    "module.identity.user_pool_arn": "UserPool",
}

# Event source settings: template property -> Terraform argument, and the
# value either side means when it leaves the setting out.
SOURCE_SETTINGS = {
    "StartingPosition": ("starting_position", None),
    "BatchSize": ("batch_size", None),
    "MaximumBatchingWindowInSeconds": ("maximum_batching_window_in_seconds", 0),
    "ParallelizationFactor": ("parallelization_factor", 1),
    "MaximumRetryAttempts": ("maximum_retry_attempts", -1),
    "FunctionResponseTypes": ("function_response_types", None),
}

INTERPOLATION = re.compile(r"\$\{([^}]+)\}")


# ---------------------------------------------------------------- HCL


def plain(value):
    """python-hcl2 keeps string literals quoted ("\"x\"") and block metadata
    (__is_block__, comments): return the bare values, expressions as ${...}."""
    if isinstance(value, dict):
        return {plain(k): plain(v) for k, v in value.items() if not str(k).startswith("__")}
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, str) and len(value) >= 2 and value[0] == '"' and value[-1] == '"':
        return value[1:-1].replace('\\"', '"').replace("\\\\", "\\")
    return value


def load_hcl_dir(directory):
    """Top-level blocks of every .tf file in a directory, merged by kind."""
    merged = {}
    if not os.path.isdir(directory):
        return merged
    for name in sorted(os.listdir(directory)):
        if not name.endswith(".tf"):
            continue
        path = os.path.join(directory, name)
        with open(path, encoding="utf-8") as f:
            parsed = plain(hcl2.load(f))
        for kind, blocks in parsed.items():
            merged.setdefault(kind, []).extend(blocks)
    return merged


def blocks(parsed, kind):
    """{label: body} of one kind of labelled block (module, variable, output)."""
    found = {}
    for block in parsed.get(kind, []):
        for label, body in block.items():
            found[label] = body
    return found


def resources(parsed, resource_type):
    found = {}
    for block in parsed.get("resource", []):
        for rtype, named in block.items():
            if rtype == resource_type:
                found.update(named)
    return found


def local_values(parsed):
    values = {}
    for block in parsed.get("locals", []):
        values.update(block)
    return values


def reference(expression):
    """'module.x.y' of an expression that is a single reference '${module.x.y}'."""
    if isinstance(expression, str):
        match = INTERPOLATION.fullmatch(expression)
        if match:
            return match.group(1).strip()
    return None


def variable_default(variables, expression):
    name = reference(expression)
    if name and name.startswith("var."):
        variable = variables.get(name[4:])
        if variable is None:
            return f"<undeclared {name}>"
        return variable.get("default")
    return expression


def tf_resource(text, problems, where):
    """A Terraform resource expression in the template's terms."""

    def replace(match):
        ref = match.group(1).strip()
        if ref not in REFERENCES:
            problems.append(f"{where}: terraform resource reference {ref} has no counterpart in the check's table")
            return ref
        return REFERENCES[ref]

    return INTERPOLATION.sub(replace, text)


def tf_name(text, local_names):
    """A resource name with the stage written as ${stage}."""
    for name, value in local_names.items():
        text = text.replace("${local.%s}" % name, value)
    return text.replace("${var.stage}", "${stage}")


# ---------------------------------------------------------------- CloudFormation


def cfn_resource(value):
    """A template Resource entry as text: logical id, id/suffix, or '*'."""
    if isinstance(value, dict) and "GetAtt" in value:
        target = value["GetAtt"]
        target = ".".join(target) if isinstance(target, list) else target
        return target[: -len(".Arn")] if target.endswith(".Arn") else target
    if isinstance(value, dict) and "Sub" in value:
        text = value["Sub"]
        return re.sub(r"\$\{([A-Za-z0-9]+)\.Arn\}", r"\1", text)
    if isinstance(value, dict) and "Ref" in value:
        return value["Ref"]
    return str(value)


def cfn_name(value):
    text = value["Sub"] if isinstance(value, dict) and "Sub" in value else str(value)
    return text.replace("${Stage}", "${stage}")


def cfn_value(parameters, value):
    """A property value with !Ref of a parameter replaced by its default."""
    if isinstance(value, dict) and "Ref" in value and value["Ref"] in parameters:
        return parameters[value["Ref"]].get("Default")
    return value


def cfn_conditions(statement):
    conditions = []
    for test, variables in (statement.get("Condition") or {}).items():
        for variable, values in variables.items():
            conditions.append((test, variable, tuple(sorted(str(v) for v in as_list(values)))))
    return tuple(sorted(conditions))


def tf_conditions(statement):
    conditions = []
    for condition in statement.get("conditions", []) or []:
        values = tuple(sorted(str(v) for v in as_list(condition.get("values", []))))
        conditions.append((condition.get("test"), condition.get("variable"), values))
    return tuple(sorted(conditions))


def snake(name):
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name.replace("WhatsApp", "Whatsapp")).lower()


def same(a, b):
    """Equal as values: 30 and "30", True and "true" compare equal."""
    return str(a).lower() == str(b).lower()


# ---------------------------------------------------------------- the two sides


def template_functions(template, problems):
    parameters = template.get("Parameters", {})
    defaults = template.get("Globals", {}).get("Function", {})
    shared_env = set(defaults.get("Environment", {}).get("Variables", {}))
    functions = {}
    for logical_id, resource in template.get("Resources", {}).items():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        props = resource.get("Properties", {})
        own_env = props.get("Environment", {}).get("Variables", {})
        handler = own_env.get("PARLEY_HANDLER", logical_id)
        if handler in functions:
            problems.append(f"template {logical_id}: PARLEY_HANDLER {handler} is also {functions[handler]['where']}'s")
        grants = set()
        for policy in props.get("Policies", []) or []:
            if not isinstance(policy, dict):
                grants.add(("<managed policy>", str(policy), ()))
                continue
            for statement in policy.get("Statement", []):
                if statement.get("Effect") != "Allow":
                    continue
                conditions = cfn_conditions(statement)
                for action in as_list(statement.get("Action", [])):
                    for res in as_list(statement.get("Resource", [])):
                        grants.add((action, cfn_resource(res), conditions))
        routes, streams, queues, schedules = set(), [], [], []
        for event in (props.get("Events") or {}).values():
            kind, eprops = event.get("Type"), event.get("Properties", {})
            if kind == "HttpApi":
                authorizer = (eprops.get("Auth") or {}).get("Authorizer")
                routes.add((eprops.get("Method", "").upper(), eprops.get("Path"), authorizer != "NONE"))
            elif kind in ("DynamoDB", "SQS"):
                source = cfn_resource(eprops.get("Stream") or eprops.get("Queue"))
                settings = {}
                for key, (tf_key, default) in SOURCE_SETTINGS.items():
                    if kind == "SQS" and key in ("StartingPosition", "ParallelizationFactor", "MaximumRetryAttempts"):
                        continue
                    settings[tf_key] = cfn_value(parameters, eprops.get(key, default))
                (streams if kind == "DynamoDB" else queues).append((source, settings))
            elif kind in ("ScheduleV2", "Schedule"):
                expression = cfn_value(parameters, eprops.get("ScheduleExpression"))
                retries = (eprops.get("RetryPolicy") or {}).get("MaximumRetryAttempts")
                schedules.append((expression, retries))
            else:
                routes.add((f"<unhandled event type {kind}>", "", False))
        code = str(props.get("CodeUri", "")).rstrip("/").split("/")[-1]
        functions[handler] = {
            "where": f"template {logical_id}",
            "name": cfn_name(props.get("FunctionName", "")),
            "binary": code,
            "memory": props.get("MemorySize", defaults.get("MemorySize")),
            "timeout": props.get("Timeout", defaults.get("Timeout")),
            "env": shared_env | set(own_env),
            "grants": grants,
            "routes": routes,
            "streams": streams,
            "queues": queues,
            "schedules": schedules,
        }
    return functions


def terraform_functions(stack, function_module, problems):
    modules = blocks(stack, "module")
    variables = blocks(stack, "variable")
    locals_ = local_values(stack)
    local_names = {k: tf_name(v, {}) for k, v in locals_.items() if isinstance(v, str)}
    function_defaults = {name: body.get("default") for name, body in blocks(function_module, "variable").items()}
    functions, module_handler = {}, {}
    for module_name, body in modules.items():
        if not str(body.get("source", "")).rstrip("/").endswith("/function"):
            continue
        where = f"terraform module.{module_name}"
        own_env = body.get("environment", {}) or {}
        shared_ref = reference(body.get("shared_environment"))
        shared_env = set()
        if shared_ref and shared_ref.startswith("local.") and isinstance(locals_.get(shared_ref[6:]), dict):
            shared_env = set(locals_[shared_ref[6:]])
        else:
            problems.append(f"{where}: shared_environment is not a map in the stack's locals")
        handler = plain(own_env.get("PARLEY_HANDLER", module_name))
        if handler in functions:
            problems.append(f"{where}: PARLEY_HANDLER {handler} is also {functions[handler]['where']}'s")
        module_handler[module_name] = handler
        grants = set()
        for statement in body.get("statements", []) or []:
            statement = shared_statement(locals_, statement, problems, where)
            conditions = tf_conditions(statement)
            for action in statement.get("actions", []):
                for res in statement.get("resources", []):
                    grants.add((action, tf_resource(res, problems, where), conditions))
        streams, queues = [], []
        for key, target in (("stream_source", streams), ("queue_source", queues)):
            source = body.get(key)
            if not source:
                continue
            settings = {}
            for cfn_key, (tf_key, default) in SOURCE_SETTINGS.items():
                if key == "queue_source" and cfn_key in ("StartingPosition", "ParallelizationFactor", "MaximumRetryAttempts"):
                    continue
                settings[tf_key] = variable_default(variables, source.get(tf_key, default))
            target.append((tf_resource(source.get("arn", ""), problems, where), settings))
        functions[handler] = {
            "where": where,
            "name": tf_name(str(body.get("function_name", "")), local_names),
            "binary": body.get("binary"),
            "memory": body.get("memory_size", function_defaults.get("memory_size")),
            "timeout": body.get("timeout", function_defaults.get("timeout")),
            "env": shared_env | set(own_env),
            "grants": grants,
            "routes": set(),
            "streams": streams,
            "queues": queues,
            "schedules": [],
        }
    attach_routes(modules, module_handler, functions, problems)
    attach_schedules(modules, variables, module_handler, functions, problems)
    return functions


def shared_statement(locals_, statement, problems, where):
    """A statement given as a reference to a shared one (local.grant.x), resolved."""
    ref = reference(statement)
    if ref is None:
        return statement
    value = locals_
    path = ref.split(".")
    for key in path[1:] if path[0] == "local" else [None]:
        value = value.get(key) if isinstance(value, dict) and key is not None else None
    if not isinstance(value, dict):
        problems.append(f"{where}: statement {ref} is not a statement in the stack's locals")
        return {}
    return value


def referenced_module(expression):
    ref = reference(expression) or ""
    parts = ref.split(".")
    return parts[1] if len(parts) >= 2 and parts[0] == "module" else None


def attach_routes(modules, module_handler, functions, problems):
    for module_name, body in modules.items():
        if not str(body.get("source", "")).rstrip("/").endswith("/api"):
            continue
        targets = {}
        for key, target in (body.get("functions") or {}).items():
            targets[key] = module_handler.get(referenced_module(target.get("invoke_arn")))
        for key, route in (body.get("routes") or {}).items():
            handler = targets.get(route.get("function"))
            if handler not in functions:
                problems.append(f"terraform module.{module_name} route {key}: function {route.get('function')!r} is no function module")
                continue
            functions[handler]["routes"].add((str(route.get("method")).upper(), route.get("path"), bool(route.get("authorized"))))


def attach_schedules(modules, variables, module_handler, functions, problems):
    for module_name, body in modules.items():
        if not str(body.get("source", "")).rstrip("/").endswith("/schedules"):
            continue
        for key, schedule in (body.get("schedules") or {}).items():
            handler = module_handler.get(referenced_module(schedule.get("function_arn")))
            if handler != key:
                problems.append(f"terraform module.{module_name} schedule {key}: invokes {handler!r}, not {key!r}")
            if handler not in functions:
                continue
            expression = variable_default(variables, schedule.get("expression"))
            functions[handler]["schedules"].append((expression, schedule.get("maximum_retry_attempts")))


# ---------------------------------------------------------------- comparisons


def compare_functions(template, stack, function_module, problems):
    cfn = template_functions(template, problems)
    tf = terraform_functions(stack, function_module, problems)
    for handler in on_both_sides("function", cfn, tf, problems):
        a, b = cfn[handler], tf[handler]
        label = f"function {handler} ({a['where']} / {b['where']})"
        for field in ("name", "binary", "memory", "timeout"):
            if not same(a[field], b[field]):
                problems.append(f"{label}: {field} is {a[field]!r} in the template, {b[field]!r} in terraform")
        for field, what in (("env", "environment variable"), ("grants", "grant"), ("routes", "route")):
            for item in sorted(a[field] - b[field], key=str):
                problems.append(f"{label}: {what} {fmt(item)} only in template.yaml")
            for item in sorted(b[field] - a[field], key=str):
                problems.append(f"{label}: {what} {fmt(item)} only in terraform")
        for field, what in (("streams", "stream source"), ("queues", "queue source"), ("schedules", "schedule")):
            left = sorted(normalise(x) for x in a[field])
            right = sorted(normalise(x) for x in b[field])
            if left != right:
                problems.append(f"{label}: {what} {left} in the template, {right} in terraform")


def fmt(item):
    """A grant as 'action on resource [if conditions]'; anything else as repr."""
    if isinstance(item, tuple) and len(item) == 3 and isinstance(item[2], tuple):
        action, res, conditions = item
        return f"{action} on {res}" + (f" if {list(conditions)}" if conditions else "")
    return repr(item)


def normalise(value):
    if isinstance(value, dict):
        return tuple(sorted((k, normalise(v)) for k, v in value.items()))
    if isinstance(value, (list, tuple)):
        return tuple(normalise(v) for v in value)
    return str(value).lower() if isinstance(value, bool) else str(value)


def compare_tables(template, data, problems):
    cfn_tables = {}
    for logical_id, resource in template.get("Resources", {}).items():
        if resource.get("Type") != "AWS::DynamoDB::Table":
            continue
        props = resource.get("Properties", {})
        keys = {k["KeyType"]: k["AttributeName"] for k in props.get("KeySchema", [])}
        gsis = {}
        for gsi in props.get("GlobalSecondaryIndexes", []) or []:
            gkeys = {k["KeyType"]: k["AttributeName"] for k in gsi.get("KeySchema", [])}
            projection = gsi.get("Projection", {})
            gsis[gsi["IndexName"]] = (
                gkeys.get("HASH"),
                gkeys.get("RANGE"),
                projection.get("ProjectionType"),
                tuple(sorted(projection.get("NonKeyAttributes", []) or [])),
            )
        ttl = props.get("TimeToLiveSpecification") or {}
        cfn_tables[cfn_name(props.get("TableName"))] = {
            "where": f"template {logical_id}",
            "billing": props.get("BillingMode"),
            "hash": keys.get("HASH"),
            "range": keys.get("RANGE"),
            "attributes": {a["AttributeName"]: a["AttributeType"] for a in props.get("AttributeDefinitions", [])},
            "gsis": gsis,
            "stream": (props.get("StreamSpecification") or {}).get("StreamViewType"),
            "ttl": ttl.get("AttributeName") if ttl.get("Enabled") else None,
            "pitr": bool((props.get("PointInTimeRecoverySpecification") or {}).get("PointInTimeRecoveryEnabled")),
        }
    tf_tables = {}
    for name, body in resources(data, "aws_dynamodb_table").items():
        attributes = {a.get("name"): a.get("type") for a in body.get("attribute", [])}
        for dynamic in body.get("dynamic", []):
            for label, spec in dynamic.items():
                if label != "attribute":
                    continue
                content = (spec.get("content") or [{}])[0]
                for item in spec.get("for_each", []):
                    attr_name = item if content.get("name") == "${attribute.value}" else content.get("name")
                    attributes[attr_name] = content.get("type")
        gsis = {}
        for gsi in body.get("global_secondary_index", []):
            gsis[gsi.get("name")] = (
                gsi.get("hash_key"),
                gsi.get("range_key"),
                gsi.get("projection_type"),
                tuple(sorted(gsi.get("non_key_attributes", []) or [])),
            )
        ttl = (body.get("ttl") or [{}])[0]
        pitr = (body.get("point_in_time_recovery") or [{}])[0]
        tf_tables[tf_name(body.get("name", ""), {})] = {
            "where": f"terraform aws_dynamodb_table.{name}",
            "billing": body.get("billing_mode"),
            "hash": body.get("hash_key"),
            "range": body.get("range_key"),
            "attributes": attributes,
            "gsis": gsis,
            "stream": body.get("stream_view_type") if body.get("stream_enabled") in (True, "true") else None,
            "ttl": ttl.get("attribute_name") if ttl.get("enabled") in (True, "true") else None,
            "pitr": pitr.get("enabled") in (True, "true"),
        }
    compare_named("table", cfn_tables, tf_tables, problems)


def compare_queues(template, messaging, problems):
    resources_ = template.get("Resources", {})
    cfn_queues = {}
    for logical_id, resource in resources_.items():
        if resource.get("Type") != "AWS::SQS::Queue":
            continue
        props = resource.get("Properties", {})
        redrive = props.get("RedrivePolicy") or {}
        target = cfn_resource(redrive.get("deadLetterTargetArn")) if redrive else None
        dead_letters = cfn_name(resources_[target]["Properties"]["QueueName"]) if target in resources_ else target
        cfn_queues[cfn_name(props.get("QueueName"))] = {
            "where": f"template {logical_id}",
            "visibility_timeout": props.get("VisibilityTimeout", 30),
            "dead_letters": dead_letters,
        }
    tf_queues = {}
    bodies = resources(messaging, "aws_sqs_queue")
    names = {label: tf_name(body.get("name", ""), {}) for label, body in bodies.items()}
    for label, body in bodies.items():
        redrive = body.get("redrive_policy")
        dead_letters = None
        if redrive:
            match = re.search(r"aws_sqs_queue\.([a-z_0-9]+)\.arn", str(redrive))
            dead_letters = names.get(match.group(1)) if match else f"<unreadable {redrive}>"
        tf_queues[names[label]] = {
            "where": f"terraform aws_sqs_queue.{label}",
            "visibility_timeout": body.get("visibility_timeout_seconds", 30),
            "dead_letters": dead_letters,
        }
    compare_named("queue", cfn_queues, tf_queues, problems)


def on_both_sides(kind, cfn, tf, problems):
    """The names both sides have, in order; a name on one side only is a problem."""
    for name in sorted(set(cfn) - set(tf)):
        problems.append(f"{kind} {name} ({cfn[name]['where']}): missing in terraform")
    for name in sorted(set(tf) - set(cfn)):
        problems.append(f"{kind} {name} ({tf[name]['where']}): missing in template.yaml")
    return sorted(set(cfn) & set(tf))


def compare_named(kind, cfn, tf, problems):
    for name in on_both_sides(kind, cfn, tf, problems):
        a, b = cfn[name], tf[name]
        for field in a:
            if field == "where" or normalise(a[field]) == normalise(b[field]):
                continue
            if isinstance(a[field], dict) and isinstance(b[field], dict):
                # Attributes and indexes: name the one that differs.
                for key in sorted(set(a[field]) | set(b[field])):
                    left, right = a[field].get(key), b[field].get(key)
                    if normalise(left) != normalise(right):
                        problems.append(f"{kind} {name}: {field} {key} is {left!r} in the template, {right!r} in terraform")
            else:
                problems.append(f"{kind} {name}: {field} is {a[field]!r} in the template, {b[field]!r} in terraform")


def compare_parameters(template, stack, problems):
    variables = blocks(stack, "variable")
    for name, parameter in template.get("Parameters", {}).items():
        var_name = snake(name)
        variable = variables.get(var_name)
        if variable is None:
            problems.append(f"parameter {name}: no variable {var_name} in the stack module")
            continue
        if not same(parameter.get("Default"), variable.get("default")):
            problems.append(
                f"parameter {name}: default {parameter.get('Default')!r} in the template, {variable.get('default')!r} in terraform"
            )
        if bool(parameter.get("NoEcho")) != (variable.get("sensitive") in (True, "true")):
            problems.append(f"parameter {name}: NoEcho and variable {var_name}'s sensitive differ")


def main(template_path, infrastructure):
    template = load_template(template_path)
    modules = os.path.join(infrastructure, "modules")
    stack = load_hcl_dir(os.path.join(modules, "stack"))
    if not stack:
        print(f"{infrastructure}: no Terraform in modules/stack", file=sys.stderr)
        return 1
    problems = []
    compare_functions(template, stack, load_hcl_dir(os.path.join(modules, "function")), problems)
    compare_tables(template, load_hcl_dir(os.path.join(modules, "data")), problems)
    compare_queues(template, load_hcl_dir(os.path.join(modules, "messaging")), problems)
    compare_parameters(template, stack, problems)
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        print(f"{len(problems)} difference(s) between {template_path} and {infrastructure}", file=sys.stderr)
        return 1
    print(f"{infrastructure}: functions, grants, routes, event sources, schedules, tables, queues and parameters match {template_path}")
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 3:
        print(__doc__.strip().splitlines()[-2], file=sys.stderr)
        sys.exit(2)
    sys.exit(main(sys.argv[1], sys.argv[2]))
