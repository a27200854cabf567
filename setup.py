"""Build of the one compiled module, ``streams._otlp_scan`` (ADR 0015).

Everything else is declared in pyproject.toml. The extension is optional: where no C compiler
is at hand the install still succeeds and streams runs its protobuf path alone, saying so in
its log and in ``tracehouse_streams_otlp_scan_enabled`` (streams/otlp_scan.py).
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "streams._otlp_scan",
            ["streams/_otlp_scan.pyx"],
            optional=True,
            extra_compile_args=["-O2"],
        )
    ]
)
