"""The evaluation battery: predict once per dataset, run the configured checks, build the EvalResult.

The stages (``load_stage`` ... ``assemble``) and the values passed between them live in ``battery.run``.
"""

from evalsuite.battery.config import CHECKS, BatteryConfig, parse_list
from evalsuite.battery.merge import merge_shards
from evalsuite.battery.options import EvalOptions
from evalsuite.battery.run import DEFAULT_OOD, evaluate, evaluate_with_arrays, load_arrays, save_result
from evalsuite.battery.summarize import summarize

__all__ = [
    "CHECKS",
    "DEFAULT_OOD",
    "BatteryConfig",
    "EvalOptions",
    "evaluate",
    "evaluate_with_arrays",
    "load_arrays",
    "merge_shards",
    "parse_list",
    "save_result",
    "summarize",
]
