"""A network of its own for each node of a test cluster: one network namespace per node, each joined by a veth
pair to a bridge the test makes in the root namespace. Node N gets 10.213.S.(N+1) on a /24 chosen per test
process; the test's own clients reach every node through the bridge (10.213.S.1).

Every connection a node makes leaves from its namespace's one address, whatever the broker does, so packet rules
inside one namespace cut exactly the traffic between two nodes: `cut(a, b)` drops everything between the two,
both ways, while clients still reach both. This is how the isolation tests cut a leader off from the other
brokers, Skein and Apache Kafka alike (Kafka's brokers cannot bind their outgoing connections to an address).

Needs root and the `ip`/`iptables` tools. Names carry the test process's id; everything is removed by close()
(and a leftover of an earlier process with the same id is removed before it is made again).
"""

from __future__ import annotations

import ipaddress
import os
import shutil
import subprocess

COMMAND_TIMEOUT_SECONDS = 10


def _run(*command: str, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(list(command), capture_output=True, text=True, timeout=COMMAND_TIMEOUT_SECONDS)
    if check and result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed ({result.returncode}): {result.stderr.strip()}")
    return result


def usable() -> bool:
    """Whether namespaces and packet rules can be made here (root, `ip` and `iptables`)."""
    if os.geteuid() != 0 or shutil.which("ip") is None or shutil.which("iptables") is None:
        return False
    try:
        return _run("iptables", "-S", "INPUT", check=False).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def _free_subnet(tag: int) -> ipaddress.IPv4Network:
    """A 10.213.S.0/24 no route of this machine covers yet, S derived from the process id."""
    routes = _run("ip", "-4", "route", "show", "table", "all").stdout
    used = [ipaddress.ip_network(word, strict=False) for line in routes.splitlines() for word in line.split()[:2]
            if "/" in word and word[0].isdigit()]
    for step in range(254):
        subnet = ipaddress.ip_network(f"10.213.{(tag + step) % 254 + 1}.0/24")
        if not any(subnet.overlaps(other) for other in used):
            return subnet
    raise RuntimeError("no free 10.213.S.0/24 for the test's namespaces")


class NodeNetwork:
    def __init__(self, size: int):
        tag = os.getpid() % 100000
        self.size = size
        self.bridge = f"skbr{tag}"
        self.namespaces = [f"skein-test-{tag}-{n}" for n in range(1, size + 1)]
        self.veths = [f"skv{tag}-{n}" for n in range(1, size + 1)]
        self.subnet = _free_subnet(tag)
        hosts = list(self.subnet.hosts())
        self.gateway = str(hosts[0])
        self.addresses = [str(hosts[n]) for n in range(1, size + 1)]
        self.rules: list[tuple[str, list[str]]] = []  # (namespace, iptables rule) to delete on heal

    def make(self) -> "NodeNetwork":
        self.close()  # a leftover of an earlier process with the same id
        _run("ip", "link", "add", self.bridge, "type", "bridge")
        _run("ip", "addr", "add", f"{self.gateway}/{self.subnet.prefixlen}", "dev", self.bridge)
        _run("ip", "link", "set", self.bridge, "up")
        for namespace, veth, address in zip(self.namespaces, self.veths, self.addresses):
            _run("ip", "netns", "add", namespace)
            _run("ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", namespace)
            _run("ip", "link", "set", veth, "master", self.bridge, "up")
            _run("ip", "-n", namespace, "addr", "add", f"{address}/{self.subnet.prefixlen}", "dev", "eth0")
            _run("ip", "-n", namespace, "link", "set", "eth0", "up")
            _run("ip", "-n", namespace, "link", "set", "lo", "up")
        return self

    def address(self, node_id: int) -> str:
        return self.addresses[node_id - 1]

    def command_prefix(self, node_id: int) -> list[str]:
        """Runs a command in the node's namespace (`ip netns exec` execs it: the pid is the command's)."""
        return ["ip", "netns", "exec", self.namespaces[node_id - 1]]

    def cut(self, a: int, b: int) -> None:
        """Drops every packet between nodes a and b, both ways, inside a's namespace."""
        namespace, other = self.namespaces[a - 1], self.address(b)
        for rule in (["INPUT", "-s", other, "-j", "DROP"], ["OUTPUT", "-d", other, "-j", "DROP"]):
            _run("ip", "netns", "exec", namespace, "iptables", "-I", *rule)
            self.rules.append((namespace, rule))

    def heal(self) -> None:
        while self.rules:
            namespace, rule = self.rules.pop()
            _run("ip", "netns", "exec", namespace, "iptables", "-D", *rule, check=False)

    def close(self) -> None:
        self.rules.clear()  # the rules go with their namespaces
        for namespace in self.namespaces:
            _run("ip", "netns", "del", namespace, check=False)
        for veth in self.veths:
            _run("ip", "link", "del", veth, check=False)
        _run("ip", "link", "del", self.bridge, check=False)
