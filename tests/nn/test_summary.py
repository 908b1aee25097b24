"""``pconv params`` prints the table's layers and the total parameter count."""

from pconv.nn import PConvUNet
from pconv.nn.summary import main


def test_prints_every_layer_and_the_total(capsys):
    assert main(["--levels", "7", "--size", "256"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines[:-1]] == [f"PConv{i}" for i in range(1, 15)]
    total = sum(p.numel() for p in PConvUNet(levels=7).parameters())
    assert lines[-1] == f"total parameters: {total:,}"


def test_bad_size_exits_2_with_one_line(capsys):
    assert main(["--size", "300"]) == 2
    err = capsys.readouterr().err.strip()
    assert "multiples of 256" in err and "\n" not in err
