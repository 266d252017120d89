"""The package's version, written once: ``bert.__version__``, ``bert --version``, and the distribution's metadata
(pyproject.toml reads it through ``[tool.setuptools.dynamic]``), so a checkout that was never installed knows it too."""

__version__ = "0.1.0"
