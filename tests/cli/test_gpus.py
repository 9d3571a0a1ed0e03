"""`precache worker --gpu all` (cli/gpus.py): which GPUs get a pinned worker, and the supervisor of those workers."""

import signal
import sys

from cli.gpus import supervise, visible_gpus


def test_cuda_visible_devices_names_the_gpus_when_set():
    assert visible_gpus({"CUDA_VISIBLE_DEVICES": "0,1"}) == ["0", "1"]
    assert visible_gpus({"CUDA_VISIBLE_DEVICES": " 2 , ,-1"}) == ["2"]  # -1 and blanks hide devices
    assert visible_gpus({"CUDA_VISIBLE_DEVICES": ""}) == []  # set but empty: no GPU at all


def test_otherwise_nvidia_smi_lists_them_and_without_it_there_are_none(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    assert visible_gpus({}) == []  # no nvidia-smi on this PATH: no GPU, not an error
    smi = tmp_path / "nvidia-smi"
    smi.write_text("#!/bin/sh\necho 'GPU 0: NVIDIA H100 (UUID: GPU-a)'\necho '  MIG 1g.10gb Device 0: (UUID: MIG-b)'\n"
                   "echo 'GPU 1: NVIDIA H100 (UUID: GPU-c)'\n")
    smi.chmod(0o755)
    assert visible_gpus({}) == ["0", "1"]


def test_a_worker_that_keeps_exiting_as_it_starts_stops_the_supervisor_with_its_code(tmp_path):
    starts = tmp_path / "starts"
    argv = [sys.executable, "-c", f"open({str(starts)!r}, 'a').write('x'); raise SystemExit(3)"]
    said = []
    handlers = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    try:
        code = supervise({"gpu0": (argv, {})}, said.append)
    finally:
        signal.signal(signal.SIGINT, handlers[0])
        signal.signal(signal.SIGTERM, handlers[1])
    assert code == 3
    assert starts.read_text() == "xxx"  # started, then started again twice, then given up
    assert said[0].startswith("started 1 pinned workers: gpu0")
    assert sum("restarting it" in line for line in said) == 2 and "3 times" in said[-1]
