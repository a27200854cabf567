"""Build of streams' two compiled modules (ADR 0015): the OTLP pass (``streams._otlp_scan``)
and the utf8 column packer (``streams._utf8_column``).

Everything else is declared in pyproject.toml. The extensions are optional: where no C
compiler is at hand the install still succeeds and streams runs its Python paths alone, saying
so in its log and in ``tracehouse_streams_otlp_scan_enabled`` (streams/otlp_scan.py).
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            f"streams.{name}",
            [f"streams/{name}.pyx"],
            optional=True,
            extra_compile_args=["-O2"],
        )
        for name in ("_otlp_scan", "_utf8_column")
    ]
)
