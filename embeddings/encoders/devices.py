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
    autocast: str | None = None  # "bfloat16": mixed precision (GLIMPSE_INFERENCE_PRECISION=bf16)

    def usable_on(self, target) -> "RunOptions":
        """These options where `target` supports them. Pinned memory needs CUDA: on the CPU
        it is dropped with a note. Mixed precision is the precision setting's, kept anywhere."""
        if target.type == "cuda" or not self.pin_memory:
            return self
        logger.info("pin_memory not used on %s", target)
        return replace(self, pin_memory=False)


def precision() -> str:
    """"f32" or "bf16" (GLIMPSE_INFERENCE_PRECISION): what every backend computes in."""
    return settings.GLIMPSE_INFERENCE_PRECISION


def run_options(target) -> RunOptions:
    """Per-device defaults at the configured precision: a GPU wants large batches from
    page-locked memory. In f32 a GPU also leaves TF32 off, which would round convolutions
    and matrix products to 10-bit mantissas and give other vectors than a CPU worker's."""
    autocast = "bfloat16" if precision() == "bf16" else None
    if target.type == "cuda":
        import torch

        if autocast is None:
            torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
        elif not torch.cuda.is_bf16_supported():
            raise ImproperlyConfigured("GLIMPSE_INFERENCE_PRECISION=bf16: this GPU has no bf16 (it came with Ampere); use f32")
        return RunOptions(batch_size=settings.GLIMPSE_CUDA_BATCH_SIZE, pin_memory=True, autocast=autocast)
    return RunOptions(batch_size=32, autocast=autocast)
