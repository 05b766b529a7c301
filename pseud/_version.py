"""The version of pseud-native, written here only: setuptools reads it for
the package metadata (pyproject.toml, dynamic version) and ``pseud``
exposes it as ``pseud.__version__``."""
__version__ = '0.1.0'
