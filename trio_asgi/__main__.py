"""``python -m trio_asgi``: the same command as ``trio-asgi``."""

from ._cli import main

if __name__ == "__main__":
    main()
