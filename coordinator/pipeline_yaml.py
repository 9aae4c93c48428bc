"""The YAML reader of pipeline files (a PipelineParser, domain/steps/pipeline.py): PyYAML's
composed nodes carry their lines, so every problem the domain finds names FILE:LINE."""

from __future__ import annotations

from typing import Any

import yaml

from coordinator.domain.steps.pipeline import Node, PipelineInvalid


def parse_pipeline(text: str, file: str) -> Node:
    loader = yaml.SafeLoader(text)
    try:
        root = loader.get_single_node()
        if root is None:
            raise PipelineInvalid(file, 1, "the pipeline file is empty; it needs 'steps:'")
        return _convert(loader, root, file)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        problem = " ".join(p for p in (exc.context, exc.problem) if p) or "not valid YAML"
        raise PipelineInvalid(file, line, f"not valid YAML: {problem}") from None
    except yaml.YAMLError as exc:
        raise PipelineInvalid(file, 1, f"not valid YAML: {exc}") from None
    finally:
        loader.dispose()


def _convert(loader: yaml.SafeLoader, node: yaml.Node, file: str) -> Node:
    line = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        out: dict[str, Node] = {}
        for key_node, value_node in node.value:
            key: Any = loader.construct_object(key_node) if isinstance(key_node, yaml.ScalarNode) else None
            if not isinstance(key, str):
                shown = f"{key_node.value!r} (YAML reads it as {key!r}; quote it)" \
                    if isinstance(key_node, yaml.ScalarNode) else "a non-string"
                raise PipelineInvalid(file, key_node.start_mark.line + 1, f"key {shown}: keys must be strings")
            if key in out:
                raise PipelineInvalid(file, key_node.start_mark.line + 1, f"{key!r} is given twice")
            out[key] = _convert(loader, value_node, file)
        return Node(out, line)
    if isinstance(node, yaml.SequenceNode):
        return Node([_convert(loader, n, file) for n in node.value], line)
    value = loader.construct_object(node)
    if not isinstance(value, str | int | float | bool | type(None)):
        raise PipelineInvalid(file, line, f"unsupported value {node.value!r} (use strings, numbers, true/false)")
    return Node(value, line)
