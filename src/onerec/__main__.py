"""``python -m onerec …`` runs the ``onerec`` command line (same as ``python -m onerec.cli``)."""

from onerec.cli import main

if __name__ == "__main__":
    main()
