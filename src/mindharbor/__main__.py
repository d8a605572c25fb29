"""`python -m mindharbor` is the same as the `mindharbor` command."""

from mindharbor.cli import main

if __name__ == "__main__":
    main()
