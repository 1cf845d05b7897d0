"""Readers of the tables that say how the mat is reached: [mqtt] and [web].

Same rules as `load`, which calls them: every problem names its key, its
value and what is allowed; addresses are checked here, never resolved (no DNS
while the config is read).
"""

import ipaddress

from matpi.config.reader import Table
from matpi.config.settings import HOST_ORDERS, BrokerAddress, DeviceConfig, MqttConfig, WebConfig


def mqtt_table(t: Table, device: DeviceConfig) -> MqttConfig:
    """[mqtt]: one broker (`host`) or a cluster (`hosts`), the login, TLS and topics."""
    port = t.integer("port", 1883, low=1, high=65535)
    config = MqttConfig(
        enabled=t.boolean("enabled", False),
        host=t.string("host", "localhost"),
        port=port,
        hosts=_broker_addresses(t, port),
        host_order=t.string("host_order", "in_order", choices=HOST_ORDERS),
        client_id=t.string("client_id", f"matpi-{device.id}"),
        keepalive_s=t.integer("keepalive_s", 30, low=5, high=3600),
        username=t.optional_string("username"),
        password=t.optional_string("password"),
        password_file=t.optional_string("password_file"),
        tls=t.boolean("tls", False),
        ca_file=t.optional_string("ca_file"),
        cert_file=t.optional_string("cert_file"),
        key_file=t.optional_string("key_file"),
        base_topic=t.string("base_topic", "matpi"),
        discovery=t.boolean("discovery", True),
        discovery_prefix=t.string("discovery_prefix", "homeassistant"),
    )
    for key, topic in (("base_topic", config.base_topic),
                       ("discovery_prefix", config.discovery_prefix)):
        if not topic or any(c in topic for c in "+#\0") or topic.startswith("/"):
            t.problem(key, topic, "must be a plain topic: no +, #, leading / or empty")
    if config.password and config.password_file:
        t.problem("password_file", config.password_file, "set password or password_file, not both")
    if (config.cert_file is None) != (config.key_file is None):
        t.problem("cert_file", config.cert_file, "a client certificate needs both cert_file and "
                  "key_file")
    t.finish()
    return config


HOSTS_EXAMPLE = '["mqtt1.local:1883", "mqtt2.local", "[fd00::5]:8883"]'


def _broker_addresses(t: Table, default_port: int) -> tuple[BrokerAddress, ...]:
    """`hosts`: the brokers of a cluster, each "host" or "host:port"; every bad entry named."""
    entries = t.raw("hosts")
    if entries is None:
        return ()
    if t.has("host"):
        t.problem("hosts", entries, "set host (one broker) or hosts (several), not both")
        return ()
    if not isinstance(entries, list) or not entries:
        t.problem("hosts", entries, f"must be a list of brokers like {HOSTS_EXAMPLE}")
        return ()
    addresses: list[BrokerAddress] = []
    for i, entry in enumerate(entries):
        address = _broker_address(entry, default_port)
        if isinstance(address, str):
            t.problem(f"hosts[{i}]", entry, address)
        elif address in addresses:
            t.problem(f"hosts[{i}]", entry, f"{address} is listed twice")
        else:
            addresses.append(address)
    return tuple(addresses) if len(addresses) == len(entries) else ()


def _broker_address(entry: object, default_port: int) -> BrokerAddress | str:
    """One `hosts` entry, or what is wrong with it."""
    form = 'must be "host" or "host:port" (IPv6 in brackets: "[fd00::5]:1883")'
    if not isinstance(entry, str):
        return f"{form}, a string in quotes"
    if any(c.isspace() or c in "/@" for c in entry):
        return f"{form}, without scheme, user, path or spaces"
    if entry.startswith("["):
        host, bracket, rest = entry[1:].partition("]")
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            return f"{form}: brackets hold an IPv6 address"
        if not bracket or (rest and not rest.startswith(":")):
            return form
        port_text = rest[1:] if rest else None
    elif entry.count(":") > 1:
        return f"{form}: an IPv6 address needs brackets"
    else:
        host, colon, after = entry.partition(":")
        port_text = after if colon else None
        if not host or "[" in host or "]" in host:
            return f"{form}: the host is missing or malformed"
    if port_text is None:
        return BrokerAddress(host, default_port)
    if not (port_text.isascii() and port_text.isdigit() and 1 <= int(port_text) <= 65535):
        return f"{form}: the port is a whole number from 1 to 65535"
    return BrokerAddress(host, int(port_text))


def web_table(t: Table) -> WebConfig:
    """[web]: where the page listens, and who may reach it."""
    listen = t.string("listen", WebConfig.listen)
    if listen != "localhost":
        try:
            ipaddress.ip_address(listen)
        except ValueError:
            t.problem("listen", listen, 'must be an IP address of this machine: "0.0.0.0" (every '
                      'IPv4 network), "::" (IPv4 and IPv6), "127.0.0.1" or "localhost" (this '
                      "machine only), or one address")
            listen = WebConfig.listen
    hosts = t.raw("allowed_hosts")
    allowed_hosts: tuple[str, ...] = ()
    if hosts is not None:
        if isinstance(hosts, list) and all(
            isinstance(h, str) and h and not any(c in h for c in "/: ") for h in hosts
        ):
            allowed_hosts = tuple(h.lower().rstrip(".") for h in hosts)
        else:
            t.problem("allowed_hosts", hosts, 'must be a list of host names like '
                      '["mat.example.org"] (no scheme, port or path)')
    config = WebConfig(
        enabled=t.boolean("enabled", False),
        listen=listen,
        port=t.integer("port", WebConfig.port, low=1, high=65535),
        password_file=t.optional_string("password_file"),
        allowed_hosts=allowed_hosts,
    )
    t.finish()
    return config
