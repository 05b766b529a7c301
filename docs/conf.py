"""Sphinx configuration of the pseud-native documentation.

Build with ``bash scripts/docs.sh`` (warnings are errors). The API page
imports the built extension: this file puts ``build/plain/lib`` (made by
``scripts/setup-env.sh``'s ``pseud_setup``) first on ``sys.path`` unless
``PSEUD_DOCS_LIB`` names another build: without the compiled extension
there is no API page to generate.
"""
import os
import sys
import types

from docutils import nodes
from docutils.parsers.rst.directives.images import Image

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# a relative PSEUD_DOCS_LIB is taken from the repository root (sphinx runs
# this file from docs/)
LIB = os.path.join(ROOT, os.environ.get('PSEUD_DOCS_LIB') or os.path.join('build', 'plain', 'lib'))
sys.path.insert(0, LIB)

import pseud  # noqa: E402  (the built package, for autodoc and the version)

project = 'pseud-native'
author = 'the pseud-native authors'
copyright = 'the pseud-native authors'
release = version = pseud.__version__

extensions = ['sphinx.ext.autodoc']
autodoc_member_order = 'bysource'
autodoc_default_options = {}   # each directive in api.rst says what it shows
root_doc = 'index'
exclude_patterns = ['_build']
html_theme = 'alabaster'
html_title = 'pseud-native %s' % release
# every cross-reference must resolve (-n): names outside this project are
# written as literals, not as references
nitpicky = True
# the type variables and protocols that annotate the Python modules are
# private helpers (pseud/_typing.py), not part of the documented API
nitpick_ignore = [('py:class', name) for name in (
    'pseud._typing.F', 'pseud._typing.RegisterRPC', 'pseud._typing.Registry',
    'pseud.utils.C')]
# the C docstrings open with 'name(args) -> what it returns' written for
# people, not as annotations: keep that line as text (C signatures come from
# __text_signature__ where the type has one)
autodoc_docstring_signature = False


class OptionalImage(Image):
    """``.. optional-image:: path``: the image when the file exists, else a
    paragraph saying how to make it (the benchmark chart is produced by
    ``bash bench/run.sh --plot`` and is not in a fresh clone)."""

    def run(self):
        env = self.state.document.settings.env
        _, path = env.relfn2path(self.arguments[0], env.docname)
        if os.path.exists(path):
            return super().run()
        para = nodes.paragraph()
        para += nodes.Text('No chart in this build: ')
        para += nodes.literal(text=os.path.relpath(path, ROOT))
        para += nodes.Text(' does not exist yet. Run ')
        para += nodes.literal(text='bash bench/run.sh --plot')
        para += nodes.Text(', then build the docs again.')
        return [para]


def _is_native(obj):
    """True for what the C extension defines (its docstrings are plain
    text, not reStructuredText)."""
    if isinstance(obj, type):
        return obj.__module__ == 'pseud._pseud'
    owner = getattr(obj, '__objclass__', None)   # C methods, getsets, members
    if owner is not None:
        return getattr(owner, '__module__', None) == 'pseud._pseud'
    if isinstance(obj, types.BuiltinFunctionType):
        return getattr(obj, '__module__', None) == 'pseud._pseud'
    return False


def _plain_docstring(app, what, name, obj, options, lines):
    """Show C docstrings literally: their ``*args``, ``a|b`` and
    ``name_`` would otherwise be read as markup."""
    if not _is_native(obj):
        return
    for i, line in enumerate(lines):
        for char in '\\*|_`':
            line = line.replace(char, '\\' + char)
        lines[i] = line


def setup(app):
    app.connect('autodoc-process-docstring', _plain_docstring)
    app.add_directive('optional-image', OptionalImage)
