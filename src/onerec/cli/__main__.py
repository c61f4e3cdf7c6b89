"""``python -m onerec.cli …`` runs the ``onerec`` command line (e.g. under
``torchrun --nproc-per-node 2 -m onerec.cli train CONFIG``)."""

from onerec.cli import main

if __name__ == "__main__":
    main()
