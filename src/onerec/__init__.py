"""onerec: end-to-end generative recommendation (OneRec) and controllable retrieval (CRM)."""

__version__ = "0.1.0"
