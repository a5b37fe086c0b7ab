"""A deliberately broken formulation for `meio validate`'s test: its relaxation drops the
block's term in the ``>=`` linking row, so the Lagrangian "bound" can exceed the optimum of a
minimization."""

from __future__ import annotations

import sys
from pathlib import Path

import pyomo.environ as pyo

sys.path.insert(0, str(Path(__file__).parent))
from toy import ToyFamily  # noqa: E402


class DroppedTerm(ToyFamily):
    def linking_terms(self, blk, k):
        terms = super().linking_terms(blk, k)
        if blk.model().name != self.name:  # in the relaxation only
            del terms[("volume", ())]
        return terms


def make_family(seed: int) -> DroppedTerm:
    return DroppedTerm(seed, sense=pyo.minimize)
