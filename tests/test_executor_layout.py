"""The executor's packages keep every public name where users import it, and light modules stay light."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import pytest

from executor.server.binary import server_command

# The public names of the modules that became packages, as they were before the split.
PUBLIC = {
    "executor": ["execute", "Executor", "ExecutorSettings", "ExecutionResult", "TransientError"],
    "executor.client": ["Executor", "ExecutionResult", "execute", "task_timeouts", "thread_share"],
    "executor.server": ["EmbeddedRedis", "RedisEndpoint", "check_url_security", "connect", "find_server_binary",
                        "redacted_url", "redis_endpoint", "sweep_stale_tmpdirs"],
    "executor.limits": ["AppliedLimits", "CpuMode", "LimitSupport", "MemoryMode", "ResourceLimiter",
                        "THREAD_ENV_VARS", "PREFIX", "DEFAULT_PERIOD_US", "apply_limits", "apply_thread_limits",
                        "attach", "cleanup_stale_cgroups", "create_limits", "probe_limits", "release",
                        "thread_env"],
    "executor.launcher": ["Launcher", "run_launcher", "new_launcher_id"],
    "executor.run": ["Run", "thread_share", "task_timeouts"],
}


@pytest.mark.parametrize("module", sorted(PUBLIC))
def test_public_names_stay_importable_where_users_import_them(module: str) -> None:
    mod = importlib.import_module(module)
    missing = [name for name in PUBLIC[module] if not hasattr(mod, name)]
    assert not missing, f"{module} lost {missing}"


def test_importing_the_limits_loads_neither_redis_nor_numpy() -> None:
    # Worker set-up code and ``planlab`` provenance import the limits alone: they must stay light.
    code = ("import sys, executor.limits, executor.pids\n"
            "heavy = sorted(m for m in ('redis', 'numpy', 'pandas', 'planning') if m in sys.modules)\n"
            "print(','.join(heavy))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_the_server_command_listens_on_tcp_only_when_asked() -> None:
    unix_only = server_command(Path("/bin/valkey-server"), "/tmp/f", "/tmp/f/redis.sock", port=0, bind=None,
                               password=None, config={})
    assert unix_only[:3] == ["/bin/valkey-server", "--port", "0"]
    assert "--bind" not in unix_only and "--requirepass" not in unix_only
    assert unix_only[unix_only.index("--save") + 1] == "" and unix_only[unix_only.index("--appendonly") + 1] == "no"
    tcp = server_command(Path("/bin/valkey-server"), "/tmp/f", "/tmp/f/redis.sock", port=6400, bind="::1",
                         password="pw", config={"maxmemory": "1gb", "--hz": 50})
    assert tcp[tcp.index("--bind") + 1] == "::1" and tcp[tcp.index("--requirepass") + 1] == "pw"
    assert tcp[-4:] == ["--maxmemory", "1gb", "--hz", "50"]
