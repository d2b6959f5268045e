/* The control socket's output: answers are queued per client and written without blocking.
 *   - A client that sends many requests and never reads is disconnected once it has left
 *     more than CTL_OUT_MAX bytes of answers unread, having received fewer answers than it
 *     asked for; meanwhile and afterwards another client is served.
 *   - A client that reads late (it sends its requests, waits 2 s, then reads) still gets every
 *     answer: the daemon neither waits for it nor drops it while its backlog is under the cap
 *     (a blocking writer that gives up after a while would lose it).
 *   - A client that half-closes after its requests still gets every queued answer.
 * Runs as any user. */
#define _GNU_SOURCE /* POLLRDHUP */
#include <poll.h>

#include "ctl_socket_util.h"

#define PAD       16384
#define HOG_REQS  2000
#define LATE_REQS 40

static json_object *big_handler(const struct ctl_request *req, void *u)
{
    (void)req;
    (void)u;
    static char pad[PAD + 1];
    memset(pad, 'x', PAD);
    json_object *o = json_object_new_object();
    json_object_object_add(o, "ok", json_object_new_boolean(1));
    json_object_object_add(o, "pad", json_object_new_string(pad));
    return o;
}

static int connect_to(const char *path)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0)
        _exit(CLIENT_NO_CONNECT);
    (void)signal(SIGPIPE, SIG_IGN);
    return fd;
}

/* Returns how many requests were written before the server hung up (n: all). */
static int send_requests(int fd, int n)
{
    static const char req[] = "{\"cmd\":\"status\"}\n";
    for (int i = 0; i < n; i++)
        if (write(fd, req, sizeof(req) - 1) != (ssize_t)(sizeof(req) - 1))
            return i;
    return n;
}

/* Reads until EOF or an error; returns the number of answer lines. */
static long read_answers(int fd)
{
    static char buf[65536];
    long lines = 0;
    for (;;) {
        ssize_t k = read(fd, buf, sizeof(buf));
        if (k <= 0)
            break;
        for (ssize_t i = 0; i < k; i++)
            lines += buf[i] == '\n';
    }
    return lines;
}

/* The hog: sends HOG_REQS requests, reads nothing until the server hangs up (a bounded wait:
 * 600 x 100 ms), then counts what was delivered. Exit 0: disconnected with fewer answers. */
static pid_t hog(const char *path)
{
    pid_t pid = fork();
    if (pid != 0)
        return pid;
    int fd = connect_to(path);
    int sent = send_requests(fd, HOG_REQS); /* the server may hang up before the last */
    int hung_up = 0;
    for (int i = 0; i < 600 && !hung_up; i++) {
        struct pollfd p = {.fd = fd, .events = POLLRDHUP};
        hung_up = poll(&p, 1, 100) > 0 && (p.revents & (POLLRDHUP | POLLHUP)) != 0;
    }
    if (!hung_up)
        _exit(20);
    long got = read_answers(fd);
    fprintf(stderr, "  hog: sent %d requests, got %ld answers before the server hung up\n", sent,
            got);
    _exit(got > 0 && got < sent ? CLIENT_OK : 21);
}

/* The late reader: LATE_REQS requests, 2 s without reading, then every answer. With
 * half_close it shuts its sending side down first. Exit 0: all answers arrived. */
static pid_t late_reader(const char *path, int half_close)
{
    pid_t pid = fork();
    if (pid != 0)
        return pid;
    int fd = connect_to(path);
    if (send_requests(fd, LATE_REQS) != LATE_REQS)
        _exit(CLIENT_BAD);
    if (half_close && shutdown(fd, SHUT_WR) != 0)
        _exit(CLIENT_BAD);
    sleep(2);
    long got = 0;
    static char buf[65536];
    while (got < LATE_REQS) {
        ssize_t k = read(fd, buf, sizeof(buf));
        if (k <= 0)
            break;
        for (ssize_t i = 0; i < k; i++)
            got += buf[i] == '\n';
    }
    if (got != LATE_REQS)
        fprintf(stderr, "  late reader: %ld of %d answers\n", got, LATE_REQS);
    _exit(got == LATE_REQS ? CLIENT_OK : 22);
}

/* Serves until both children exit; returns their exit codes. */
static void serve_two(sd_event *ev, pid_t a, pid_t b, int *ra, int *rb)
{
    *ra = *rb = -1;
    int left = 2;
    for (int i = 0; i < 20000 && left > 0; i++) {
        int st;
        if (*ra == -1 && waitpid(a, &st, WNOHANG) == a) {
            *ra = WIFEXITED(st) ? WEXITSTATUS(st) : 100;
            left--;
        }
        if (*rb == -1 && waitpid(b, &st, WNOHANG) == b) {
            *rb = WIFEXITED(st) ? WEXITSTATUS(st) : 100;
            left--;
        }
        (void)sd_event_run(ev, 10000);
    }
}

int main(void)
{
    char dir[128], path[192], err[256] = "";
    sd_event *ev = NULL;
    struct ctl_server *srv = NULL;
    const struct ctl_groups none = {"", "", ""};
    int ra, rb;

    ctl_test_dir(dir, sizeof(dir));
    CHECK(sd_event_new(&ev) >= 0);
    snprintf(path, sizeof(path), "%s/out.sock", dir);
    CHECK_EQ_INT(ctl_server_start(ev, path, &none, big_handler, NULL, &srv, err, sizeof(err)), 0);
    CHECK(HOG_REQS * (long)PAD > 4L * CTL_OUT_MAX); /* the hog must overflow the cap */
    CHECK(LATE_REQS * (long)PAD < CTL_OUT_MAX);     /* the late reader must not */

    /* A hog and a normal client at once: the hog is cut off, the other is answered. */
    serve_two(ev, hog(path), ctl_test_client(path, (uid_t)-1, (gid_t)-1), &ra, &rb);
    CHECK_EQ_INT(ra, CLIENT_OK);
    CHECK_EQ_INT(rb, CLIENT_OK);
    /* ... and the server goes on serving. */
    CHECK_EQ_INT(ctl_test_serve_until(ev, ctl_test_client(path, (uid_t)-1, (gid_t)-1)), CLIENT_OK);

    /* Late readers under the cap lose nothing, half-closed or not; others are served while
     * they wait. */
    serve_two(ev, late_reader(path, 0), ctl_test_client(path, (uid_t)-1, (gid_t)-1), &ra, &rb);
    CHECK_EQ_INT(ra, CLIENT_OK);
    CHECK_EQ_INT(rb, CLIENT_OK);
    serve_two(ev, late_reader(path, 1), ctl_test_client(path, (uid_t)-1, (gid_t)-1), &ra, &rb);
    CHECK_EQ_INT(ra, CLIENT_OK);
    CHECK_EQ_INT(rb, CLIENT_OK);

    ctl_server_free(srv);
    sd_event_unref(ev);
    (void)rmdir(dir);
    return check_finish();
}
