/* blkbench: the Linux PV guest's side of `make bench`'s block table, doing what Sirocco's blktest does with the
 * same sizes: sequential write (then fsync) and read of MB MiB in 1 MiB operations with 2 in flight, and 4 KiB
 * random reads from QD threads for SECS seconds, all O_DIRECT on the raw device (no page cache).
 * Prints one `SIROCCO-BENCH kind=blk guest=linux ...` line. Built statically by lab.py. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *dev;
static long mb;
static int fd;
static volatile int stop;
static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

struct seq { int write, lane; };
/* Lane k of 2 moves the MiB-sized chunks k, k+2, k+4...: two operations in flight, as blktest keeps. */
static void *seq_lane(void *arg) {
    struct seq *s = arg;
    void *buf;
    if (posix_memalign(&buf, 4096, 1 << 20)) exit(1);
    memset(buf, 0x5a, 1 << 20);
    for (long i = s->lane; i < mb; i += 2) {
        ssize_t n = s->write ? pwrite(fd, buf, 1 << 20, i << 20) : pread(fd, buf, 1 << 20, i << 20);
        if (n != 1 << 20) { perror(s->write ? "pwrite" : "pread"); exit(1); }
    }
    return NULL;
}

static long reads[64];
static void *rand_reader(void *arg) {
    long id = (long)arg;
    uint64_t x = 0x12345678 + id * 7919;
    void *buf;
    if (posix_memalign(&buf, 4096, 4096)) exit(1);
    uint64_t blocks = (uint64_t)mb * 256;
    while (!stop) {
        x ^= x << 13; x ^= x >> 7; x ^= x << 17;
        if (pread(fd, buf, 4096, (off_t)(x % blocks) * 4096) != 4096) { perror("pread"); exit(1); }
        reads[id]++;
    }
    return NULL;
}

static double seq(int write) {
    pthread_t t[2];
    struct seq s[2] = {{write, 0}, {write, 1}};
    double t0 = now();
    for (int i = 0; i < 2; i++) pthread_create(&t[i], NULL, seq_lane, &s[i]);
    for (int i = 0; i < 2; i++) pthread_join(t[i], NULL);
    if (write && fsync(fd)) { perror("fsync"); exit(1); }
    return mb / (now() - t0);
}

int main(int argc, char **argv) {
    if (argc != 5) { fprintf(stderr, "usage: blkbench DEVICE MB QD SECS\n"); return 2; }
    dev = argv[1]; mb = atol(argv[2]);
    int qd = atoi(argv[3]), secs = atoi(argv[4]);
    if (qd < 1 || qd > 64) return 2;
    fd = open(dev, O_RDWR | O_DIRECT);
    if (fd < 0) { perror(dev); return 1; }
    double w = seq(1), r = seq(0);
    pthread_t t[64];
    double t0 = now();
    for (long i = 0; i < qd; i++) pthread_create(&t[i], NULL, rand_reader, (void *)i);
    sleep(secs);
    stop = 1;
    long total = 0;
    for (int i = 0; i < qd; i++) { pthread_join(t[i], NULL); total += reads[i]; }
    printf("SIROCCO-BENCH kind=blk guest=linux mb=%ld seq_write_mbps=%.2f seq_read_mbps=%.2f randread_iops=%.0f qd=%d\n",
           mb, w, r, total / (now() - t0), qd);
    return 0;
}
