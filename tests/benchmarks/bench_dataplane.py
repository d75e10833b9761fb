"""Overlay data plane against the underlay it rides on, and port security's cost, in the same run.

    .venv/bin/python -m tests.benchmarks.bench_dataplane [--seconds S] [--rounds R] [--pings N]

Builds a 2-host lab (vxbench<hex>) with the overlay network `bench` and one
container on each host, then measures, alternating underlay and overlay so
both see the same machine load:
  * TCP throughput, iperf3 (one stream, S seconds, R rounds each): client
    in the container on h1 to a server in the container on h2, against the
    same between h1's and h2's underlay addresses (the hosts' namespaces).
    Target: overlay >= 0.85x underlay (medians).
  * RTT: `ping -i 0.01 -c N` container to container, against host to host;
    the overhead is the difference of the medians. Target <= 40 us. The
    same again at 1 ms spacing (`ping -i 0.001`): a path in use. Between
    pings 10 ms apart the CPU idles and runs other work, so each ping
    crosses the path with cold caches and TLBs, and every hop costs several
    times what it costs on a path that is kept busy (a veth pair and a bridge
    between two namespaces: 13 us at 1 ms spacing, 74 us at 10 ms on this
    machine). Both are real latencies (a request now and then, traffic
    that keeps coming); the target stays on the sparse one it was set on.
  * Where the overhead goes (hop_ladder.py): the same pings over the
    underlay plus one kernel object at a time (a VXLAN device, then a
    bridge, then a veth pair) between the two hosts, in the same rounds.
    The gwbridge (NAT egress, published ports) is not on this path: two
    containers of one overlay talk through the overlay's bridge and VXLAN
    device only, so it has no rung.
  * Port security (agent option port-security, on by default): the overlay
    figures again with it switched off on both hosts (the agents restarted
    with `port-security = "off"`, as an operator would), each round measuring
    both states, in alternating order, so the ratio on/off is of the same
    moments. The overlay figures above are with it on, as deployed.
The N pings of each path are shared out over the R rounds.
It also checks what could cost throughput silently: the container MTU is the
underlay's minus the 50 bytes of VXLAN encapsulation, a full-size DF packet
crosses the overlay and one byte more is refused (no fragmentation), and it
prints the checksum/segmentation offloads of the container's veth, its
bridge-side peer and the VXLAN device. The lab is removed at the end, also
on failure. Needs root.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import time

from pyroute2.ethtool import Ethtool

from agent import names
from agent.kernel import linux, port_security
from deploy.lab import HOST_UPLINK, Lab
from deploy.topology import Node
from tests.benchmarks import figures
from tests.benchmarks.commands import sh
from tests.benchmarks.hop_ladder import STEPS, ladder
from tests.benchmarks.lab_bench import bench_lab
from tests.helpers.lab_cli import network, run
from tests.helpers.tool_text import ping_rtts_ms

NETWORK = "bench"
SUBNET = "10.89.0.0/24"
VXLAN_OVERHEAD = 50
IPERF_PORT = 5201
TARGET_THROUGHPUT_RATIO = 0.85
TARGET_RTT_OVERHEAD_US = 40.0
OVERLAY_OFF = "overlay, port security off"
SPARSE_INTERVAL = "0.01"   # ping -i: the target's figure, a request now and then
DENSE_INTERVAL = "0.001"   # a path in use
# The offloads that decide whether TCP over the overlay is segmented and
# checksummed late (in the kernel, once per 64 KB) or per packet.
OFFLOADS = ("tx-checksum-ip-generic", "tx-scatter-gather", "tx-tcp-segmentation",
            "tx-generic-segmentation", "rx-gro", "tx-udp_tnl-segmentation",
            "tx-udp_tnl-csum-segmentation")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=3, help="length of each iperf3 run (default 3)")
    parser.add_argument("--rounds", type=int, default=6, help="iperf3 runs per path (default 6)")
    parser.add_argument("--pings", type=int, default=500, help="pings per path (default 500)")
    args = parser.parse_args(argv)
    if not 1 <= args.seconds <= 60 or not 1 <= args.rounds <= 20 or not 5 <= args.pings <= 10_000:
        parser.error("--seconds 1..60, --rounds 1..20 and --pings 5..10000")
    with bench_lab(hosts=2) as lab:
        _bench(lab, args.seconds, args.rounds, args.pings)
    return 0


def _bench(lab: Lab, seconds: int, rounds: int, pings: int) -> None:
    h1, h2 = lab.hosts
    lab.cli("network", "create", "--subnet", SUBNET, NETWORK)
    vni = network(lab, NETWORK)["vni"]
    ns, ips = {}, {}
    for index, (name, host) in enumerate((("dp1", h1), ("dp2", h2))):
        container = run(lab, name, index, NETWORK, "sleep", "infinity")
        ns[name] = names.container_netns(host.name, container["id"])
        ips[name] = container["networks"][NETWORK]["ip"]
    underlay = (h1.netns, h2.netns, h2.underlay_ip)
    overlay = (ns["dp1"], ns["dp2"], ips["dp2"])
    # Which path measures what, and the port-security state it needs ("" any).
    paths = {"underlay": (underlay, ""), "overlay": (overlay, "on"), OVERLAY_OFF: (overlay, "off")}

    print(f"data plane: 2 lab hosts, overlay `{NETWORK}` (VNI {vni}) vs the underlay, same run")
    _check_mtu(lab, ns["dp1"], ips["dp2"])
    _print_offloads(lab, ns["dp1"], vni)

    state = _PortSecurity(lab, vni)
    throughput: dict[str, list[float]] = {p: [] for p in paths}
    rtts: dict[str, list[float]] = {p: [] for p in paths}
    hops: dict[str, list[float]] = {step: [] for step in STEPS}
    dense: dict[str, list[float]] = {p: [] for p in (*paths, *STEPS)}   # at DENSE_INTERVAL
    with ladder([(h1.netns, h1.underlay_ip), (h2.netns, h2.underlay_ip)]) as steps:
        for index in range(rounds):
            # Alternating which state goes first: one agent restart per round, and
            # neither state always measured right after one. The pings are shared
            # out over the rounds too, so both states' RTTs see the same moments.
            order = ["underlay", "overlay", OVERLAY_OFF]
            if index % 2:
                order = ["underlay", OVERLAY_OFF, "overlay"]
            for path in order:
                (client_ns, server_ns, address), wanted = paths[path]
                state.ensure(wanted)
                throughput[path].append(_iperf3(client_ns, server_ns, address, seconds))
                rtts[path] += _ping_rtts(client_ns, address, max(5, pings // rounds))
                dense[path] += _ping_rtts(client_ns, address, max(5, pings // rounds), DENSE_INTERVAL)
            for step in STEPS:
                steps.build(step)
                hops[step] += _ping_rtts(steps.client, steps.peer_address, max(5, pings // rounds))
                dense[step] += _ping_rtts(steps.client, steps.peer_address, max(5, pings // rounds),
                                          DENSE_INTERVAL)
    _report(throughput, rtts, seconds, rounds, pings)
    _report_hops(rtts, hops, SPARSE_INTERVAL)
    _report_dense(dense, pings, rounds)


class _PortSecurity:
    """Switches port security on both hosts by restarting their agents with the option."""

    def __init__(self, lab: Lab, vni: int):
        self.lab = lab
        self.vni = vni
        self.current = "on"   # the default

    def ensure(self, wanted: str) -> None:
        if not wanted or wanted == self.current:
            return
        for host in self.lab.hosts:
            self.lab.restart_agent_with(host, {"port-security": wanted})
        deadline = time.monotonic() + 30
        while not all(self._guarded(host) == (wanted == "on") for host in self.lab.hosts):
            if time.monotonic() > deadline:
                raise RuntimeError(f"port security did not turn {wanted} within 30 s")
            time.sleep(0.1)
        self.current = wanted

    def _guarded(self, host) -> bool:
        """Whether the overlay's namespace on `host` has a port-security table with a port in it."""
        proc = sh("ip", "netns", "exec", names.overlay_netns(host.name, self.vni), "nft", "-j", "list", "table",
                  port_security.FAMILY, port_security.TABLE, check=False)
        return proc.returncode == 0 and port_security.COUNTER_PREFIX in proc.stdout


def _check_mtu(lab: Lab, container_ns: str, peer_ip: str) -> None:
    underlay = lab.underlay_mtu
    inner = json.loads(sh("ip", "-n", container_ns, "-j", "link", "show", "eth0").stdout)[0]["mtu"]
    if inner != underlay - VXLAN_OVERHEAD:
        raise RuntimeError(f"container eth0 MTU is {inner}, expected underlay {underlay} - {VXLAN_OVERHEAD}")
    payload = inner - 28  # IPv4 + ICMP headers
    fits = _ping_df(container_ns, peer_ip, payload)
    too_big = _ping_df(container_ns, peer_ip, payload + 1)
    if not fits or too_big:
        raise RuntimeError(f"DF pings across the overlay: {payload} bytes {'passed' if fits else 'FAILED'}, "
                           f"{payload + 1} bytes {'passed (fragmented?)' if too_big else 'refused'}")
    print(f"  MTU: underlay {underlay}, container eth0 {inner} (= underlay - {VXLAN_OVERHEAD}); "
          f"a {inner}-byte DF packet crosses, {inner + 1} is refused: no fragmentation")


def _ping_df(netns: str, address: str, payload: int) -> bool:
    proc = sh(*Node(netns).argv("ping", "-n", "-q", "-M", "do", "-c", "1", "-W", "2", "-s", str(payload), address),
              check=False)
    return proc.returncode == 0


def _print_offloads(lab: Lab, container_ns: str, vni: int) -> None:
    overlay_ns = names.overlay_netns(lab.hosts[0].name, vni)
    peer = _veth_peer(container_ns)
    # The uplink matters most: without UDP-tunnel segmentation there, the
    # VXLAN device would cut every TCP super-packet into MTU-sized ones.
    devices = [("container eth0", container_ns, "eth0"), ("bridge-side veth", overlay_ns, peer),
               (f"vxlan {names.vxlan_ifname(vni)}", overlay_ns, names.vxlan_ifname(vni)),
               (f"underlay {HOST_UPLINK}", lab.hosts[0].netns, HOST_UPLINK)]
    print("  offloads (on/off):")
    for label, netns, ifname in devices:
        features = _features(netns, ifname)
        listed = ", ".join(f"{f} {'on' if features.get(f) else 'off'}" for f in OFFLOADS if f in features)
        print(f"    {label:<17} {listed}")


def _veth_peer(container_ns: str) -> str:
    """The bridge-side end of the container's eth0, by its peer ifindex."""
    link = json.loads(sh("ip", "-n", container_ns, "-j", "-d", "link", "show", "eth0").stdout)[0]
    peer_index = link["link_index"]
    netnsid = link["link_netnsid"]
    for other in json.loads(sh("ip", "-n", container_ns, "-j", "netns", "list-id").stdout):
        if other.get("nsid") == netnsid and other.get("name"):
            for candidate in json.loads(sh("ip", "-n", other["name"], "-j", "link", "show").stdout):
                if candidate["ifindex"] == peer_index:
                    return candidate["ifname"]
    raise RuntimeError(f"cannot find the bridge-side peer of eth0 in {container_ns}")


def _features(netns: str, ifname: str) -> dict[str, bool]:
    """ethtool -k, from inside `netns`: the ioctl socket is opened there."""
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    target = os.open(f"/run/netns/{netns}", os.O_RDONLY)
    try:
        linux.setns(target, linux.CLONE_NEWNET)
        try:
            ethtool = Ethtool()
        finally:
            linux.setns(own, linux.CLONE_NEWNET)
        try:
            return {name: bool(f.enable) for name, f in ethtool.get_features(ifname).features.items() if name}
        finally:
            ethtool.close()
    finally:
        os.close(own)
        os.close(target)


def _iperf3(client_ns: str, server_ns: str, address: str, seconds: int) -> float:
    """One iperf3 TCP run, bits/s as the receiver counted them."""
    server = subprocess.Popen(Node(server_ns).argv("iperf3", "-s", "-1", "-p", str(IPERF_PORT)),
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        client = Node(client_ns).argv("iperf3", "-J", "-c", address, "-p", str(IPERF_PORT), "-t", str(seconds))
        for _ in range(50):  # the server needs a moment to listen
            proc = sh(*client, check=False, timeout=seconds + 30)
            result = json.loads(proc.stdout) if proc.stdout.strip().startswith("{") else {}
            if proc.returncode == 0 and "sum_received" in result.get("end", {}):
                return result["end"]["sum_received"]["bits_per_second"]
            if "error" in result and "Connection refused" not in result["error"]:
                raise RuntimeError(f"iperf3 to {address} failed: {result['error']}")
            if "Connection refused" not in proc.stdout + proc.stderr:
                raise RuntimeError(f"iperf3 to {address} failed ({proc.returncode}): "
                                   f"{(proc.stdout + proc.stderr)[-500:]}")
            time.sleep(0.05)
        raise RuntimeError(f"iperf3 server in {server_ns} never listened")
    finally:
        server.kill()
        server.wait(timeout=10)


def _ping_rtts(netns: str, address: str, count: int, interval: str = SPARSE_INTERVAL) -> list[float]:
    proc = sh(*Node(netns).argv("ping", "-n", "-i", interval, "-c", str(count), address),
              timeout=count * 0.05 + 30)
    rtts = ping_rtts_ms(proc.stdout)
    if len(rtts) < count * 0.9:
        raise RuntimeError(f"ping {address}: only {len(rtts)} of {count} replies")
    return rtts


def _report(throughput: dict[str, list[float]], rtts: dict[str, list[float]],
            seconds: int, rounds: int, pings: int) -> None:
    width = max(map(len, throughput))
    gbit = {p: statistics.median(v) / 1e9 for p, v in throughput.items()}
    print(f"  TCP throughput, iperf3 1 stream, {seconds} s x {rounds} rounds (median, min..max):")
    for path, values in throughput.items():
        print(f"    {path:<{width}} {gbit[path]:7.2f} Gbit/s  ({min(values) / 1e9:.2f}..{max(values) / 1e9:.2f})")
    figures.report("dataplane", "overlay TCP throughput", gbit["overlay"], "Gbit/s",
                   limit=TARGET_THROUGHPUT_RATIO * gbit["underlay"], higher_is_better=True,
                   baseline=gbit["underlay"], baseline_name="underlay")
    # Each round runs them back to back: their ratio cancels most of the
    # load other processes put on the machine during that round.
    ratios = [o / u for o, u in zip(throughput["overlay"], throughput["underlay"])]
    print(f"    overlay/underlay: of the medians {gbit['overlay'] / gbit['underlay']:.2f}, median of the "
          f"per-round ratios {statistics.median(ratios):.2f} ({min(ratios):.2f}..{max(ratios):.2f}); "
          f"target >= {TARGET_THROUGHPUT_RATIO}")
    figures.report("dataplane", "overlay TCP throughput, port security on", gbit["overlay"], "Gbit/s",
                   baseline=gbit[OVERLAY_OFF], baseline_name="port security off")
    ratios = [on / off for on, off in zip(throughput["overlay"], throughput[OVERLAY_OFF])]
    print(f"    port security on/off: of the medians {gbit['overlay'] / gbit[OVERLAY_OFF]:.2f}, median of "
          f"the per-round ratios {statistics.median(ratios):.2f} ({min(ratios):.2f}..{max(ratios):.2f})")
    median = {p: statistics.median(v) * 1000 for p, v in rtts.items()}  # us
    mean = {p: statistics.fmean(v) * 1000 for p, v in rtts.items()}
    print(f"  RTT, ping -i 0.01, {pings} over {rounds} rounds (us):")
    for path in throughput:
        print(f"    {path:<{width}} median {median[path]:7.1f}  avg {mean[path]:7.1f}  "
              f"min {min(rtts[path]) * 1000:7.1f}")
    figures.report("dataplane", "ping RTT overhead, overlay - underlay medians", median["overlay"] - median["underlay"],
                   "us", limit=TARGET_RTT_OVERHEAD_US, baseline=median["underlay"],
                   baseline_name="underlay RTT median")
    print(f"    (difference of the averages: {mean['overlay'] - mean['underlay']:.1f} us)")
    figures.report("dataplane", "overlay ping RTT median, port security on", median["overlay"], "us",
                   baseline=median[OVERLAY_OFF], baseline_name="port security off")
    print(f"    port security on - off: medians {median['overlay'] - median[OVERLAY_OFF]:.1f} us, "
          f"averages {mean['overlay'] - mean[OVERLAY_OFF]:.1f} us")


def _report_dense(dense: dict[str, list[float]], pings: int, rounds: int) -> None:
    """The same paths at DENSE_INTERVAL: what the hops cost on a path in use."""
    median = {p: statistics.median(v) * 1000 for p, v in dense.items()}  # us
    print(f"  RTT at 1 ms spacing (ping -i {DENSE_INTERVAL}, {pings} over {rounds} rounds; a path in use):")
    for path in ("underlay", "overlay", OVERLAY_OFF):
        print(f"    {path:<26} median {median[path]:7.1f}  min {min(dense[path]) * 1000:7.1f}")
    figures.report("dataplane", "ping RTT overhead at 1 ms spacing, overlay - underlay medians",
                   median["overlay"] - median["underlay"], "us", baseline=median["underlay"],
                   baseline_name="underlay RTT median at 1 ms")
    print(f"    port security on - off: medians {median['overlay'] - median[OVERLAY_OFF]:.1f} us")
    _report_hops({p: dense[p] for p in ("underlay", "overlay")}, {s: dense[s] for s in STEPS}, DENSE_INTERVAL)


def _report_hops(rtts: dict[str, list[float]], hops: dict[str, list[float]], interval: str) -> None:
    """Each hop's share of the overlay's RTT overhead, from the medians of the same rounds."""
    ladder_rtts = {"underlay": rtts["underlay"], **hops, "overlay": rtts["overlay"]}
    median = {name: statistics.median(values) * 1000 for name, values in ladder_rtts.items()}  # us
    names = {"+ vxlan": "VXLAN encapsulation + decapsulation", "+ bridge": "a bridge on each host",
             "+ veth": "a veth pair on each host",
             "overlay": "the rest: container and overlay namespaces, their rules"}
    spacing = "" if interval == SPARSE_INTERVAL else f" at {float(interval) * 1000:g} ms spacing"
    print(f"  where the RTT overhead goes{spacing} (ping -i {interval} medians, us; each path adds a hop on "
          "both hosts):")
    previous = None
    for name, value in median.items():
        added = "" if previous is None else f"  {value - previous:+7.1f}  {names[name]}"
        print(f"    {name:<10} {value:7.1f}{added}")
        previous = value
    for name, cost in (("VXLAN encapsulation", median["+ vxlan"] - median["underlay"]),
                       ("a bridge", median["+ bridge"] - median["+ vxlan"]),
                       ("a veth pair", median["+ veth"] - median["+ bridge"]),
                       ("the rest of the overlay path", median["overlay"] - median["+ veth"])):
        both = "" if name.startswith("the rest") else " (both hosts)"
        figures.report("dataplane", f"RTT cost of {name}{both}{spacing}", cost, "us",
                       baseline=median["underlay"], baseline_name="underlay RTT median")


if __name__ == "__main__":
    raise SystemExit(main())
