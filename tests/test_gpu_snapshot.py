"""Who else is on the GPU: the snapshot's reading of nvidia-smi, and what it says without a GPU."""

from __future__ import annotations

import os

import pytest
import torch

from twinrun.env import gpu_snapshot, parse_nvidia_smi
from twinrun.env._gpu import _with_others

GPUS = "0, NVIDIA H100 80GB HBM3, 81559, 12030, GPU-aaa\n1, NVIDIA H100 80GB HBM3, 81559, 4, GPU-bbb\n"
APPS = "GPU-aaa, 4242, python, 11000\nGPU-aaa, 77, [Not Found], [N/A]\n"


def test_nvidia_smi_output_is_read_per_device_with_its_processes():
    devices = parse_nvidia_smi(GPUS, APPS)
    assert [d["index"] for d in devices] == [0, 1]
    assert devices[0]["total_bytes"] == 81559 * 2**20 and devices[0]["used_bytes"] == 12030 * 2**20
    assert devices[0]["processes"][0] == {"pid": 4242, "name": "python", "used_bytes": 11000 * 2**20}
    assert devices[0]["processes"][1]["used_bytes"] is None and devices[1]["processes"] == []
    mine = _with_others(parse_nvidia_smi(GPUS, APPS), 4242)
    assert mine[0]["used_by_others_bytes"] == (12030 - 11000) * 2**20
    assert [p["pid"] for p in mine[0]["other_processes"]] == [77]


def test_without_a_gpu_it_says_why_and_reads_nothing():
    assert gpu_snapshot("cpu") == {"reason": "the run is on cpu, not a GPU"}


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_on_a_gpu_this_process_is_not_counted_as_another():
    torch.ones(1, device="cuda")
    snap = gpu_snapshot("cuda")
    assert snap.get("source") in ("nvml", "nvidia-smi"), snap
    assert all(p["pid"] != os.getpid() for d in snap["devices"] for p in d["other_processes"])
