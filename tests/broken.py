"""A deliberately broken formulation for `meio validate`'s test: its relaxation drops the
block's term in the ``>=`` linking row, so the Lagrangian "bound" can exceed the optimum of a
minimization.

`meio validate` loads this file by its path (``path/to/broken.py:make_family``), as a user's
formulation outside any package; the toy family it extends is read from ``toy.py`` beside it.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pyomo.environ as pyo


def _toy_family() -> type:
    spec = importlib.util.spec_from_file_location("meio_tests_toy", Path(__file__).with_name(
        "toy.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.ToyFamily


class DroppedTerm(_toy_family()):
    def linking_terms(self, blk, k):
        terms = super().linking_terms(blk, k)
        if blk.model().name != self.name:  # in the relaxation only
            del terms[("volume", ())]
        return terms


def make_family(seed: int) -> DroppedTerm:
    return DroppedTerm(seed, sense=pyo.minimize)
