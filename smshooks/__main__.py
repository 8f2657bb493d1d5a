"""`python -m smshooks ...`: the same CLI as the `smshooks` command, for a Python with no scripts on PATH."""

from smshooks.cli import main

if __name__ == "__main__":
    main()
