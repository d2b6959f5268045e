#define _GNU_SOURCE
#include "control.h"
#include "ctl_api.h"

#include <errno.h>
#include <fcntl.h>
#include <fleetgw/hex.h>
#include <fleetgw/msg.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "log.h"

static const char *get_str(json_object *o, const char *key, size_t max, char *err, size_t errlen)
{
    json_object *v = NULL;
    if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string)) {
        snprintf(err, errlen, "'%s' (a string) is required", key);
        return NULL;
    }
    const char *s = json_object_get_string(v);
    size_t n = (size_t)json_object_get_string_len(v);
    if (n == 0 || n > max || strlen(s) != n) {
        snprintf(err, errlen, "'%s' must be 1..%zu characters", key, max);
        return NULL;
    }
    return s;
}

int ctl_parse_request(const char *line, size_t len, struct ctl_request *req, char *err,
                      size_t errlen)
{
    json_tokener *tok = NULL;
    json_object *o = NULL;
    int r = -EINVAL;
    const char *s;

    memset(req, 0, sizeof(*req));
    req->fd = -1;
    if (len > CTL_LINE_MAX) {
        snprintf(err, errlen, "request longer than %d bytes", CTL_LINE_MAX);
        goto out;
    }
    tok = json_tokener_new_ex(8);
    if (tok == NULL) {
        snprintf(err, errlen, "out of memory");
        r = -ENOMEM;
        goto out;
    }
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
    o = json_tokener_parse_ex(tok, line, (int)len);
    if (o == NULL || json_tokener_get_error(tok) != json_tokener_success ||
        json_tokener_get_parse_end(tok) != len || !json_object_is_type(o, json_type_object)) {
        snprintf(err, errlen, "the request is not one JSON object");
        goto out;
    }
    const char *cmd = get_str(o, "cmd", 32, err, errlen);
    if (cmd == NULL)
        goto out;
    const struct ctl_command *c = ctl_command_find(cmd, strlen(cmd));
    if (c == NULL) {
        snprintf(err, errlen, "unknown command '%.32s'", cmd);
        goto out;
    }
    req->cmd = c->cmd;
    if (c->args & CTL_ARG_ID) {
        s = get_str(o, "id", sizeof(req->id) - 1, err, errlen);
        if (s == NULL)
            goto out;
        if (msg_node_id_valid(s, strlen(s)) != 0) {
            snprintf(err, errlen, "'id' is not a valid node id");
            goto out;
        }
        memcpy(req->id, s, strlen(s) + 1);
    }
    if (c->args & CTL_ARG_IAK_PUB) {
        s = get_str(o, "iak_pub", 130, err, errlen);
        if (s == NULL)
            goto out;
        if (strlen(s) != 130) {
            snprintf(err, errlen, "'iak_pub' must be 130 hex digits (a 65-byte point)");
            goto out;
        }
        size_t n = 0;
        if (hex_decode(s, 130, req->iak_pub, sizeof(req->iak_pub), &n) != 0 || n != 65) {
            snprintf(err, errlen, "'iak_pub' is not hexadecimal");
            goto out;
        }
        if (req->iak_pub[0] != 0x04) {
            snprintf(err, errlen, "'iak_pub' is not an uncompressed point (04...)");
            goto out;
        }
    }
    if (c->args & CTL_ARG_IAK_ID) {
        s = get_str(o, "iak_id", 64, err, errlen);
        if (s == NULL)
            goto out;
        size_t n = 0;
        if (strlen(s) != 64 || hex_decode(s, 64, req->iak_id, sizeof(req->iak_id), &n) != 0 ||
            n != sizeof(req->iak_id)) {
            snprintf(err, errlen, "'iak_id' must be 64 hex digits (a SHA-256 value)");
            goto out;
        }
    }
    if (c->args & CTL_ARG_IAK_SEALED) {
        s = get_str(o, "iak_sealed", 2 * sizeof(req->iak_sealed), err, errlen);
        if (s == NULL)
            goto out;
        if (hex_decode(s, strlen(s), req->iak_sealed, sizeof(req->iak_sealed),
                       &req->iak_sealed_len) != 0) {
            snprintf(err, errlen, "'iak_sealed' is not hexadecimal");
            goto out;
        }
    }
    if (c->args & CTL_ARG_CLASS) {
        s = get_str(o, "device_class", sizeof(req->device_class) - 1, err, errlen);
        if (s == NULL)
            goto out;
        for (const char *p = s; *p; p++)
            if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f) {
                snprintf(err, errlen, "'device_class' must be printable ASCII");
                goto out;
            }
        memcpy(req->device_class, s, strlen(s) + 1);
    }
    if (c->args & CTL_ARG_DIGEST) {
        s = get_str(o, "digest", 64, err, errlen);
        if (s == NULL)
            goto out;
        size_t n = strlen(s);
        if (n < 8 || strspn(s, "0123456789abcdefABCDEF") != n) {
            snprintf(err, errlen, "'digest' must be 8..64 hex digits");
            goto out;
        }
        memcpy(req->digest, s, n + 1);
    }
    if (c->args & CTL_ARG_CAMPAIGN) {
        s = get_str(o, "campaign", sizeof(req->campaign) - 1, err, errlen);
        if (s == NULL)
            goto out;
        if (msg_campaign_id_valid(s, strlen(s)) != 0) {
            snprintf(err, errlen, "'campaign' is not a campaign id ([A-Za-z0-9._-]{1,32})");
            goto out;
        }
        memcpy(req->campaign, s, strlen(s) + 1);
    }
    if (c->args & CTL_ARG_SPEC) {
        json_object *v = NULL;
        const char *t = "{}";
        if (json_object_object_get_ex(o, "spec", &v)) {
            if (!json_object_is_type(v, json_type_object)) {
                snprintf(err, errlen, "'spec' must be an object");
                goto out;
            }
            t = json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN);
        }
        if (strlen(t) >= sizeof(req->spec)) {
            snprintf(err, errlen, "'spec' is longer than %zu bytes", sizeof(req->spec) - 1);
            goto out;
        }
        memcpy(req->spec, t, strlen(t) + 1);
    }
    r = 0;
out:
    if (r < 0) {
        memset(req, 0, sizeof(*req));
        req->fd = -1;
    }
    if (o != NULL)
        json_object_put(o);
    if (tok != NULL)
        json_tokener_free(tok);
    return r;
}

/* ---- server ---- */

struct ctl_client {
    struct ctl_server *srv;
    int fd;
    enum ctl_role role; /* from the peer's credentials at accept */
    struct ucred cred;
    int passed_fd; /* a descriptor that came with the bytes read (SCM_RIGHTS), or -1 */
    sd_event_source *io;
    char buf[CTL_LINE_MAX + 1];
    size_t len;
    /* Answers not yet taken by the peer: out[out_off..out_len). Sent without blocking; at
     * most CTL_OUT_MAX bytes may wait before a new answer is queued. */
    char *out;
    size_t out_off, out_len, out_cap;
    bool closing; /* the peer is done sending (or is being refused): close once flushed */
};

struct ctl_server {
    sd_event *ev;
    int fd;
    sd_event_source *io;
    char path[108];
    bool has_group; /* the socket file's group: its members hold the read-only role */
    gid_t gid;
    bool has_admin; /* control.admin_group: its members hold the admin role */
    gid_t admin_gid;
    bool has_read; /* control.read_group: its members hold the read-only role */
    gid_t read_gid;
    char warning[320]; /* why a configured group was not applied, or "" */
    ctl_handler_fn fn;
    void *u;
    struct ctl_client *clients[CTL_CLIENTS_MAX];
};

static void client_free(struct ctl_client *c)
{
    if (c == NULL)
        return;
    for (size_t i = 0; i < CTL_CLIENTS_MAX; i++)
        if (c->srv->clients[i] == c)
            c->srv->clients[i] = NULL;
    sd_event_source_disable_unref(c->io);
    if (c->fd >= 0)
        close(c->fd);
    if (c->passed_fd >= 0)
        close(c->passed_fd);
    free(c->out);
    free(c);
}

/* Sends what the peer's socket takes now, never waiting; the event source then watches for
 * room (EPOLLOUT) while something is left, and for requests unless the peer is done.
 * Returns 0, 1 when the client is finished (closing and flushed), or -errno. */
static int flush_out(struct ctl_client *c)
{
    while (c->out_off < c->out_len) {
        ssize_t n =
            send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        if (n < 0)
            return -errno;
        c->out_off += (size_t)n;
    }
    if (c->out_off == c->out_len)
        c->out_off = c->out_len = 0;
    if (c->out_len == 0 && c->closing)
        return 1;
    uint32_t ev =
        (c->closing ? 0u : (uint32_t)EPOLLIN) | (c->out_len > 0 ? (uint32_t)EPOLLOUT : 0u);
    int r = sd_event_source_set_io_events(c->io, ev);
    return r < 0 ? r : 0;
}

/* Queues one answer line and sends what fits. A peer that has left more than CTL_OUT_MAX
 * bytes of earlier answers unread gets no more: -ENOBUFS (the caller disconnects it), and the
 * daemon never waits for it. */
static int respond(struct ctl_client *c, json_object *resp)
{
    int r = 0;
    const char *s = json_object_to_json_string_ext(resp, JSON_C_TO_STRING_PLAIN);
    size_t n = strlen(s);
    if (c->out_len - c->out_off >= CTL_OUT_MAX) {
        log_event(LOG_WARNING, NULL, "control_slow_client",
                  "disconnected a control client (uid %u pid %d): it left more than %d bytes "
                  "of answers unread",
                  (unsigned)c->cred.uid, (int)c->cred.pid, CTL_OUT_MAX);
        r = -ENOBUFS;
        goto out;
    }
    if (c->out_off > 0) { /* keep the pending bytes at the front */
        memmove(c->out, c->out + c->out_off, c->out_len - c->out_off);
        c->out_len -= c->out_off;
        c->out_off = 0;
    }
    if (n + 1 > c->out_cap - c->out_len) {
        size_t cap = c->out_cap ? c->out_cap : 4096;
        while (cap - c->out_len < n + 1)
            cap *= 2;
        char *p = realloc(c->out, cap);
        if (p == NULL) {
            r = -ENOMEM;
            goto out;
        }
        c->out = p;
        c->out_cap = cap;
    }
    memcpy(c->out + c->out_len, s, n);
    c->out[c->out_len + n] = '\n';
    c->out_len += n + 1;
    r = flush_out(c);
    if (r > 0)
        r = 0;
out:
    json_object_put(resp);
    return r;
}

static json_object *error_response(const char *msg)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "ok", json_object_new_boolean(0));
    json_object_object_add(o, "error", json_object_new_string(msg));
    return o;
}

/* A request the peer's role does not allow: answered naming the missing role, and logged. */
static json_object *role_refusal(const struct ctl_client *c, const struct ctl_command *cmd)
{
    log_event(LOG_WARNING, NULL, "control_refused",
              "refused control request '%s' from uid %u gid %u pid %d: it needs the %s role, "
              "the peer holds the %s role",
              cmd->name, (unsigned)c->cred.uid, (unsigned)c->cred.gid, (int)c->cred.pid,
              ctl_role_name(cmd->role), ctl_role_name(c->role));
    char msg[256];
    snprintf(msg, sizeof(msg),
             "permission denied: '%s' needs the %s role; uid %u holds the %s role (the "
             "members of control.admin_group hold the admin role)",
             cmd->name, ctl_role_name(cmd->role), (unsigned)c->cred.uid, ctl_role_name(c->role));
    json_object *o = error_response(msg);
    json_object_object_add(o, "missing_role", json_object_new_string(ctl_role_name(cmd->role)));
    json_object_object_add(o, "role", json_object_new_string(ctl_role_name(c->role)));
    return o;
}

static int client_cb(sd_event_source *s, int fd, uint32_t revents, void *u)
{
    (void)s;
    struct ctl_client *c = u;
    if (revents & (EPOLLOUT | EPOLLHUP | EPOLLERR) || c->closing) {
        /* room for queued answers, or the peer hung up (the send then fails) */
        if (flush_out(c) != 0) { /* flushed a closing client, or the peer is gone */
            client_free(c);
            return 0;
        }
    }
    if (c->closing || !(revents & (EPOLLIN | EPOLLHUP | EPOLLERR)))
        return 0;
    /* A request may come with one descriptor (ota_stage: the image file, opened by the
     * operator's fleetgwctl, so the daemon reads what the operator may read and nothing
     * else). Any other descriptor, or more than one, is closed unread. */
    union {
        char buf[CMSG_SPACE(sizeof(int) * 4)];
        struct cmsghdr align;
    } cbuf;
    struct iovec iov = {.iov_base = c->buf + c->len, .iov_len = CTL_LINE_MAX - c->len};
    struct msghdr mh = {.msg_iov = &iov,
                        .msg_iovlen = 1,
                        .msg_control = cbuf.buf,
                        .msg_controllen = sizeof(cbuf.buf)};
    ssize_t n = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return 0;
    for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); n >= 0 && cm != NULL; cm = CMSG_NXTHDR(&mh, cm)) {
        if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
            continue;
        size_t nfd = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t i = 0; i < nfd; i++) {
            int pfd;
            memcpy(&pfd, CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
            if (c->passed_fd < 0)
                c->passed_fd = pfd;
            else
                close(pfd);
        }
    }
    if (n <= 0) {
        /* The peer is done sending (or gone): answers still queued are sent first. */
        c->closing = true;
        if (n < 0 || flush_out(c) != 0)
            client_free(c);
        return 0;
    }
    c->len += (size_t)n;
    for (;;) {
        char *nl = memchr(c->buf, '\n', c->len);
        if (nl == NULL)
            break;
        size_t ll = (size_t)(nl - c->buf);
        struct ctl_request req;
        char err[160];
        json_object *resp;
        const struct ctl_command *cmd = NULL;
        if (ctl_parse_request(c->buf, ll, &req, err, sizeof(err)) < 0) {
            resp = error_response(err);
        } else if ((cmd = ctl_command_of(req.cmd)) == NULL) {
            resp = error_response("unknown command");
        } else if (cmd->role > c->role) {
            resp = role_refusal(c, cmd);
        } else if ((cmd->args & CTL_ARG_FD) && c->passed_fd < 0) {
            resp = error_response("this request needs the file passed with it (fleetgwctl "
                                  "does that)");
        } else {
            if (cmd->args & CTL_ARG_FD) {
                req.fd = c->passed_fd;
                c->passed_fd = -1;
            }
            resp = c->srv->fn(&req, c->srv->u);
            if (req.fd >= 0)
                close(req.fd);
        }
        /* a descriptor belongs to the line it came with */
        if (c->passed_fd >= 0) {
            close(c->passed_fd);
            c->passed_fd = -1;
        }
        if (resp == NULL || respond(c, resp) < 0) {
            client_free(c);
            return 0;
        }
        memmove(c->buf, nl + 1, c->len - ll - 1);
        c->len -= ll + 1;
    }
    if (c->len >= CTL_LINE_MAX) {
        c->closing = true;
        if (respond(c, error_response("request line too long")) < 0 || c->out_len == 0)
            client_free(c);
    }
    return 0;
}

static bool in_groups(gid_t want, gid_t gid, const gid_t *groups, size_t n)
{
    if (gid == want)
        return true;
    for (size_t i = 0; i < n; i++)
        if (groups[i] == want)
            return true;
    return false;
}

int ctl_server_peer_role(const struct ctl_server *srv, uid_t uid, gid_t gid, const gid_t *groups,
                         size_t ngroups, enum ctl_role *ret_role)
{
    enum ctl_role role;
    if (uid == 0 || uid == geteuid() ||
        (srv->has_admin && in_groups(srv->admin_gid, gid, groups, ngroups)))
        role = CTL_ROLE_ADMIN;
    else if ((srv->has_read && in_groups(srv->read_gid, gid, groups, ngroups)) ||
             (srv->has_group && in_groups(srv->gid, gid, groups, ngroups)))
        role = CTL_ROLE_READ;
    else
        return -EACCES;
    *ret_role = role;
    return 0;
}

#define PEER_GROUPS_MAX 256

/* The supplementary groups the peer held when it connected (SO_PEERGROUPS); where the
 * kernel lacks it, the user database's list for the peer's uid. Returns the count. */
static size_t peer_groups(int fd, const struct ucred *cr, gid_t *groups)
{
    socklen_t gl = (socklen_t)(PEER_GROUPS_MAX * sizeof(gid_t));
    if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &gl) == 0)
        return gl / sizeof(gid_t);
    struct passwd pw, *res = NULL;
    char buf[2048];
    if (getpwuid_r(cr->uid, &pw, buf, sizeof(buf), &res) != 0 || res == NULL)
        return 0;
    int ng = PEER_GROUPS_MAX;
    if (getgrouplist(pw.pw_name, pw.pw_gid, groups, &ng) < 0)
        return 0;
    return (size_t)ng;
}

static int accept_cb(sd_event_source *s, int fd, uint32_t revents, void *u)
{
    (void)s;
    (void)revents;
    struct ctl_server *srv = u;
    struct ucred cr;
    socklen_t cl = sizeof(cr);
    int cfd = accept4(fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (cfd < 0)
        return 0;
    gid_t groups[PEER_GROUPS_MAX];
    enum ctl_role role = CTL_ROLE_READ;
    memset(&cr, 0, sizeof(cr));
    if (getsockopt(cfd, SOL_SOCKET, SO_PEERCRED, &cr, &cl) != 0 ||
        ctl_server_peer_role(srv, cr.uid, cr.gid, groups, peer_groups(cfd, &cr, groups), &role) <
            0) {
        log_event(LOG_WARNING, NULL, "control_denied",
                  "refused a control connection from uid %u gid %u pid %d (not root, not the "
                  "daemon's user, in none of control.admin_group, control.read_group, "
                  "control.group)",
                  (unsigned)cr.uid, (unsigned)cr.gid, (int)cr.pid);
        /* One non-blocking send of a short line (a fresh socket's buffer holds it): a peer
         * without a role never makes the daemon wait. */
        static const char denied[] = "{\"ok\":false,\"error\":\"permission denied: this uid "
                                     "holds no control role\"}\n";
        (void)send(cfd, denied, sizeof(denied) - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
        close(cfd);
        return 0;
    }
    size_t slot;
    for (slot = 0; slot < CTL_CLIENTS_MAX; slot++)
        if (srv->clients[slot] == NULL)
            break;
    if (slot == CTL_CLIENTS_MAX) {
        close(cfd);
        return 0;
    }
    struct ctl_client *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        close(cfd);
        return 0;
    }
    c->srv = srv;
    c->fd = cfd;
    c->role = role;
    c->cred = cr;
    c->passed_fd = -1;
    if (sd_event_add_io(srv->ev, &c->io, cfd, EPOLLIN, client_cb, c) < 0) {
        close(cfd);
        free(c);
        return 0;
    }
    srv->clients[slot] = c;
    return 0;
}

/* The gid of a configured group; a name that does not exist refuses the start. */
static int resolve_group(const char *key, const char *name, gid_t *ret, char *err, size_t errlen)
{
    struct group gr, *gres = NULL;
    char gbuf[4096];
    int gr_r = getgrnam_r(name, &gr, gbuf, sizeof(gbuf), &gres);
    if (gr_r != 0 || gres == NULL) {
        snprintf(err, errlen, "%s '%s' does not exist%s%s", key, name,
                 gr_r != 0 ? ": " : " (create it, or leave the key empty)",
                 gr_r != 0 ? strerror(gr_r) : "");
        return -ENOENT;
    }
    *ret = gr.gr_gid;
    return 0;
}

int ctl_server_start(sd_event *ev, const char *path, const struct ctl_groups *groups,
                     ctl_handler_fn fn, void *u, struct ctl_server **ret, char *err, size_t errlen)
{
    struct ctl_server *srv = calloc(1, sizeof(*srv));
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    const char *group = groups->group;
    mode_t mode;
    int r;

    if (srv == NULL)
        return -ENOMEM;
    srv->fd = -1;
    srv->ev = ev;
    srv->fn = fn;
    srv->u = u;
    if (strlen(path) >= sizeof(sa.sun_path)) {
        snprintf(err, errlen, "control.socket path is too long");
        r = -ENAMETOOLONG;
        goto fail;
    }
    if (groups->admin_group[0] != '\0') {
        r = resolve_group("control.admin_group", groups->admin_group, &srv->admin_gid, err, errlen);
        if (r < 0)
            goto fail;
        srv->has_admin = true;
    }
    if (groups->read_group[0] != '\0') {
        r = resolve_group("control.read_group", groups->read_group, &srv->read_gid, err, errlen);
        if (r < 0)
            goto fail;
        srv->has_read = true;
    }
    /* The socket file. An empty control.group with no role group means the daemon's own
     * group: an unprivileged run (make demo, the tests) needs no group of its own. With role
     * groups and no control.group the file is open to every local user (0666) and the
     * credentials alone decide: members of either group must be able to connect, and a file
     * has one group. A configured control.group must exist (a typo refuses the start), and is
     * applied only where the daemon may: a user who is not a member of it cannot chown to
     * it, and then the socket stays owner-only (0600) with a warning, so a configured group
     * never widens access to the daemon's own group instead. */
    bool chown_group = true;
    if (group[0] == '\0' && (srv->has_admin || srv->has_read)) {
        chown_group = false;
        mode = 0666;
    } else if (group[0] == '\0') {
        srv->gid = getegid();
        srv->has_group = true;
        mode = 0660;
    } else {
        r = resolve_group("control.group", group, &srv->gid, err, errlen);
        if (r < 0)
            goto fail;
        srv->has_group = true;
        mode = 0660;
    }
    snprintf(srv->path, sizeof(srv->path), "%s", path);
    memcpy(sa.sun_path, path, strlen(path) + 1);
    srv->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (srv->fd < 0) {
        r = -errno;
        snprintf(err, errlen, "socket: %s", strerror(-r));
        goto fail;
    }
    struct stat st;
    if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode))
        (void)unlink(path); /* stale socket of a previous run */
    /* Bound owner-only; the group's access is opened below once the group is in place. */
    mode_t old = umask(0177);
    r = bind(srv->fd, (struct sockaddr *)&sa, sizeof(sa));
    umask(old);
    if (r < 0) {
        r = -errno;
        snprintf(err, errlen, "cannot bind %s: %s", path, strerror(-r));
        goto fail;
    }
    if (chown_group && chown(path, (uid_t)-1, srv->gid) != 0) {
        r = -errno;
        if (r != -EPERM || group[0] == '\0') {
            snprintf(err, errlen, "cannot give %s to group '%s': %s", path, group, strerror(-r));
            goto fail;
        }
        snprintf(srv->warning, sizeof(srv->warning),
                 "control.group '%s' cannot be applied to %s: uid %u is not a member of it "
                 "(%s); the socket is open to uid %u and root only",
                 group, path, (unsigned)geteuid(), strerror(-r), (unsigned)geteuid());
        srv->has_group = false;
        mode = 0600;
    }
    if (chmod(path, mode) != 0) {
        r = -errno;
        snprintf(err, errlen, "cannot set the mode of %s: %s", path, strerror(-r));
        goto fail;
    }
    if (listen(srv->fd, 16) != 0) {
        r = -errno;
        snprintf(err, errlen, "listen: %s", strerror(-r));
        goto fail;
    }
    r = sd_event_add_io(ev, &srv->io, srv->fd, EPOLLIN, accept_cb, srv);
    if (r < 0) {
        snprintf(err, errlen, "sd_event_add_io: %s", strerror(-r));
        goto fail;
    }
    *ret = srv;
    return 0;
fail:
    ctl_server_free(srv);
    return r;
}

const char *ctl_server_warning(const struct ctl_server *s)
{
    return s != NULL && s->warning[0] != '\0' ? s->warning : NULL;
}

void ctl_server_free(struct ctl_server *s)
{
    if (s == NULL)
        return;
    for (size_t i = 0; i < CTL_CLIENTS_MAX; i++)
        client_free(s->clients[i]);
    sd_event_source_disable_unref(s->io);
    if (s->fd >= 0) {
        close(s->fd);
        if (s->path[0] != '\0')
            (void)unlink(s->path);
    }
    free(s);
}
