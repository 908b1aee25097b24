"""Small helpers that every part of pconv uses; they import no other part of pconv, and no torch.

- :mod:`~pconv.utils.files`: atomic writes;
- :mod:`~pconv.utils.notices`: the library notices a run filters out;
- :mod:`~pconv.utils.progress`: the tools' progress bars;
- :mod:`~pconv.utils.threads`: how many threads torch uses on the CPU;
- :mod:`~pconv.utils.choices`: names a user types that heavy modules own (tracks, baselines);
- :mod:`~pconv.utils.tool_args`: the tools' argument parsers (fast ``--help``);
- :mod:`~pconv.utils.moved`: module paths of earlier versions, still importable.
"""
