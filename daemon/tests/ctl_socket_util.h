/* Helpers shared by the control-socket tests: a scratch directory, a server on it, and a
 * client (in a child process, optionally as another uid) that sends one request line and
 * reports the answer through its exit status. Header-only: each test program is one file. */
#ifndef FLEETGW_TEST_CTL_SOCKET_UTIL_H
#define FLEETGW_TEST_CTL_SOCKET_UTIL_H

#include <errno.h>
#include <grp.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <signal.h>
#include <systemd/sd-event.h>
#include <unistd.h>

#include "check.h"
#include "control.h"

/* Child exit codes of ctl_test_client(). */
enum {
    CLIENT_OK = 0,
    CLIENT_DENIED = 10,
    CLIENT_NO_CONNECT = 11,
    CLIENT_BAD = 12,
    CLIENT_NEEDS_ADMIN = 13, /* refused: the reply names the missing admin role */
};

__attribute__((unused)) static json_object *ctl_test_handler(const struct ctl_request *req, void *u)
{
    (void)req;
    (void)u;
    json_object *o = json_object_new_object();
    json_object_object_add(o, "ok", json_object_new_boolean(1));
    return o;
}

/* A scratch directory every uid may enter and write (the tests drop to another uid). */
static void ctl_test_dir(char *dir, size_t len)
{
    snprintf(dir, len, "%s/fleetgw-ctl-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (mkdtemp(dir) == NULL || chmod(dir, 01777) != 0) {
        perror("scratch directory");
        exit(1);
    }
}

/* Connects to path (in a child, as uid/gid unless they are -1, with the supplementary group
 * sgid unless it is -1), sends the request line req and exits CLIENT_OK when answered ok,
 * CLIENT_NEEDS_ADMIN when refused naming the admin role, CLIENT_DENIED on any other
 * "permission denied". */
static pid_t ctl_test_client_req(const char *path, uid_t uid, gid_t gid, gid_t sgid,
                                 const char *req)
{
    pid_t pid = fork();
    if (pid != 0)
        return pid;
    if (gid != (gid_t)-1 && (setgroups(sgid != (gid_t)-1 ? 1 : 0, &sgid) != 0 || setgid(gid) != 0))
        _exit(CLIENT_BAD);
    if (uid != (uid_t)-1 && setuid(uid) != 0)
        _exit(CLIENT_BAD);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0)
        _exit(CLIENT_NO_CONNECT);
    /* A refused peer may find the socket closed before its request is written (the server
     * answers and closes at accept): the answer is still there to read, so a failed write is
     * not the result, and SIGPIPE must not end the client. */
    (void)signal(SIGPIPE, SIG_IGN);
    ssize_t w = write(fd, req, strlen(req));
    (void)w;
    char buf[512];
    size_t n = 0;
    while (n < sizeof(buf) - 1) {
        ssize_t k = read(fd, buf + n, sizeof(buf) - 1 - n);
        if (k <= 0)
            break;
        n += (size_t)k;
        if (memchr(buf, '\n', n) != NULL)
            break;
    }
    buf[n] = '\0';
    if (strstr(buf, "permission denied") != NULL &&
        strstr(buf, "\"missing_role\":\"admin\"") != NULL &&
        strstr(buf, "needs the admin role") != NULL)
        _exit(CLIENT_NEEDS_ADMIN);
    if (strstr(buf, "permission denied") != NULL)
        _exit(CLIENT_DENIED);
    _exit(strstr(buf, "\"ok\":true") != NULL ? CLIENT_OK : CLIENT_BAD);
}

#define CTL_TEST_STATUS "{\"cmd\":\"status\"}\n"
#define CTL_TEST_REMOVE "{\"cmd\":\"node_remove\",\"id\":\"n-0123456789abcdef\"}\n"

/* A status request (ctl_test_client_req). */
static pid_t ctl_test_client(const char *path, uid_t uid, gid_t gid)
{
    return ctl_test_client_req(path, uid, gid, (gid_t)-1, CTL_TEST_STATUS);
}

/* Runs the event loop until the child exits; returns its exit code (-1 on a signal). */
static int ctl_test_serve_until(sd_event *ev, pid_t child)
{
    for (int i = 0; i < 1000; i++) {
        int st;
        if (waitpid(child, &st, WNOHANG) == child)
            return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
        (void)sd_event_run(ev, 10000);
    }
    (void)kill(child, SIGKILL);
    (void)waitpid(child, NULL, 0);
    return -1;
}

/* True when the process is a member of gid (primary or supplementary). */
__attribute__((unused)) static int ctl_test_in_group(gid_t gid)
{
    gid_t groups[256];
    int n = getgroups(256, groups);
    if (getegid() == gid)
        return 1;
    for (int i = 0; i < n; i++)
        if (groups[i] == gid)
            return 1;
    return 0;
}

#endif
