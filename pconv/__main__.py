"""``python -m pconv ...`` is the ``pconv`` command."""

from pconv.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
