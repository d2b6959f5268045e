/* fleetgwd: the fleetgw gateway daemon. This file owns the event-loop wiring (io sources,
 * timers, the post source that flushes after every event), the commit orchestration below,
 * signals and main. The rooms around it (daemon.h): edge.c (edge client, ingress policy,
 * down-queue delivery), uplink.c (cloud client, TLS, back-off, drain), gate_io.c (the
 * attestation gate's actions; the gate itself is gate.c), ctl_api.c (control requests),
 * reload.c (SIGHUP), ota_xfer.c and ota_job.c (OTA hand-over and cloud jobs).
 *
 * One sd-event loop drives two libmosquitto clients through their sockets:
 *  - edge:   the local broker over its unix socket, persistent session (clean_session
 *            false), QoS 1, subscribed to fleet/+/up/# and fleet/+/attest/evidence;
 *  - uplink: the cloud broker over mutual TLS with the TPM-held key (tpm_tls_ctx_new),
 *            will + retained status <prefix>/gateway/<client_id>/status.
 *
 * Durability of acknowledged messages (see docs/daemon.md, "Acknowledgement ordering").
 * libmosquitto 2.0.11 (Debian 12) sends the PUBACK of an incoming QoS 1 PUBLISH *before*
 * calling on_message (lib/handle_publish.c; the order was only reversed upstream in 2.0.16).
 * In the default non-threaded mode packet__queue() writes that PUBACK to the socket at once,
 * so a crash inside or right after on_message would lose an acknowledged message. fleetgwd
 * therefore marks both clients as externally threaded (mosquitto_threaded_set(m, true)):
 * packet__queue() then only queues packets, and nothing reaches the socket until we call
 * mosquitto_loop_write(). The edge read handler is:
 *     mosquitto_loop_read(edge)   -> on_message appends to the spool (open transaction),
 *                                    libmosquitto queues the PUBACKs
 *     daemon_commit()             -> one fsync'ed WAL commit for the whole batch
 *     mosquitto_loop_write(edge)  -> only now the PUBACKs leave (held back while
 *                                    edge_appended says a batch is not committed yet)
 * If the commit fails, the edge socket is shut down without writing, the queued PUBACKs are
 * discarded on reconnect and the broker redelivers the messages (persistent session).
 *
 * Cloud commands take the same way in the other direction (down-queue, daemon/src/downq.c):
 *     mosquitto_loop_read(up)     -> uplink_on_message appends the command to the down-queue
 *                                    (same open transaction), libmosquitto queues the PUBACK
 *     daemon_commit()             -> commit_before_uplink(), first thing in daemon_flush()
 *     mosquitto_loop_write(up)    -> only now the PUBACK leaves for the cloud broker
 * If that commit fails, the uplink socket is shut down without writing; the uplink client
 * is recreated per connection, so the queued PUBACKs die with it and the cloud broker
 * redelivers (persistent session). Queued commands go to the edge broker in id order, QoS 1,
 * at most DOWN_INFLIGHT_MAX unacknowledged, and are deleted on the edge broker's PUBACK.
 *
 * Throughput (docs/benchmarks.md): the costs are system calls, so the relay path counts
 * them per batch where it can. Under load the edge socket is read and committed at most
 * every spool.commit_gap_ms (one wake-up, one fsync per batch); acknowledgements from the
 * cloud and counters are written by the next commit, not per message (spool.h); the
 * uplink's TLS records are gathered and written once per loop iteration (tls_wbuf.h);
 * libmosquitto's per-packet log formatting is off unless debugging.
 */
#define _GNU_SOURCE
#include "daemon.h"
#include "fleetgw_version.h"
#include "tls_wbuf.h"

#include <errno.h>
#include <fleetgw/tpm_tls.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sysexits.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

/* ---- libmosquitto <-> sd-event glue ---- */

static int mosq_io_cb(sd_event_source *s, int fd, uint32_t revents, void *u);

static void io_update(struct daemon *d, struct mosquitto *m, sd_event_source **src, int *cur_fd)
{
    int fd = m ? mosquitto_socket(m) : -1;
    if (fd != *cur_fd) {
        *src = sd_event_source_disable_unref(*src);
        *cur_fd = -1;
        if (fd >= 0) {
            int r = sd_event_add_io(d->ev, src, fd, EPOLLIN, mosq_io_cb, d);
            if (r < 0) {
                log_err("cannot watch a broker socket: %s", strerror(-r));
                return;
            }
            *cur_fd = fd;
        }
    }
    if (*src != NULL) {
        uint32_t ev = (m == d->edge && d->edge_hold) ? 0 : EPOLLIN;
        if (m != d->up) {
            /* The edge's PUBACKs wait for the commit (edge_appended), not for the socket. */
            if (d->edge_appended == 0 && mosquitto_want_write(m))
                ev |= EPOLLOUT;
        } else if (d->up_state == UP_CONNECTING) {
            /* Writable once, when the TCP connection is made; the TLS handshake is then
             * driven by reads (the queued CONNECT makes want_write true all along). */
            if (!d->up_tcp_ready)
                ev |= EPOLLOUT;
        } else if (mosquitto_want_write(m) ||
                   (up_wbuf(d) != NULL && tls_wbuf_pending(d->up_wbuf) > 0)) {
            ev |= EPOLLOUT;
        }
        (void)sd_event_source_set_io_events(*src, ev);
    }
}

/* ---- commit orchestration: the spool first, then the acknowledgements ---- */

/* Commits the spool. The PUBACKs of node messages appended since the last commit leave
 * only after it succeeded (daemon_flush holds them back while edge_appended is set); if it
 * failed, the edge connection is closed without writing them, so the broker redelivers. */
static int daemon_commit(struct daemon *d)
{
    d->last_commit_us = now_us(); /* when it started: the gap does not count the fsync */
    gate_io_commit(d);            /* the registry's batch first (gate_io.c) */
    int r = spool_commit(d->spool);
    if (r < 0)
        batch_pending_drop(d); /* rows it holds may be gone with the transaction */
    if (r < 0 && d->edge_appended > 0) {
        log_event(LOG_ERR, NULL, "spool_error",
                  "cannot commit the spool (%s): closing the edge connection so that the "
                  "broker redelivers",
                  strerror(-r));
        int fd = mosquitto_socket(d->edge);
        if (fd >= 0)
            shutdown(fd, SHUT_RDWR);
    } else if (r < 0) {
        log_err("cannot commit the spool: %s", strerror(-r));
    }
    d->edge_appended = 0;
    return r;
}

/* Arms the commit timer to fire at `at` (CLOCK_MONOTONIC us) unless it fires earlier. */
static void commit_at(struct daemon *d, uint64_t at)
{
    uint64_t cur = 0;
    int enabled = 0;
    (void)sd_event_source_get_enabled(d->commit_timer, &enabled);
    if (enabled && sd_event_source_get_time(d->commit_timer, &cur) >= 0 && cur <= at)
        return;
    (void)sd_event_source_set_time(d->commit_timer, at);
    (void)sd_event_source_set_enabled(d->commit_timer, SD_EVENT_ONESHOT);
}

/* Commits what must be durable before the uplink writes, when `*pending` says there is
 * some: the cloud commands its read path appended (before their PUBACKs), or a batch's
 * record (before its PUBLISH: issue 17's "a message is never in two acknowledged batches"
 * rests on it). libmosquitto only queues packets (the client is marked threaded) until
 * uplink_write() in daemon_flush(). On failure the uplink socket is shut down unwritten:
 * the cloud redelivers the commands, the batch's rows go again after the reconnect. */
static void commit_before_uplink(struct daemon *d, bool *pending, const char *what)
{
    if (!*pending)
        return;
    *pending = false;
    int r = daemon_commit(d); /* also holds back / drops the edge's PUBACKs on failure */
    if (r < 0) {
        log_event(LOG_ERR, NULL, "spool_error",
                  "cannot commit %s (%s): closing the cloud connection before it writes", what,
                  strerror(-r));
        if (d->up != NULL) {
            int fd = mosquitto_socket(d->up);
            if (fd >= 0)
                shutdown(fd, SHUT_RDWR);
        }
    }
}

/* The edge socket became readable. Under load (a commit less than spool.commit_gap_ms ago)
 * the socket is left to fill until the commit timer reads it all at once; otherwise it is
 * read and committed now. Either way one read batch = one commit, then the PUBACKs. */
static void edge_readable(struct daemon *d, uint32_t revents)
{
    uint64_t t = now_us(), gap = (uint64_t)d->cfg.spool.commit_gap_ms * 1000ULL;
    if (!(revents & (EPOLLHUP | EPOLLERR)) && t - d->last_commit_us < gap) {
        d->edge_hold = true; /* io_update stops watching EPOLLIN meanwhile */
        commit_at(d, d->last_commit_us + gap);
        return;
    }
    edge_read_batch(d);
    if (d->edge_appended > 0)
        (void)daemon_commit(d);
}

static int commit_timer_cb(sd_event_source *s, uint64_t usec, void *u)
{
    (void)s;
    (void)usec;
    struct daemon *d = u;
    if (d->edge_hold) {
        d->edge_hold = false;
        if (d->edge != NULL && mosquitto_socket(d->edge) >= 0)
            edge_read_batch(d);
    }
    (void)daemon_commit(d);
    return 0;
}

/* Commits, drains, writes what libmosquitto queued, and re-arms the io sources. Run by one
 * sd-event post source after every event the loop dispatched (a socket, a timer, a signal,
 * a control request), so no handler has to remember to call it: an operator's
 * `fleetgwctl attest` leaves at once instead of at the next tick. */
static void daemon_flush(struct daemon *d)
{
    if (d->commit_wanted) { /* asked for by a module (e.g. the uplink's on_connect) */
        d->commit_wanted = false;
        (void)daemon_commit(d);
    }
    commit_before_uplink(d, &d->down_uncommitted, "cloud commands"); /* before their PUBACKs */
    drain(d);
    commit_before_uplink(d, &d->batch_uncommitted, "a batch's record"); /* before it leaves */
    drain_down(d);
    /* Deletes (after cloud PUBACKs), counters and the like are group-committed by a short
     * timer; node messages by the edge read path (edge_readable), before any PUBACK. */
    if (spool_dirty(d->spool))
        commit_at(d, now_us() + COMMIT_DELAY_US);
    if (d->edge != NULL && mosquitto_socket(d->edge) >= 0 && d->edge_appended == 0 &&
        mosquitto_want_write(d->edge))
        (void)mosquitto_loop_write(d->edge, 64);
    if (d->up != NULL && d->up_state != UP_IDLE && mosquitto_socket(d->up) >= 0)
        uplink_write(d);
    uplink_after_write(d);
    io_update(d, d->edge, &d->edge_io, &d->edge_fd);
    if (d->up != NULL)
        io_update(d, d->up, &d->up_io, &d->up_fd);
    if (d->edge != NULL && mosquitto_socket(d->edge) < 0 && !d->stopping &&
        sd_event_source_get_enabled(d->edge_timer, NULL) == 0) {
        d->edge_backoff_ms = d->edge_backoff_ms ? d->edge_backoff_ms : 100;
        (void)sd_event_source_set_time_relative(d->edge_timer, (uint64_t)d->edge_backoff_ms * 1000);
        (void)sd_event_source_set_enabled(d->edge_timer, SD_EVENT_ONESHOT);
    }
}

static int flush_post_cb(sd_event_source *s, void *u)
{
    (void)s;
    daemon_flush(u);
    return 0;
}

static int mosq_io_cb(sd_event_source *s, int fd, uint32_t revents, void *u)
{
    (void)s;
    struct daemon *d = u;
    if (d->edge != NULL && fd == d->edge_fd) {
        if (revents & (EPOLLIN | EPOLLHUP | EPOLLERR))
            edge_readable(d, revents);
        /* PUBACKs leave only after the commit above (in daemon_flush). */
    } else if (d->up != NULL && fd == d->up_fd) {
        uplink_io(d, fd, revents);
    }
    return 0;
}

/* ---- periodic work, signals, notify ---- */

static void update_status(struct daemon *d)
{
    char st[384], sh[160];
    struct shape_status ss;
    shape_status_of(d, &ss);
    shape_status_line(&ss, sh, sizeof(sh));
    snprintf(st, sizeof(st),
             "edge %s, cloud %s (%s); spooled %llu msg / %lld B; relayed up %llu, "
             "down %llu; %s",
             d->edge_connected ? "up" : "down",
             d->up_state == UP_CONNECTED ? "up"
                                         : (d->up_state == UP_CONNECTING ? "connecting" : "down"),
             uplink_endpoint(d), (unsigned long long)spool_messages(d->spool),
             (long long)spool_bytes(d->spool), (unsigned long long)d->relayed_up,
             (unsigned long long)d->relayed_down, sh);
    if (strcmp(st, d->last_status) != 0) {
        memcpy(d->last_status, st, sizeof(st));
        (void)sd_notifyf(0, "STATUS=%s", st);
    }
}

static int tick_cb(sd_event_source *s, uint64_t usec, void *u)
{
    struct daemon *d = u;
    if (d->edge != NULL && mosquitto_socket(d->edge) >= 0)
        (void)mosquitto_loop_misc(d->edge);
    if (d->up != NULL && d->up_state == UP_CONNECTED)
        (void)mosquitto_loop_misc(d->up);
    if (d->ticks % EDGE_SEEN_EVERY_S == 0)
        edge_mark_seen(d);
    if (++d->ticks % 10 == 0) {
        uplink_expire(d);
        edge_expire(d);
        uplink_publish_status(d);
    }
    update_status(d);
    (void)sd_event_source_set_time(s, usec + 1000000ULL);
    return 0;
}

static int watchdog_cb(sd_event_source *s, uint64_t usec, void *u)
{
    struct daemon *d = u;
    (void)sd_notify(0, "WATCHDOG=1");
    (void)sd_event_source_set_time(s, usec + d->watchdog_usec / 2);
    return 0;
}

static int on_sigterm(sd_event_source *s, const struct signalfd_siginfo *si, void *u)
{
    (void)s;
    struct daemon *d = u;
    log_notice("received %s, stopping", si->ssi_signo == SIGTERM ? "SIGTERM" : "SIGINT");
    (void)sd_notify(0, "STOPPING=1");
    edge_mark_seen(d);
    int r = daemon_commit(d);
    if (r == 0 && d->edge != NULL && mosquitto_socket(d->edge) >= 0) {
        (void)mosquitto_loop_write(d->edge, 64);
        d->stopping = true;
        (void)mosquitto_disconnect(d->edge);
        (void)mosquitto_loop_write(d->edge, 8);
    }
    d->stopping = true;
    uplink_stop(d);
    return sd_event_exit(sd_event_source_get_event(s), 0);
}

static int on_sighup(sd_event_source *s, const struct signalfd_siginfo *si, void *u)
{
    (void)s;
    (void)si;
    daemon_reload(u);
    return 0;
}

static void print_counter(const char *name, uint64_t n, void *u)
{
    (void)u;
    log_info("counter %s = %llu", name, (unsigned long long)n);
}

static void usage(FILE *f)
{
    fprintf(f, "Usage: fleetgwd [--config FILE] [--check-config]\n"
               "  --config FILE   configuration (default " CONFIG_DEFAULT_PATH ")\n"
               "  --check-config  validate the configuration and exit (0 when valid)\n"
               "  --help          this text\n"
               "  --version       print the package version\n");
}

/* ---- start-up ---- */

/* What the control requests read of the daemon's state (ctl_api.h). */
static void ctl_status(void *u, struct ctl_status *ret)
{
    struct daemon *d = u;
    ret->edge = d->edge_connected ? "connected" : "disconnected";
    ret->cloud = d->up_state == UP_CONNECTED    ? "connected"
                 : d->up_state == UP_CONNECTING ? "connecting"
                                                : "disconnected";
    ret->cloud_endpoint = uplink_endpoint(d);
    ret->inflight = d->n_inflight;
    shape_status_of(d, &ret->shape);
    ret->shape.profile = d->cfg.uplink.profile;
    ret->down_inflight = d->n_down_inflight;
    ota_xfer_stats(d, &ret->ota_bytes_sent, &ret->ota_bytes_resent, &ret->ota_chunks);
}

/* A CLOCK_MONOTONIC timer usec from now, enabled as said. */
static int add_timer(struct daemon *d, sd_event_source **ret, uint64_t usec, uint64_t accuracy,
                     sd_event_time_handler_t cb, int enabled)
{
    int r = sd_event_add_time_relative(d->ev, ret, CLOCK_MONOTONIC, usec, accuracy, cb, d);
    return r < 0 ? r : sd_event_source_set_enabled(*ret, enabled);
}

static int run(struct daemon *d)
{
    int r;
    char err[512];

    r = spool_open(d->cfg.spool.path, d->cfg.spool.max_bytes, &d->spool);
    if (r < 0) {
        log_event(LOG_ERR, NULL, "spool_open", "cannot open the spool %s: %s", d->cfg.spool.path,
                  strerror(-r));
        return EX_CANTCREAT;
    }
    r = downq_open(d->spool, &d->downq);
    if (r < 0) {
        log_event(LOG_ERR, NULL, "spool_open", "cannot open the down-queue in %s: %s",
                  d->cfg.spool.path, strerror(-r));
        return EX_CANTCREAT;
    }
    r = registry_open(d->cfg.registry.path, &d->registry);
    if (r < 0) {
        log_event(LOG_ERR, NULL, "registry_open", "cannot open the registry %s: %s",
                  d->cfg.registry.path, strerror(-r));
        return EX_CANTCREAT;
    }
    r = policy_load(&d->cfg, &d->policy, err, sizeof(err));
    if (r < 0) {
        log_event(LOG_ERR, NULL, "config_invalid", "attestation: %s", err);
        return CONFIG_EXIT_RANGE;
    }
    policy_report(d);
    r = uplink_setup(d);
    if (r != 0)
        return r;
    r = gate_io_start(d);
    if (r < 0) {
        log_err("cannot set up the node table: %s", strerror(-r));
        return EX_OSERR;
    }

    r = sd_event_default(&d->ev);
    if (r >= 0)
        r = sd_event_add_signal(d->ev, NULL, SIGTERM, on_sigterm, d);
    if (r >= 0)
        r = sd_event_add_signal(d->ev, NULL, SIGINT, on_sigterm, d);
    if (r >= 0)
        r = sd_event_add_signal(d->ev, NULL, SIGHUP, on_sighup, d);
    if (r >= 0)
        r = add_timer(d, &d->edge_timer, 0, 0, edge_timer_cb, SD_EVENT_ONESHOT);
    if (r >= 0)
        r = add_timer(d, &d->up_timer, 0, 0, up_timer_cb, SD_EVENT_ONESHOT);
    if (r >= 0)
        r = add_timer(d, &d->drain_timer, 1000, TIMER_ACCURACY_US, drain_timer_cb, SD_EVENT_OFF);
    if (r >= 0)
        r = add_timer(d, &d->commit_timer, COMMIT_DELAY_US, TIMER_ACCURACY_US, commit_timer_cb,
                      SD_EVENT_OFF);
    if (r >= 0)
        r = add_timer(d, &d->up_buffered_timer, 0, TIMER_ACCURACY_US, up_buffered_timer_cb,
                      SD_EVENT_OFF);
    if (r >= 0)
        r = add_timer(d, &d->tick, 1000000, 0, tick_cb, SD_EVENT_ON);
    if (r >= 0) /* armed by gate_io at the earliest outstanding challenge expiry */
        r = add_timer(d, &d->attest_timer, 0, 0, attest_timer_cb, SD_EVENT_OFF);
    if (r >= 0)
        r = sd_event_add_post(d->ev, &d->flush_post, flush_post_cb, d);
    if (r >= 0 && sd_watchdog_enabled(0, &d->watchdog_usec) > 0) {
        r = sd_event_add_time_relative(d->ev, &d->watchdog, CLOCK_MONOTONIC, d->watchdog_usec / 2,
                                       0, watchdog_cb, d);
        if (r >= 0)
            r = sd_event_source_set_enabled(d->watchdog, SD_EVENT_ON);
    }
    if (r < 0) {
        log_err("cannot set up the event loop: %s", strerror(-r));
        return EX_OSERR;
    }

    d->ctl_api = (struct ctl_api){.registry = d->registry,
                                  .spool = d->spool,
                                  .downq = d->downq,
                                  .gate = d->gate,
                                  .cfg = &d->cfg,
                                  .status = ctl_status,
                                  .u = d};
    r = broker_snapshot_start(d); /* the edge broker plugin's copy of the registry */
    if (r < 0) {
        log_err("cannot set up the broker snapshot: %s", strerror(-r));
        return EX_OSERR;
    }
    r = ota_xfer_start(d); /* fills ctl_api.ota, or logs why OTA is unavailable */
    if (r == 0)
        r = ota_job_start(d); /* cloud jobs, resuming downloads */
    if (r < 0) {
        log_err("cannot set up OTA: %s", strerror(-r));
        return EX_OSERR;
    }
    const struct ctl_groups groups = {d->cfg.control.group, d->cfg.control.admin_group,
                                      d->cfg.control.read_group};
    r = ctl_server_start(d->ev, d->cfg.control.socket, &groups, ctl_api_dispatch, &d->ctl_api,
                         &d->ctl, err, sizeof(err));
    if (r < 0) {
        log_event(LOG_ERR, NULL, "control_socket", "cannot open the control socket: %s", err);
        return EX_UNAVAILABLE;
    }
    if (ctl_server_warning(d->ctl) != NULL)
        log_event(LOG_WARNING, NULL, "control_group", "%s", ctl_server_warning(d->ctl));

    r = edge_setup(d);
    if (r < 0)
        return r == -ENOMEM ? EX_OSERR : EX_UNAVAILABLE;
    mosq_log_enable(d, d->edge, false);
    if (edge_connect(d) < 0)
        (void)sd_event_source_set_enabled(d->edge_timer, SD_EVENT_ONESHOT);
    (void)sd_event_source_set_enabled(d->up_timer, SD_EVENT_ONESHOT); /* connect now */
    gate_io_restore_held(d); /* the edge client exists: challenges can be queued */
    daemon_flush(d);

    log_notice("started: edge %s, cloud %s (%d endpoint(s)), spool %s (%llu message(s) waiting)",
               d->cfg.edge.socket[0] ? d->cfg.edge.socket : d->cfg.edge.host, uplink_endpoint(d),
               d->cfg.uplink.n_hosts, d->cfg.spool.path,
               (unsigned long long)spool_messages(d->spool));
    if (downq_count(d->downq) > 0)
        log_notice("%llu cloud command(s) queued for the edge broker",
                   (unsigned long long)downq_count(d->downq));
    (void)sd_notify(0, "READY=1");
    update_status(d);
    r = sd_event_loop(d->ev);
    if (r < 0) {
        log_err("event loop failed: %s", strerror(-r));
        return EX_SOFTWARE;
    }
    r = spool_commit(d->spool);
    if (spool_counters_foreach(d->spool, print_counter, NULL) < 0)
        log_err("cannot read the counters");
    log_notice("stopped");
    return r < 0 ? EX_SOFTWARE : 0;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
                                         {"check-config", no_argument, NULL, 'C'},
                                         {"help", no_argument, NULL, 'h'},
                                         {"version", no_argument, NULL, 'V'},
                                         {NULL, 0, NULL, 0}};
    struct daemon *d = calloc(1, sizeof(*d));
    struct config_error err;
    bool check_only = false;
    int c, ret;

    /* Block the signals sd-event handles before anything can start a thread (the tpm2
     * provider's tabrmd TCTI runs a GDBus worker): a thread created earlier would keep
     * them unblocked and take the default action (termination) for the whole process. */
    sigset_t ss;
    sigemptyset(&ss);
    sigaddset(&ss, SIGTERM);
    sigaddset(&ss, SIGINT);
    sigaddset(&ss, SIGHUP);
    sigprocmask(SIG_BLOCK, &ss, NULL);
    signal(SIGPIPE, SIG_IGN);

    if (d == NULL)
        return EX_OSERR;
    d->config_path = CONFIG_DEFAULT_PATH;
    d->edge_fd = -1;
    d->up_fd = -1;
    log_setup(LOG_INFO);
    while ((c = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            d->config_path = optarg;
            break;
        case 'C':
            check_only = true;
            break;
        case 'h':
            usage(stdout);
            free(d);
            return 0;
        case 'V':
            free(d);
            return fleetgw_print_version("fleetgwd");
        default:
            usage(stderr);
            free(d);
            return CONFIG_EXIT_USAGE;
        }
    }
    if (optind != argc) {
        fprintf(stderr, "fleetgwd: unexpected argument '%s'\n", argv[optind]);
        usage(stderr);
        free(d);
        return CONFIG_EXIT_USAGE;
    }
    if (config_load(d->config_path, &d->cfg, &err) < 0) {
        log_event(LOG_ERR, NULL, "config_invalid", "%s", err.message);
        ret = (int)err.exit_code;
        free(d);
        return ret;
    }
    if (check_only) {
        if (policy_check(&d->cfg, d->config_path) < 0) {
            free(d);
            return CONFIG_EXIT_RANGE;
        }
        printf("%s: configuration is valid\n", d->config_path);
        free(d);
        return 0;
    }
    log_setup(config_log_priority(&d->cfg));
    mosquitto_lib_init();
    ret = run(d);

    uplink_destroy(d);
    if (d->edge != NULL)
        mosquitto_destroy(d->edge);
    d->edge_io = sd_event_source_disable_unref(d->edge_io);
    sd_event_source_disable_unref(d->edge_timer);
    sd_event_source_disable_unref(d->up_timer);
    sd_event_source_disable_unref(d->drain_timer);
    sd_event_source_disable_unref(d->commit_timer);
    sd_event_source_disable_unref(d->up_buffered_timer);
    sd_event_source_disable_unref(d->tick);
    sd_event_source_disable_unref(d->attest_timer);
    sd_event_source_disable_unref(d->watchdog);
    sd_event_source_disable_unref(d->flush_post);
    ctl_server_free(d->ctl);
    ota_job_stop(d);
    ota_xfer_stop(d);
    attest_policy_free(d->policy);
    broker_snapshot_stop(d);
    registry_close(d->registry);
    sd_event_unref(d->ev);
    tpm_tls_ctx_free(d->ssl_ctx);
    downq_close(d->downq);
    spool_close(d->spool);
    uplink_free(d);
    gate_free(d->gate);
    free(d);
    mosquitto_lib_cleanup();
    return ret;
}
