/* labpeer: the dom0 side of Sirocco's lab checks for grant tables and event channels, through Linux's real
 * gntdev and evtchn drivers (the same ones netback/blkback-style backends use from user space).
 *
 *   labpeer gnt-read DOMID GREF [HOLD_S]   map the granted page read-only, print its first line, keep it
 *                                          mapped HOLD_S seconds (so the guest can try to revoke it), unmap
 *   labpeer evtchn-ping DOMID PORT         bind to the guest's unbound port, notify it, wait (10 s) for a notify back
 *
 * Built statically by lab/lab.py with the host's gcc and libxen-dev headers; runs in the lab's dom0. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>
#include <xen/xen.h> /* domid_t, used by sys/evtchn.h */
#include <xen/sys/evtchn.h>
#include <xen/sys/gntdev.h>

static int die(const char *what) { fprintf(stderr, "labpeer: %s: %s\n", what, strerror(errno)); return 1; }

static int gnt_read(uint32_t domid, uint32_t gref, int hold) {
    int fd = open("/dev/xen/gntdev", O_RDWR);
    if (fd < 0) return die("open /dev/xen/gntdev");
    struct ioctl_gntdev_map_grant_ref map = { .count = 1 };
    map.refs[0].domid = domid;
    map.refs[0].ref = gref;
    if (ioctl(fd, IOCTL_GNTDEV_MAP_GRANT_REF, &map) < 0) return die("IOCTL_GNTDEV_MAP_GRANT_REF");
    char *page = mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd, map.index);
    if (page == MAP_FAILED) return die("mmap of the grant (did the guest grant it to dom0?)");
    char line[128];
    snprintf(line, sizeof line, "%.*s", (int)strnlen(page, 100), page);
    printf("labpeer: gnt %u from domain %u reads: %s\n", gref, domid, line);
    fflush(stdout);
    if (hold > 0) {
        printf("labpeer: holding the mapping %d s\n", hold);
        fflush(stdout);
        sleep(hold);
    }
    munmap(page, 4096);
    struct ioctl_gntdev_unmap_grant_ref unmap = { .index = map.index, .count = 1 };
    if (ioctl(fd, IOCTL_GNTDEV_UNMAP_GRANT_REF, &unmap) < 0) return die("IOCTL_GNTDEV_UNMAP_GRANT_REF");
    printf("labpeer: gnt %u unmapped\n", gref);
    close(fd);
    return 0;
}

static int evtchn_ping(uint32_t domid, uint32_t port) {
    int fd = open("/dev/xen/evtchn", O_RDWR);
    if (fd < 0) return die("open /dev/xen/evtchn");
    struct ioctl_evtchn_bind_interdomain bind = { .remote_domain = domid, .remote_port = port };
    int local = ioctl(fd, IOCTL_EVTCHN_BIND_INTERDOMAIN, &bind);
    if (local < 0) return die("IOCTL_EVTCHN_BIND_INTERDOMAIN");
    struct ioctl_evtchn_notify notify = { .port = (unsigned)local };
    if (ioctl(fd, IOCTL_EVTCHN_NOTIFY, &notify) < 0) return die("IOCTL_EVTCHN_NOTIFY");
    printf("labpeer: bound local port %d to domain %u port %u, notified\n", local, domid, port);
    fflush(stdout);
    struct pollfd p = { .fd = fd, .events = POLLIN };
    if (poll(&p, 1, 10000) != 1) { printf("labpeer: no event back within 10 s\n"); return 1; }
    uint32_t got;
    if (read(fd, &got, sizeof got) != sizeof got) return die("read evtchn");
    printf("labpeer: event back on local port %u\n", got);
    write(fd, &got, sizeof got); /* unmask */
    close(fd);
    return 0;
}

int main(int argc, char **argv) {
    if (argc >= 4 && !strcmp(argv[1], "gnt-read"))
        return gnt_read(strtoul(argv[2], 0, 0), strtoul(argv[3], 0, 0), argc > 4 ? atoi(argv[4]) : 0);
    if (argc == 4 && !strcmp(argv[1], "evtchn-ping"))
        return evtchn_ping(strtoul(argv[2], 0, 0), strtoul(argv[3], 0, 0));
    fprintf(stderr, "usage: labpeer gnt-read DOMID GREF [HOLD_S] | evtchn-ping DOMID PORT\n");
    return 2;
}
