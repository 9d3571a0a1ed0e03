"""`precache worker --gpu all`: one pinned worker per visible GPU, supervised, without touching CUDA here."""

import signal
import subprocess
import time

from cli.up import Restarts, terminate


def visible_gpus(env: dict) -> list[str]:
    """Return the GPU ids to pin workers to: CUDA_VISIBLE_DEVICES when set ("0,1" = two), else `nvidia-smi -L`.

    Never imports torch: CUDA initialised in this parent would hold memory on every GPU for the
    supervisor's whole life, and each worker must choose its device before it first touches CUDA.
    """
    listed = env.get("CUDA_VISIBLE_DEVICES")
    if listed is not None:
        return [d.strip() for d in listed.split(",") if d.strip() and not d.strip().startswith("-")]
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=30, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [str(i) for i, line in enumerate(line for line in out.splitlines() if line.startswith("GPU "))]


def supervise(commands: dict[str, tuple[list[str], dict]], echo) -> int:
    """Run one process per command; restart one that exits (see Restarts); stop all on Ctrl-C or SIGTERM;
    return the exit code."""
    restarts, children = Restarts(), {}
    for name, command in commands.items():
        children[name] = _spawn(command)
        restarts.started(name)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    echo(f"started {len(children)} pinned workers: {', '.join(children)}; Ctrl-C stops them all")
    try:
        while (code := _restart_exited(children, commands, restarts, echo)) is None:
            time.sleep(0.5)
        return code
    except KeyboardInterrupt:
        echo("stopping the pinned workers ...")
        return 0
    finally:
        terminate(list(children.values()))


def _restart_exited(children: dict, commands: dict, restarts: Restarts, echo) -> int | None:
    """Restart the children that exited; return the exit code to stop all with, or None to go on."""
    for name, proc in children.items():
        if proc.poll() is None:
            continue
        if not restarts.allow(name):  # it keeps dying as it starts: broken, not unlucky
            echo(f"{name} exited with code {proc.returncode} {restarts.limit} times within "
                 f"{restarts.quick_s:.0f} s of its start; stopping all")
            return proc.returncode or 1
        echo(f"{name} exited with code {proc.returncode}; restarting it")
        children[name] = _spawn(commands[name])
        restarts.started(name)
    return None


def _spawn(command: tuple[list[str], dict]) -> subprocess.Popen:
    argv, env = command
    # Own session: Ctrl-C reaches the supervisor alone, which stops each worker exactly once.
    return subprocess.Popen(argv, env=env, start_new_session=True)
