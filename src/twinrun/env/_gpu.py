"""Who else is on the GPU: memory used by other processes at a run's start and end.

Two runs on a shared GPU are not comparable in speed, and not always in numbers
(memory pressure changes which kernels and algorithms are chosen). Where a CUDA
device exists, :func:`gpu_snapshot` reads, through NVML (``pynvml``, from the
``nvidia-ml-py`` package) or else ``nvidia-smi``, each device's used and total
memory and the compute processes on it, with their names when readable; memory
not used by this process is reported as used by others. Without a GPU, or
without either tool, it says why and reads nothing. It never initialises CUDA.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from typing import Any

__all__ = ["gpu_snapshot", "parse_nvidia_smi"]


def _process_name(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/comm", encoding="utf-8") as f:
            return f.read().strip() or None
    except OSError:
        return None


def _with_others(devices: list[dict[str, Any]], me: int) -> list[dict[str, Any]]:
    for d in devices:
        mine = sum(p["used_bytes"] or 0 for p in d["processes"] if p["pid"] == me)
        d["used_by_others_bytes"] = max(0, d["used_bytes"] - mine)
        d["other_processes"] = [p for p in d["processes"] if p["pid"] != me]
    return devices


def _nvml() -> list[dict[str, Any]]:
    import pynvml

    pynvml.nvmlInit()
    try:
        devices = []
        for i in range(pynvml.nvmlDeviceGetCount()):
            h = pynvml.nvmlDeviceGetHandleByIndex(i)
            mem = pynvml.nvmlDeviceGetMemoryInfo(h)
            procs = [
                {
                    "pid": int(p.pid),
                    "name": _process_name(int(p.pid)),
                    "used_bytes": None if p.usedGpuMemory is None else int(p.usedGpuMemory),
                }
                for p in pynvml.nvmlDeviceGetComputeRunningProcesses(h)
            ]
            name = pynvml.nvmlDeviceGetName(h)
            devices.append(
                {
                    "index": i,
                    "name": name.decode() if isinstance(name, bytes) else str(name),
                    "total_bytes": int(mem.total),
                    "used_bytes": int(mem.used),
                    "processes": procs,
                }
            )
        return devices
    finally:
        pynvml.nvmlShutdown()


def parse_nvidia_smi(gpus: str, apps: str) -> list[dict[str, Any]]:
    """Devices from ``nvidia-smi --query-gpu=index,name,memory.total,memory.used,uuid`` and
    ``--query-compute-apps=gpu_uuid,pid,process_name,used_memory`` (both ``--format=csv,noheader,nounits``,
    memory in MiB)."""
    mib = 2**20
    devices: list[dict[str, Any]] = []
    by_uuid: dict[str, dict[str, Any]] = {}
    for line in gpus.strip().splitlines():
        index, name, total, used, uuid = (part.strip() for part in line.split(","))
        d = {
            "index": int(index),
            "name": name,
            "total_bytes": int(float(total) * mib),
            "used_bytes": int(float(used) * mib),
            "processes": [],
        }
        devices.append(d)
        by_uuid[uuid] = d
    for line in apps.strip().splitlines():
        uuid, pid, pname, used = (part.strip() for part in line.split(","))
        if uuid in by_uuid:
            by_uuid[uuid]["processes"].append(
                {
                    "pid": int(pid),
                    "name": pname or _process_name(int(pid)),
                    "used_bytes": int(float(used) * mib) if used.replace(".", "", 1).isdigit() else None,
                }
            )
    return devices


def _smi() -> list[dict[str, Any]]:
    def run(query: str) -> str:
        return subprocess.run(
            ["nvidia-smi", query, "--format=csv,noheader,nounits"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout

    return parse_nvidia_smi(
        run("--query-gpu=index,name,memory.total,memory.used,uuid"),
        run("--query-compute-apps=gpu_uuid,pid,process_name,used_memory"),
    )


def gpu_snapshot(device: str) -> dict[str, Any]:
    """``{"source", "devices": [...]}`` for a CUDA ``device``; ``{"reason"}`` when nothing can be read."""
    if not device.startswith("cuda"):
        return {"reason": f"the run is on {device}, not a GPU"}
    try:
        return {"source": "nvml", "devices": _with_others(_nvml(), os.getpid())}
    except Exception as exc:  # noqa: BLE001 - no pynvml, no driver: try nvidia-smi
        nvml_error = f"{type(exc).__name__}: {exc}"
    if shutil.which("nvidia-smi") is None:
        return {
            "reason": f"NVML is not readable ({nvml_error}; pip install nvidia-ml-py) and nvidia-smi is not installed"
        }
    try:
        return {"source": "nvidia-smi", "devices": _with_others(_smi(), os.getpid())}
    except (subprocess.SubprocessError, OSError, ValueError) as exc:
        return {"reason": f"nvidia-smi failed: {type(exc).__name__}: {exc}"}
