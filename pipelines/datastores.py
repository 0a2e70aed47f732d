"""Which well-known datastore an image is, by its name: what lint, init and harden treat differently.

A datastore holds state and answers only its clients: it belongs on an internal
network, publishes no port, and is never rolled like a stateless service. The
image's last path component, before its tag or digest, names it; an image named
by a variable is no known datastore.
"""

from __future__ import annotations

# Image name (last path component, before the tag) -> the datastore it is.
KINDS: dict[str, str] = {
    "postgres": "postgres",
    "postgresql": "postgres",
    "postgis": "postgres",
    "timescaledb": "postgres",
    "mysql": "mysql",
    "mariadb": "mysql",
    "percona": "mysql",
    "redis": "redis",
    "valkey": "redis",
    "keydb": "redis",
    "redis-stack": "redis",
    "redis-stack-server": "redis",
    "mongo": "mongo",
    "mongodb": "mongo",
    "rabbitmq": "rabbitmq",
    "memcached": "memcached",
    "elasticsearch": "elasticsearch",
    "opensearch": "elasticsearch",
    # State without a golden counterpart: still kept off published networks and never rolled.
    **{
        name: name
        for name in (
            "cassandra",
            "scylla",
            "couchdb",
            "couchbase",
            "clickhouse",
            "influxdb",
            "neo4j",
            "nats",
            "etcd",
            "zookeeper",
            "kafka",
            "cockroach",
            "minio",
            "mssql",
            "oracle",
        )
    },
}


def image_name(image: str) -> str:
    """``postgres`` for ``docker.io/library/postgres:16-alpine@sha256:...``; empty for an image in a variable."""
    last = image.lower().split("@", 1)[0].rsplit("/", 1)[-1]
    name = last.split(":", 1)[0]
    return "" if "$" in name else name


def kind_of(image: str) -> str:
    """The datastore ``image`` is (``postgres``, ``redis``, ...), or an empty string."""
    name = image_name(image)
    return KINDS.get(name) or KINDS.get(name.removesuffix("-server"), "")


def major_version(image: str) -> str:
    """The major version a datastore image's tag asks for (``16`` of ``postgres:16.4-alpine``), or empty."""
    last = image.split("@", 1)[0].rsplit("/", 1)[-1]
    _, _, tag = last.partition(":")
    head = tag.split("-", 1)[0].split(".", 1)[0]
    return head if head.isdigit() else ""
