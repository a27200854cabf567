"""Start real services on 127.0.0.1 from pinned PyPI wheels and supervise the pipeline."""
