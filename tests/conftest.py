"""Shared fixtures: the bundled instances, loaded once per session."""

from __future__ import annotations

import pytest
from meio.instances import Instance, load


@pytest.fixture(scope="session")
def tiny() -> Instance:
    return load("tiny")


@pytest.fixture(scope="session")
def small() -> Instance:
    return load("small")
