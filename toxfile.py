"""tox plugin (tox 4 loads toxfile.py by itself): lets py310..py313 find
their interpreter where tox's own discovery, which only tries `python3.X`
on PATH, does not: pyenv installs whose shims answer only for the selected
version. Same search as scripts/setup-env.sh: a working `python3.X` on
PATH, else pyenv's versions/3.X.*/bin/python3.X."""
import glob
import os
import re
import shutil
import subprocess

from tox.config.loader.memory import MemoryLoader
from tox.plugin import impl


def _is_version(path, minor):
    try:
        return subprocess.run(
            [path, '-c', 'import sys; sys.exit(sys.version_info[:2] != (3, %d))' % minor],
            capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def _find_python(minor):
    on_path = shutil.which('python3.%d' % minor)
    root = os.environ.get('PYENV_ROOT', os.path.expanduser('~/.pyenv'))
    pattern = os.path.join(root, 'versions', '3.%d.*' % minor, 'bin', 'python3.%d' % minor)
    for candidate in ([on_path] if on_path else []) + sorted(glob.glob(pattern)):
        if _is_version(candidate, minor):
            return candidate
    return None


@impl
def tox_add_env_config(env_conf, state):
    match = re.fullmatch(r'py3(\d+)', env_conf.name)
    if match is None:
        return
    python = _find_python(int(match.group(1)))
    if python is not None:
        env_conf.loaders.insert(0, MemoryLoader(base_python=[python]))
