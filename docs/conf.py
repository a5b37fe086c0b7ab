"""Sphinx configuration: Markdown pages (MyST) and an API reference from the docstrings.

Builds offline: ``python -m sphinx -b html docs docs/_build/html``.
"""

project = "meio"
author = "the meio developers"
extensions = ["myst_parser", "sphinx.ext.autodoc", "sphinx.ext.viewcode"]
source_suffix = {".md": "markdown"}
exclude_patterns = ["_build", "tutorial_out"]
myst_enable_extensions = ["dollarmath"]
myst_heading_anchors = 3
autodoc_member_order = "bysource"
autodoc_default_options = {"members": True, "show-inheritance": True}
html_theme = "alabaster"
html_title = "meio"
suppress_warnings = ["myst.xref_missing"]
