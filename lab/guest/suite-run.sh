# `make lab-run APP=x`: boots one image with its xl config (plus LAB_XL_ARGS), prints its console.
cd /job
eval "set -- $LAB_XL_ARGS"
boot_guest "$LAB_APP" "${LAB_TIMEOUT:-300}" "xl-configs/$LAB_APP.cfg" "$@"
log "$LAB_APP ended: $GUEST_REASON after $(echo "$GUEST_T_EXIT $GUEST_T0" | awk '{printf "%.2f", $1 - $2}') s"
show_guest
