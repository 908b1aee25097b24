"""``--device``: a torch device name checked before any work, in one line when it cannot be used."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch


def resolve_device(name: str | None) -> torch.device:
    """The device ``--device name`` means (None: ``cuda`` when a GPU is visible, else ``cpu``).

    Raises ValueError naming the flag and what to do for a name torch does not know (``bogus``)
    or a device this machine lacks (``cuda`` without a GPU, ``cuda:7`` with one).
    """
    import torch

    if name is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ValueError(f"--device {name} is not a device name; use cpu, cuda or cuda:N") from None
    try:
        torch.empty(0, device=device)  # a device that is named right but absent fails here
    except (RuntimeError, AssertionError) as error:  # AssertionError: torch built without CUDA
        # torch's first sentence: the rest lists backends or download pages.
        reason = (str(error).strip() or "unavailable").splitlines()[0].split(". ")[0]
        raise ValueError(
            f"--device {name} cannot be used on this machine ({reason}); use --device cpu"
        ) from None
    return device
