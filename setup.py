"""Build of the compiled modules (ADR 0015, ADR 0019): streams' OTLP pass
(``streams._otlp_scan``), utf8 column packer (``streams._utf8_column``), span-batch packer
(``streams._pack_columns``) and service-graph join (``streams._service_graph``), ingest's
byte-level partition split (``ingest._otlp_split``), and Kafka's murmur2 (``core._murmur2``).
Their shared protobuf wire reading is ``core/protowire.pxd``, their slot offsets
``core/slots.pxd``.

Everything else is declared in pyproject.toml. The extensions are optional: where no C
compiler is at hand the install still succeeds and each runs its Python path alone (streams
says so in its log and in ``tracehouse_streams_otlp_scan_enabled``).
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            module,
            [module.replace(".", "/") + ".pyx"],
            optional=True,
            extra_compile_args=["-O2"],
        )
        for module in (
            "streams._otlp_scan",
            "streams._utf8_column",
            "streams._pack_columns",
            "streams._service_graph",
            "ingest._otlp_split",
            "core._murmur2",
        )
    ]
)
