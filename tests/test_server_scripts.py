"""The server scripts share `scripts/servers/_common.py`; loading them must not put their folder
ahead of the installed libraries: `redis.py` would shadow redis-py for kombu (Celery's broker
client) in this process and in every process it spawns (bench/universe.py's Celery run failed so)."""

import importlib
import sys

import server_scripts


def test_loading_the_server_scripts_never_shadows_redis_py():
    for name in ("postgres", "s3", "redis"):
        module = server_scripts.load(name)
        assert module.free_port() > 0
    sys.modules.pop("redis", None)
    redis = importlib.import_module("redis")
    assert hasattr(redis, "Redis") and "scripts/servers" not in redis.__file__
