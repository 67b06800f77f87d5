"""Reads CloudFormation/SAM templates with PyYAML's safe loader: the
intrinsic-function tags (!GetAtt, !Sub, !Ref, ...) become one-key mappings
such as {"GetAtt": "EventsTable.Arn"}, so checks can read them as data."""

import yaml


class CloudFormationLoader(yaml.SafeLoader):
    """Reads the intrinsic-function tags (!GetAtt, !Sub, ...) as plain data."""


def _tagged(loader, tag, node):
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return {tag: value}


CloudFormationLoader.add_multi_constructor("!", _tagged)


def load_template(path):
    with open(path, encoding="utf-8") as f:
        return yaml.load(f, Loader=CloudFormationLoader)


def as_list(value):
    return value if isinstance(value, list) else [value]
