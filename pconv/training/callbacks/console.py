"""What a run shows on the console: the model summary without the FLOPs column (Lightning
counts FLOPs only with an ``example_input_array``, so it read 0), counting the trainable
parameters apart from frozen ones, and a progress bar that
says ``Epoch 3`` instead of ``Epoch 3/-2`` in step-based runs (``max_epochs=-1``)."""

from __future__ import annotations

from typing import Any

from lightning.pytorch.callbacks import RichModelSummary, RichProgressBar
from lightning.pytorch.utilities.model_summary import get_human_readable_count

_FLOPS = "FLOPs"


class ModelSummary(RichModelSummary):
    """Lightning's rich model summary, without FLOPs."""

    @staticmethod
    def summarize(
        summary_data: list[tuple[str, list[str]]],
        total_parameters: int,
        trainable_parameters: int,
        model_size: float,
        total_training_modes: dict[str, int],
        total_flops: int,
        **summarize_kwargs: Any,
    ) -> None:
        from rich import get_console
        from rich.table import Table

        columns = [(name, values) for name, values in summary_data if name != _FLOPS]
        table = Table(header_style=summarize_kwargs.get("header_style", "bold magenta"))
        table.add_column(" ", style="dim")
        for name, _values in columns[1:]:
            table.add_column(name, justify="right" if name == "Params" else "left")
        for row in zip(*(values for _name, values in columns), strict=True):
            table.add_row(*row)
        console = get_console()
        console.print(table)
        # What trains is the figure that matters; frozen weights (the loss's VGG-16, never
        # saved in checkpoints) are named apart instead of swelling a "total".
        frozen = total_parameters - trainable_parameters
        lines = [("Trainable params", get_human_readable_count(int(trainable_parameters)))]
        if frozen:
            lines.append(("Frozen params (not trained)", get_human_readable_count(int(frozen))))
        grid = Table.grid(expand=True)
        grid.add_column()
        for label, value in lines:
            grid.add_row(f"[bold]{label}[/]: {value}")
        console.print(grid)


class ProgressBar(RichProgressBar):
    """Lightning's rich progress bar; the epoch count only when epochs bound the run."""

    def _get_train_description(self, current_epoch: int) -> str:
        description = super()._get_train_description(current_epoch)
        if self.trainer.max_epochs is not None and self.trainer.max_epochs < 0:
            # Lightning appends f"/{max_epochs - 1}", i.e. "/-2", when only max_steps bounds it.
            description = description.replace(f"/{self.trainer.max_epochs - 1}", "", 1)
        return description
