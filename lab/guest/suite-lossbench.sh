# TCP under loss (issue 12): 4 MiB to and from each guest through real netback while netem in dom0 drops (and
# reorders) frames in both directions, Sirocco's echo image(s) against the Linux PV guest in the same lab run.
# Every build/echo*.xen is measured (a copy built with another smoltcp, e.g. echo-upstream.xen, gives the
# before/after in one run). Loss is applied on the guest's vif: its root qdisc (frames to the guest) and, through an
# ifb device, its ingress (frames from the guest).
cd /job
. /job/lab/net-lib.sh
LOSS_MB=${LOSS_MB:-4}
LOSS_T=${LOSS_T:-100} # seconds a transfer may take before it counts as failed (reported as "> LOSS_T")
LOSS_RUNS=${LOSS_RUNS:-3} # each case this many times (the table shows medians: one run is noisy)
# name|netem arguments
LOSS_CASES=${LOSS_CASES:-"clean|limit 1000
loss 1%|loss 1%
loss 2%|loss 2%
loss 5%|loss 5%
loss 1% + reorder|loss 1% delay 2ms reorder 75% 50%"}
modprobe -a sch_netem ifb act_mirred cls_matchall sch_ingress 2>&1 | sed 's/^/modprobe: /'
ip link show ifb0 >/dev/null 2>&1 || ip link add ifb0 type ifb
ip link set ifb0 up
linux_bench_peer

# netem_on VIF ARGS...: ARGS on both directions of VIF; netem_off VIF.
netem_on() {
    vif=$1; shift
    tc qdisc replace dev "$vif" root netem "$@"
    tc qdisc replace dev "$vif" handle ffff: ingress
    tc filter replace dev "$vif" parent ffff: matchall action mirred egress redirect dev ifb0
    tc qdisc replace dev ifb0 root netem "$@"
}
netem_off() {
    tc qdisc del dev "$1" root 2>/dev/null
    tc qdisc del dev "$1" ingress 2>/dev/null
    tc qdisc del dev ifb0 root 2>/dev/null
}
# transfer IP DIR: seconds to move LOSS_MB MiB to (DIR=to) the guest's discard port or from (DIR=from) its zero
# source, or "" when it did not finish within LOSS_T seconds (or moved the wrong amount).
transfer() {
    t=$(now)
    if [ "$2" = to ]; then
        head -c "${LOSS_MB}M" /dev/zero | timeout "$LOSS_T" nc -N "$1" 9 || return 0
    else
        timeout "$LOSS_T" nc "$1" 19 </dev/null | { head -c "${LOSS_MB}M" | wc -c >/tmp/loss.got; pkill -f "nc $1 19"; }
        [ "$(cat /tmp/loss.got)" = $((LOSS_MB * 1048576)) ] || return 0
    fi
    since "$t" 2
}
# loss_guest LABEL IP CFG [overrides]: every case, both directions, for one guest.
loss_guest() {
    label=$1; ip=$2; cfg=$3; shift 3
    start_bg "loss-$label" "$cfg" "$@"
    if ! wait_tcp "$ip" 9 120; then
        fail "lossbench-$label" "$label did not come up on $ip"; show_guest; stop_net_guest; return
    fi
    vif=vif$(xl domid "$GUEST_NAME").0
    for run in $(seq "$LOSS_RUNS"); do
        echo "$LOSS_CASES" | while IFS='|' read -r case args; do
            netem_on "$vif" $args </dev/null
            to=$(transfer "$ip" to)
            from=$(transfer "$ip" from)
            netem_off "$vif"
            log "lossbench: $label, $case, run $run: to ${to:->$LOSS_T} s, from ${from:->$LOSS_T} s"
            echo "SIROCCO-BENCH kind=loss guest=$label case=$(echo "$case" | tr ' ' '_') run=$run mib=$LOSS_MB limit_s=$LOSS_T to_s=${to:-none} from_s=${from:-none}"
        done
    done
    stop_net_guest
}

expect lossbench-complete
for img in build/echo*.xen; do
    name=$(basename "$img" .xen)
    # An application with an xl config of its own (the README tutorial's echo-xen, which `make build-all` builds
    # and lab.py adds) is not a build of apps/echo: it does not take echo's command line.
    if [ "$name" != echo ] && [ -e "xl-configs/$name.cfg" ]; then
        echo "lab: lossbench: $name has its own xl config: an app of its own, not a build of echo; not measured"
        continue
    fi
    sed "s|build/echo.xen|$img|" xl-configs/echo.cfg >"/tmp/$name.cfg"
    loss_guest "sirocco-$name" 10.0.0.3 "/tmp/$name.cfg" 'extra="log=warn ip=10.0.0.3/24 gw=10.0.0.1"'
done
loss_guest linux 10.0.0.20 /tmp/nb.cfg
pass lossbench-complete "every case measured for every guest (a transfer past ${LOSS_T} s is reported, not failed)"
