/* labpeer: the dom0 side of Sirocco's lab checks for grant tables and event channels, through Linux's real
 * gntdev and evtchn drivers (the same ones netback/blkback-style backends use from user space).
 *
 *   labpeer gnt-read DOMID GREF [HOLD_S]   map the granted page read-only, print its first line, keep it
 *                                          mapped HOLD_S seconds (so the guest can try to revoke it), unmap
 *   labpeer evtchn-ping DOMID PORT         bind to the guest's unbound port, notify it, wait (10 s) for a notify back
 *   labpeer announcements IFACE MAC SECS   for SECS seconds, print each announcement frame MAC sends on IFACE: a
 *                                          gratuitous ARP ("garp A.B.C.D") and an unsolicited neighbour
 *                                          advertisement to all nodes ("na TARGET override=0|1")
 *
 * Built statically by lab/lab.py with the host's gcc and libxen-dev headers; runs in the lab's dom0. */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <sys/socket.h>
#include <time.h>
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

static int announcements(const char *iface, const char *mac_text, int secs) {
    unsigned char mac[6];
    if (sscanf(mac_text, "%hhx:%hhx:%hhx:%hhx:%hhx:%hhx", &mac[0], &mac[1], &mac[2], &mac[3], &mac[4], &mac[5]) != 6)
        return die("bad MAC");
    int fd = socket(AF_PACKET, SOCK_RAW, htons(ETH_P_ALL));
    if (fd < 0) return die("socket(AF_PACKET)");
    struct sockaddr_ll at = { .sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_ALL),
                              .sll_ifindex = (int)if_nametoindex(iface) };
    if (!at.sll_ifindex || bind(fd, (struct sockaddr *)&at, sizeof at) < 0) return die(iface);
    time_t end = time(0) + secs;
    unsigned char f[2048];
    while (time(0) < end) {
        struct pollfd p = { .fd = fd, .events = POLLIN };
        if (poll(&p, 1, 200) <= 0) continue;
        ssize_t n = recv(fd, f, sizeof f, 0);
        if (n < 14 || memcmp(f + 6, mac, 6)) continue;
        unsigned type = (unsigned)f[12] << 8 | f[13];
        /* ARP request, sender protocol address == target protocol address. */
        if (type == 0x0806 && n >= 42 && f[20] == 0 && f[21] == 1 && !memcmp(f + 28, f + 38, 4)) {
            printf("garp %u.%u.%u.%u\n", f[28], f[29], f[30], f[31]);
        } else if (type == 0x86dd && n >= 14 + 40 + 24 && f[14 + 6] == 58 && f[14 + 40] == 136 && f[0] == 0x33 &&
                   f[1] == 0x33 && f[5] == 1) {
            char target[INET6_ADDRSTRLEN];
            inet_ntop(AF_INET6, f + 14 + 40 + 8, target, sizeof target);
            printf("na %s override=%d\n", target, (f[14 + 40 + 4] & 0x20) != 0);
        }
        fflush(stdout);
    }
    return 0;
}

int main(int argc, char **argv) {
    if (argc == 5 && !strcmp(argv[1], "announcements")) return announcements(argv[2], argv[3], atoi(argv[4]));
    if (argc >= 4 && !strcmp(argv[1], "gnt-read"))
        return gnt_read(strtoul(argv[2], 0, 0), strtoul(argv[3], 0, 0), argc > 4 ? atoi(argv[4]) : 0);
    if (argc == 4 && !strcmp(argv[1], "evtchn-ping"))
        return evtchn_ping(strtoul(argv[2], 0, 0), strtoul(argv[3], 0, 0));
    fprintf(stderr, "usage: labpeer gnt-read DOMID GREF [HOLD_S] | evtchn-ping DOMID PORT | announcements IFACE MAC SECS\n");
    return 2;
}
