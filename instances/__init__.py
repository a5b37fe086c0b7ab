"""Instances: the data model (tidy tables), validation, CSV/Parquet I/O, a generator, bundles.

>>> from meio.instances import load
>>> load("tiny").summary().set_index("item").loc["name", "value"]
'tiny'
"""

from .core import Instance
from .generator import GeneratorConfig, GeneratorError, generate, preset, preset_names
from .io import bundled_names, load, read_bundle, read_csv_dir, save, write_bundle, write_csv_dir
from .schema import TABLES, schema_markdown
from .validate import InstanceError, Problem, attainable_service, validate_tables

__all__ = [
    "TABLES", "GeneratorConfig", "GeneratorError", "Instance", "InstanceError", "Problem",
    "attainable_service", "bundled_names", "generate", "load", "preset", "preset_names",
    "read_bundle", "read_csv_dir", "save", "schema_markdown", "validate_tables", "write_bundle",
    "write_csv_dir",
]
