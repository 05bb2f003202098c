"""Where the torch towers run, and how: the options a CUDA device gets and a CPU does not.

torch is imported only when a torch tower or training asks for a device: settings, the
web process's keyword searches and the exported CPU backends never need it.
"""
import logging
import os
from dataclasses import dataclass, replace

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

logger = logging.getLogger("glimpse.encoders")


def cuda_possible() -> bool:
    """Whether asking torch about CUDA can say yes. Without an NVIDIA driver it cannot, and
    "auto" then settles on the CPU without the seconds that importing torch costs."""
    return os.path.exists("/proc/driver/nvidia/version") or os.path.exists("/dev/nvidiactl")


def device_type() -> str:
    """"cpu" or "cuda" (or another torch device type), from GLIMPSE_DEVICE."""
    choice = settings.GLIMPSE_DEVICE
    if choice == "auto":
        return device().type if cuda_possible() else "cpu"
    return device().type


def device():
    import torch

    choice = settings.GLIMPSE_DEVICE
    if choice == "auto":
        return torch.device("cuda" if cuda_possible() and torch.cuda.is_available() else "cpu")
    try:
        return torch.device(choice)
    except RuntimeError:
        raise ImproperlyConfigured(f"GLIMPSE_DEVICE={choice!r} is not a torch device (try cpu, cuda or auto)") from None


@dataclass(frozen=True)
class RunOptions:
    """How a torch tower runs its forward passes on one device."""

    batch_size: int = 32  # images or texts per forward pass
    channels_last: bool = True  # NHWC convolutions: faster on CPU and on tensor cores alike
    pin_memory: bool = False  # page-locked host batches, copied to the GPU without blocking
    autocast: str | None = None  # "float16" or "bfloat16": mixed precision on CUDA

    def usable_on(self, target) -> "RunOptions":
        """These options where `target` supports them. Pinned memory and half precision need
        CUDA; on the CPU they would fail (pinning) or change the vectors (float16), so they
        are dropped with a note, and the CPU keeps float32."""
        if target.type == "cuda":
            return self
        dropped = [name for name in ("pin_memory", "autocast") if getattr(self, name)]
        if dropped:
            logger.info("%s not used on %s", " and ".join(dropped), target)
        return replace(self, pin_memory=False, autocast=None)


def run_options(target) -> RunOptions:
    """Per-device defaults: a GPU wants large batches in half precision; bfloat16 where the
    card has it (no overflow to guard against), float16 before Ampere."""
    if target.type == "cuda":
        import torch

        half = "bfloat16" if torch.cuda.is_bf16_supported() else "float16"
        return RunOptions(batch_size=settings.GLIMPSE_CUDA_BATCH_SIZE, pin_memory=True, autocast=half)
    return RunOptions(batch_size=32)
