"""A quiet CPU Trainer for in-process Lightning tests."""

import lightning as L


def cpu_trainer(root, steps: int, **kwargs) -> L.Trainer:
    """Trainer on the CPU for ``steps`` steps, writing under ``root``, with no logger, bar or
    summary; ``kwargs`` override or add Trainer arguments."""
    defaults = dict(
        default_root_dir=root,
        max_steps=steps,
        accelerator="cpu",
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    return L.Trainer(**(defaults | kwargs))
