"""`python -m runner.local`: the embedded emulator as a long-running process (see runner/app/local.py)."""

from runner.app.local import main

if __name__ == "__main__":
    raise SystemExit(main())
