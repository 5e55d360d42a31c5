"""``python -m zoo.fit``: the training command under the name every recipe and guide uses; the
same command as ``python -m zoo fit`` (``zoo.cli.fit``)."""

from zoo.cli.fit import run

if __name__ == "__main__":
    run()
