/* httpload: the lab's HTTP load generator and kv client, run in dom0 (no Python there; curl forks per request).
 *
 *   httpload ka    HOST PORT N CONNS        N GETs of / spread over CONNS keep-alive connections (one thread each)
 *   httpload fresh HOST PORT N THREADS      N GETs of /, each on a new connection, THREADS at a time
 *   httpload put   HOST PORT PREFIX FILE [MAX]
 *                                           PUT /kv/PREFIX-1, -2, ... on one keep-alive connection (reconnecting
 *                                           when it drops) until killed or MAX acknowledged; each key is appended
 *                                           to FILE (write(2), so nothing acknowledged is lost to buffering) only
 *                                           once its 204 arrived
 *   httpload verify HOST PORT FILE          GET /kv/<key> for every key in FILE on one keep-alive connection and
 *                                           compare with value_for(key); prints the keys that are missing/wrong
 *
 * Every mode prints one summary line "httpload: ok=N bad=N ..." and exits 0 only if bad == 0 (put: always 0).
 * Values are value_for(key) = "<key>:" followed by the key reversed, repeated to 64 bytes: cheap to recompute
 * here and different for every key, so a value written under another key is caught.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

static const char *host;
static int port;

static void value_for(const char *key, char *out, size_t cap) {
    size_t n = (size_t)snprintf(out, cap, "%s:", key), kl = strlen(key);
    for (size_t i = 0; n + 1 < cap && n < 64 + kl + 1; i++) out[n++] = key[kl - 1 - (i % kl)];
    out[n] = 0;
}

static int dial(void) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return -1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((unsigned short)port)};
    inet_pton(AF_INET, host, &a.sin_addr);
    struct timeval tv = {.tv_sec = 10};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static int send_all(int fd, const char *p, size_t n) {
    while (n) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w <= 0) return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* One response: returns the status (or -1 on a dropped/garbled connection); the body (up to cap-1 bytes) in
 * body, *closing set when the server said Connection: close. `buf`/`have` carry bytes read past the response. */
struct conn {
    int fd;
    char buf[65536];
    size_t have;
};

static int response(struct conn *c, char *body, size_t cap, int *closing) {
    char *end;
    for (;;) {
        c->buf[c->have] = 0;
        if ((end = strstr(c->buf, "\r\n\r\n"))) break;
        if (c->have + 1 >= sizeof c->buf) return -1;
        ssize_t r = recv(c->fd, c->buf + c->have, sizeof c->buf - 1 - c->have, 0);
        if (r <= 0) return -1;
        c->have += (size_t)r;
    }
    int status = 0;
    if (sscanf(c->buf, "HTTP/1.%*d %d", &status) != 1) return -1;
    size_t head = (size_t)(end - c->buf) + 4, len = 0;
    *closing = 0;
    for (char *l = strstr(c->buf, "\r\n"); l && l < end; l = strstr(l + 2, "\r\n")) {
        if (!strncasecmp(l + 2, "content-length:", 15)) len = strtoul(l + 17, NULL, 10);
        if (!strncasecmp(l + 2, "connection:", 11)) {
            char *eol = strstr(l + 2, "\r\n"), *cl = strcasestr(l + 13, "close");
            if (cl && cl < eol) *closing = 1;
        }
    }
    while (c->have < head + len) {
        if (c->have >= sizeof c->buf - 1) return -1; /* bodies here are small */
        ssize_t r = recv(c->fd, c->buf + c->have, sizeof c->buf - 1 - c->have, 0);
        if (r <= 0) return -1;
        c->have += (size_t)r;
    }
    if (body) {
        size_t n = len < cap - 1 ? len : cap - 1;
        memcpy(body, c->buf + head, n);
        body[n] = 0;
    }
    memmove(c->buf, c->buf + head + len, c->have - head - len);
    c->have -= head + len;
    return status;
}

static double now_s(void) {
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (double)tv.tv_sec + tv.tv_usec / 1e6;
}

static long per_thread, total_ok, total_bad, total_conns;
/* Why requests failed: no connection, the connection dropped or timed out before a whole response, another status. */
static long why_dial, why_conn, why_status;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static int fresh_mode;

static void *load(void *arg) {
    (void)arg;
    long ok = 0, bad = 0, conns = 0, dialf = 0, connf = 0, statusf = 0;
    struct conn *c = calloc(1, sizeof *c);
    c->fd = -1;
    char req[256];
    int n = snprintf(req, sizeof req, "GET / HTTP/1.1\r\nHost: %s\r\n%s\r\n", host,
                     fresh_mode ? "Connection: close\r\n" : "");
    for (long i = 0; i < per_thread; i++) {
        if (c->fd < 0) {
            if ((c->fd = dial()) < 0) {
                bad++;
                dialf++;
                continue;
            }
            c->have = 0;
            conns++;
        }
        int closing = 0;
        int st = send_all(c->fd, req, (size_t)n) ? -1 : response(c, NULL, 0, &closing);
        if (st == 200) {
            ok++;
        } else {
            bad++;
            if (st < 0) connf++; else statusf++;
        }
        if (st < 0 || closing || fresh_mode) {
            close(c->fd);
            c->fd = -1;
        }
    }
    if (c->fd >= 0) close(c->fd);
    free(c);
    pthread_mutex_lock(&mu);
    total_ok += ok;
    total_bad += bad;
    total_conns += conns;
    why_dial += dialf;
    why_conn += connf;
    why_status += statusf;
    pthread_mutex_unlock(&mu);
    return NULL;
}

static int run_load(long n, int threads) {
    if (threads < 1 || threads > 256) return 2;
    per_thread = n / threads;
    pthread_t t[256];
    double t0 = now_s();
    for (int i = 0; i < threads; i++) pthread_create(&t[i], NULL, load, NULL);
    for (int i = 0; i < threads; i++) pthread_join(t[i], NULL);
    double took = now_s() - t0;
    printf("httpload: ok=%ld bad=%ld (no connection %ld, dropped %ld, other status %ld) connections=%ld seconds=%.1f "
           "rate=%.0f/s\n", total_ok, total_bad, why_dial, why_conn, why_status, total_conns, took,
           (double)total_ok / took);
    return total_bad == 0 && total_ok == per_thread * threads ? 0 : 1;
}

static int run_put(const char *prefix, const char *file, long max) {
    int out = open(file, O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (out < 0) {
        perror(file);
        return 2;
    }
    struct conn *c = calloc(1, sizeof *c);
    c->fd = -1;
    long ok = 0, bad = 0;
    for (long i = 1; max == 0 || ok < max; i++) {
        char key[128], val[256], req[512];
        snprintf(key, sizeof key, "%s-%ld", prefix, i);
        value_for(key, val, sizeof val);
        int n = snprintf(req, sizeof req, "PUT /kv/%s HTTP/1.1\r\nHost: %s\r\nContent-Length: %zu\r\n\r\n%s", key, host,
                         strlen(val), val);
        if (c->fd < 0) {
            if ((c->fd = dial()) < 0) {
                bad++;
                usleep(100000);
                continue;
            }
            c->have = 0;
        }
        int closing = 0;
        int st = send_all(c->fd, req, (size_t)n) ? -1 : response(c, NULL, 0, &closing);
        if (st == 204) {
            char line[160];
            int l = snprintf(line, sizeof line, "%s\n", key);
            if (write(out, line, (size_t)l) != l) return 2;
            ok++;
        } else {
            bad++;
        }
        if (st < 0 || closing) {
            close(c->fd);
            c->fd = -1;
        }
    }
    printf("httpload: ok=%ld bad=%ld\n", ok, bad);
    return 0;
}

static int run_verify(const char *file) {
    FILE *in = fopen(file, "r");
    if (!in) {
        perror(file);
        return 2;
    }
    struct conn *c = calloc(1, sizeof *c);
    c->fd = -1;
    long ok = 0, bad = 0;
    char key[160];
    while (fgets(key, sizeof key, in)) {
        key[strcspn(key, "\n")] = 0;
        if (!key[0]) continue;
        char want[256], got[512], req[512];
        value_for(key, want, sizeof want);
        int n = snprintf(req, sizeof req, "GET /kv/%s HTTP/1.1\r\nHost: %s\r\n\r\n", key, host);
        int st = -1;
        for (int attempt = 0; attempt < 3 && st < 0; attempt++) {
            if (c->fd < 0 && (c->fd = dial()) >= 0) c->have = 0;
            if (c->fd < 0) continue;
            int closing = 0;
            st = send_all(c->fd, req, (size_t)n) ? -1 : response(c, got, sizeof got, &closing);
            if (st < 0 || closing) {
                close(c->fd);
                c->fd = -1;
            }
        }
        if (st == 200 && !strcmp(got, want)) {
            ok++;
        } else {
            bad++;
            if (bad <= 20) printf("httpload: %s: status %d, value %s\n", key, st, st == 200 ? got : "-");
        }
    }
    printf("httpload: ok=%ld bad=%ld\n", ok, bad);
    return bad == 0 ? 0 : 1;
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc < 5) {
        fprintf(stderr, "usage: see the comment at the top of httpload.c\n");
        return 2;
    }
    host = argv[2];
    port = atoi(argv[3]);
    if (!strcmp(argv[1], "ka") && argc == 6) return run_load(atol(argv[4]), atoi(argv[5]));
    if (!strcmp(argv[1], "fresh") && argc == 6) {
        fresh_mode = 1;
        return run_load(atol(argv[4]), atoi(argv[5]));
    }
    if (!strcmp(argv[1], "put") && argc >= 6) return run_put(argv[4], argv[5], argc > 6 ? atol(argv[6]) : 0);
    if (!strcmp(argv[1], "verify") && argc == 5) return run_verify(argv[4]);
    fprintf(stderr, "usage: see the comment at the top of httpload.c\n");
    return 2;
}
