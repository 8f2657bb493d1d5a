"""`python -m processors [--upgrade] [name ...]`: run processors until SIGTERM or SIGINT."""

from __future__ import annotations

import argparse
import logging
import sys
import threading

from core.settings import load_settings
from processors.db import upgrade
from processors.registry import PROCESSORS, run_processors
from processors.runtime import install_signal_handlers


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, optionally migrate, run the processors, exit 0 after a clean stop."""
    parser = argparse.ArgumentParser(prog="python -m processors")
    parser.add_argument("names", nargs="*", help=f"processors to run (default all): {', '.join(PROCESSORS)}")
    parser.add_argument("--upgrade", action="store_true", help="apply database migrations first")
    args = parser.parse_args(argv)
    settings = load_settings()
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    if args.upgrade:
        upgrade(settings.effective_database_url)
    stop_flag = threading.Event()
    install_signal_handlers(stop_flag)
    run_processors(args.names, settings, stop_flag)
    return 0


if __name__ == "__main__":
    sys.exit(main())
