"""``python -m rmdaemon.config --reference``: print docs/config-reference.md."""

from rmdaemon.config.reference import main

if __name__ == "__main__":
    raise SystemExit(main())
