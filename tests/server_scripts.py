"""The server scripts (`scripts/servers/<name>.py`) as modules for the tests that start a server."""

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

SERVERS = Path(__file__).resolve().parents[1] / "scripts" / "servers"


def load(name: str) -> ModuleType:
    """`scripts/servers/<name>.py`, loaded by path: scripts/ is not a package, and `redis.py` must not
    shadow redis-py."""
    spec = importlib.util.spec_from_file_location(f"alvh_servers_{name}", SERVERS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve annotations through sys.modules
    spec.loader.exec_module(module)
    return module
