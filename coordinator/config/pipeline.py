"""``Pipeline(...)`` as configurations write it: the domain's PipelineStep reading YAML."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from coordinator.domain.steps.pipeline import DEFAULT_FILE, PipelineStep
from coordinator.pipeline_yaml import parse_pipeline


class Pipeline(PipelineStep):
    """``Pipeline(".gantry/pipeline.yml", secrets=["deploy_token"])``: the build's next steps
    come from that file of the checked-out revision. Place it after the source step, last."""

    def __init__(self, path: str = DEFAULT_FILE, *, secrets: Sequence[str] = (), **kwargs: Any) -> None:
        # The parser is chosen here, not in app.py: a step is a configuration object, made
        # when the configuration file runs.
        super().__init__(path, parser=parse_pipeline, secrets=secrets, **kwargs)
