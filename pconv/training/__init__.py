"""Training: the LightningModule, our LightningCLI, the pre-flight checks and the callbacks.

- :mod:`~pconv.training.module`: :class:`InpaintingModule`, the PConv U-Net and its loss;
- :mod:`~pconv.training.cli`: our LightningCLI (``pconv fit|validate|test|predict``);
- :mod:`~pconv.training.preflight`: checks of a parsed config before anything is written;
- :mod:`~pconv.training.callbacks`: fine-tune switch, checkpoints, image grids, interrupts.
"""
