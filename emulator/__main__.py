"""Entry point: `python -m emulator --port PORT --data-dir DIR [...]`."""

from emulator.server import main

if __name__ == "__main__":
    main()
