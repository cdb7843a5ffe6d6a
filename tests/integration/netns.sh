# netns.sh — separate "hosts" for multi-host tests: one network namespace
# per host (own interfaces, addresses, routes and ports), each joined to
# the loomd host by its own veth pair on a /30 subnet. Real TCP between
# real network stacks, nothing shared but the kernel. Source after lib.sh.
#
#   netns_init || skip          # 77 when `ip netns` is not permitted here
#   netns_host loomd            # the hub: loomd runs here
#   netns_link loomd w1 1       # host w1 = 10.77.1.2, loomd seen as 10.77.1.1
#   on w1 CMD...                # runs CMD inside host w1
#
# Names carry the test's pid so that parallel runs do not collide; every
# namespace is deleted on exit (their processes are killed by lib.sh).

NETNS_TAG="lt$$"
NETNS_LIST=()

netns_init() {
  command -v ip >/dev/null 2>&1 || { echo "SKIP: no ip(8) here"; return 77; }
  if ! ip netns add "${NETNS_TAG}probe" 2>/dev/null; then
    echo "SKIP: ip netns is not permitted here (needs root / CAP_SYS_ADMIN)"
    return 77
  fi
  ip netns del "${NETNS_TAG}probe"
  trap 'netns_cleanup; cleanup' EXIT
}

netns_cleanup() {
  local p n
  for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
  PIDS=()
  for n in "${NETNS_LIST[@]}"; do ip netns del "$n" 2>/dev/null; done
}

# netns_host NAME — a new host with only its loopback up.
netns_host() {
  local ns="${NETNS_TAG}$1"
  ip netns add "$ns" || fail "cannot create namespace $ns"
  NETNS_LIST+=("$ns")
  ip -n "$ns" link set lo up
}

# netns_link HUB HOST N — veth pair HUB <-> HOST: HUB is 10.77.N.1 on
# interface hN, HOST 10.77.N.2 on eth0 with a default route to the hub.
netns_link() {
  local hub="${NETNS_TAG}$1" host="${NETNS_TAG}$2" n=$3
  ip link add "h$n" netns "$hub" type veth peer name eth0 netns "$host" ||
    fail "cannot create a veth pair"
  ip -n "$hub" addr add "10.77.$n.1/30" dev "h$n"
  ip -n "$host" addr add "10.77.$n.2/30" dev eth0
  ip -n "$hub" link set "h$n" up
  ip -n "$host" link set eth0 up
  ip -n "$host" route add default via "10.77.$n.1"
}

# on HOST CMD... — runs CMD in HOST's network namespace.
on() {
  local ns="${NETNS_TAG}$1"; shift
  ip netns exec "$ns" "$@"
}

# on_bg HOST LOG CMD... — starts CMD in HOST in the background (killed on
# exit); sets BG_PID (the command itself: ip netns exec execs it).
on_bg() {
  local ns="${NETNS_TAG}$1" log=$2; shift 2
  ip netns exec "$ns" "$@" >"$log" 2>&1 &
  BG_PID=$!; PIDS+=("$BG_PID")
}
