"""The one place Kafka client configurations are made, for every confluent-kafka client.

Every producer, consumer and admin client the project creates starts from
:func:`client_config`, so connection options (and, with secured clusters, SASL/TLS) are set
once for all of them instead of in each component.
"""

from __future__ import annotations

from typing import Any


def client_config(bootstrap: str, **options: Any) -> dict[str, Any]:
    """A confluent-kafka configuration for ``bootstrap`` plus the client's own ``options``
    (given with underscores for dots: ``group_id="g"`` is ``group.id``)."""
    config: dict[str, Any] = {"bootstrap.servers": bootstrap}
    config.update({key.replace("_", "."): value for key, value in options.items()})
    return config
