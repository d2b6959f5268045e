/* fleetgw-test-publish-ceiling.so: a TEST-ONLY mosquitto 2.0 plugin (API version 5) that makes
 * the test cloud broker behave like AWS IoT Core's per-connection publish ceiling (100 publish
 * requests per second per connection, exceeding it gets the client disconnected). Built for
 * the tests only, never installed or packaged.
 *
 *   plugin_opt_ceiling N   publishes per second per client connection (default 100)
 *   plugin_opt_log PATH    appends one line per event (optional; also the broker's log):
 *                            kick <client id> <count in the window>
 *                            max <client id> <highest count in any 1 s window>  (at disconnect)
 *
 * Counting: every PUBLISH the broker accepts from a client (MOSQ_EVT_MESSAGE, after the ACL
 * check) in a sliding window of 1 s (CLOCK_MONOTONIC): the count of a publish is the number of
 * that connection's publishes in the second that ends with it, itself included. The highest
 * such count is the highest count of any 1 s window. A publish whose count is above the
 * ceiling is denied and the client is disconnected.
 *
 * Why the kick waits for the next MOSQ_EVT_TICK: in mosquitto 2.0.11 (Debian 12),
 * mosquitto_kick_client_by_clientid() runs do_disconnect() at once; for a client without a
 * session that frees context->id and takes it out of the id hash, while handle__publish(),
 * which is running the MESSAGE callback, goes on to use the context (context->id in its log
 * lines, the PUBACK). So the callback only denies and marks the client; the tick (every pass
 * of the broker's loop, at least every 100 ms: epoll_wait's timeout) kicks it, and every
 * publish from a marked client is denied until then. 2.0.11 runs the tick callbacks only with
 * per_listener_settings false (plugin__handle_tick), which is what the harness writes; the
 * plugin cannot see that setting, hence this note. */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <mosquitto.h>
#include <mosquitto_broker.h>
#include <mosquitto_plugin.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PFX         "publish-ceiling: "
#define BUCKETS     1024u
#define CEILING_MAX 1000000L
#define WINDOW_NS   1000000000LL

struct client {
    struct client *next;
    const struct mosquitto *conn; /* the connection (a reconnect is a new one) */
    char *id;
    int64_t *times; /* ring of the publish times in the window: ceiling + 1 of them */
    size_t head, count;
    size_t max;
    int kick; /* over the ceiling: denied from now on, kicked at the next tick */
};

struct plugin {
    mosquitto_plugin_id_t *id;
    size_t ceiling;
    FILE *log;
    struct client *buckets[BUCKETS];
    size_t pending_kicks;
};

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static size_t bucket_of(const struct mosquitto *conn)
{
    uintptr_t v = (uintptr_t)conn;
    return (size_t)((v >> 4) ^ (v >> 14)) % BUCKETS;
}

static void log_line(struct plugin *p, const char *what, const char *id, size_t n)
{
    if (p->log != NULL) {
        fprintf(p->log, "%s %s %zu\n", what, id, n);
        fflush(p->log);
    }
}

static struct client *find(struct plugin *p, const struct mosquitto *conn, int create)
{
    struct client **head = &p->buckets[bucket_of(conn)];
    for (struct client *c = *head; c != NULL; c = c->next)
        if (c->conn == conn)
            return c;
    if (!create)
        return NULL;
    const char *id = mosquitto_client_id(conn);
    struct client *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;
    c->times = calloc(p->ceiling + 1, sizeof(*c->times));
    c->id = strdup(id != NULL ? id : "<none>");
    if (c->times == NULL || c->id == NULL) {
        free(c->times);
        free(c->id);
        free(c);
        return NULL;
    }
    c->conn = conn;
    c->next = *head;
    *head = c;
    return c;
}

static void forget(struct plugin *p, struct client *gone)
{
    for (struct client **pc = &p->buckets[bucket_of(gone->conn)]; *pc != NULL; pc = &(*pc)->next) {
        if (*pc == gone) {
            *pc = gone->next;
            break;
        }
    }
    if (gone->kick)
        p->pending_kicks--;
    free(gone->times);
    free(gone->id);
    free(gone);
}

static int on_message(int event, void *event_data, void *userdata)
{
    struct plugin *p = userdata;
    struct mosquitto_evt_message *ev = event_data;
    (void)event;
    struct client *c = find(p, ev->client, 1);
    if (c == NULL) {
        mosquitto_log_printf(MOSQ_LOG_ERR, PFX "out of memory: publish denied");
        return MOSQ_ERR_ACL_DENIED;
    }
    size_t cap = p->ceiling + 1;
    int64_t t = now_ns();
    while (c->count > 0 && c->times[c->head] <= t - WINDOW_NS) {
        c->head = (c->head + 1) % cap;
        c->count--;
    }
    if (c->count == cap) { /* only while denied: keep the newest */
        c->head = (c->head + 1) % cap;
        c->count--;
    }
    c->times[(c->head + c->count) % cap] = t;
    c->count++;
    if (c->count > c->max)
        c->max = c->count;
    if (c->kick)
        return MOSQ_ERR_ACL_DENIED;
    if (c->count > p->ceiling) {
        c->kick = 1;
        p->pending_kicks++;
        mosquitto_log_printf(MOSQ_LOG_NOTICE,
                             PFX "client %s: %zu publishes in 1 s, above the ceiling of %zu: "
                                 "denied, disconnecting",
                             c->id, c->count, p->ceiling);
        log_line(p, "kick", c->id, c->count);
        return MOSQ_ERR_ACL_DENIED;
    }
    return MOSQ_ERR_SUCCESS;
}

static struct client *first_to_kick(struct plugin *p)
{
    for (size_t b = 0; b < BUCKETS; b++)
        for (struct client *c = p->buckets[b]; c != NULL; c = c->next)
            if (c->kick)
                return c;
    return NULL;
}

static int on_tick(int event, void *event_data, void *userdata)
{
    struct plugin *p = userdata;
    (void)event;
    (void)event_data;
    /* The kick runs the DISCONNECT callback, which frees the client's record and may change
     * any bucket: look the next one up afresh each time (at most pending_kicks rounds). */
    for (size_t round = p->pending_kicks; round > 0; round--) {
        struct client *c = first_to_kick(p);
        if (c == NULL)
            break;
        const struct mosquitto *conn = c->conn;
        char id[256];
        snprintf(id, sizeof(id), "%s", c->id);
        (void)mosquitto_kick_client_by_clientid(id, false);
        struct client *left = find(p, conn, 0);
        if (left != NULL && left->kick) /* no DISCONNECT for it (already gone): drop it */
            forget(p, left);
    }
    return MOSQ_ERR_SUCCESS;
}

static int on_disconnect(int event, void *event_data, void *userdata)
{
    struct plugin *p = userdata;
    struct mosquitto_evt_disconnect *ev = event_data;
    (void)event;
    struct client *c = find(p, ev->client, 0);
    if (c == NULL)
        return MOSQ_ERR_SUCCESS;
    log_line(p, "max", c->id, c->max);
    forget(p, c);
    return MOSQ_ERR_SUCCESS;
}

int mosquitto_plugin_version(int supported_version_count, const int *supported_versions)
{
    for (int i = 0; i < supported_version_count; i++)
        if (supported_versions[i] == 5)
            return 5;
    return -1;
}

static int parse_ceiling(const char *s, size_t *out)
{
    char *end = NULL;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < 1 || v > CEILING_MAX)
        return -1;
    *out = (size_t)v;
    return 0;
}

int mosquitto_plugin_init(mosquitto_plugin_id_t *identifier, void **userdata,
                          struct mosquitto_opt *options, int option_count)
{
    struct plugin *p = calloc(1, sizeof(*p));
    const char *log_path = NULL;
    if (p == NULL)
        return MOSQ_ERR_NOMEM;
    p->id = identifier;
    p->ceiling = 100;
    for (int i = 0; i < option_count; i++) {
        if (strcmp(options[i].key, "ceiling") == 0) {
            if (parse_ceiling(options[i].value, &p->ceiling) != 0) {
                mosquitto_log_printf(MOSQ_LOG_ERR,
                                     PFX "plugin_opt_ceiling '%s': not a whole number of "
                                         "publishes per second from 1 to %ld",
                                     options[i].value, CEILING_MAX);
                free(p);
                return MOSQ_ERR_INVAL;
            }
        } else if (strcmp(options[i].key, "log") == 0) {
            log_path = options[i].value;
        } else {
            mosquitto_log_printf(MOSQ_LOG_ERR, PFX "unknown option plugin_opt_%s", options[i].key);
            free(p);
            return MOSQ_ERR_INVAL;
        }
    }
    if (log_path != NULL) {
        p->log = fopen(log_path, "ae");
        if (p->log == NULL) {
            mosquitto_log_printf(MOSQ_LOG_ERR, PFX "plugin_opt_log %s: %s", log_path,
                                 strerror(errno));
            free(p);
            return MOSQ_ERR_INVAL;
        }
    }
    if (mosquitto_callback_register(identifier, MOSQ_EVT_MESSAGE, on_message, NULL, p) !=
            MOSQ_ERR_SUCCESS ||
        mosquitto_callback_register(identifier, MOSQ_EVT_TICK, on_tick, NULL, p) !=
            MOSQ_ERR_SUCCESS ||
        mosquitto_callback_register(identifier, MOSQ_EVT_DISCONNECT, on_disconnect, NULL, p) !=
            MOSQ_ERR_SUCCESS) {
        mosquitto_log_printf(MOSQ_LOG_ERR, PFX "cannot register the callbacks");
        mosquitto_callback_unregister(identifier, MOSQ_EVT_MESSAGE, on_message, NULL);
        mosquitto_callback_unregister(identifier, MOSQ_EVT_TICK, on_tick, NULL);
        if (p->log != NULL)
            fclose(p->log);
        free(p);
        return MOSQ_ERR_UNKNOWN;
    }
    mosquitto_log_printf(MOSQ_LOG_INFO, PFX "at most %zu publishes per second per connection",
                         p->ceiling);
    *userdata = p;
    return MOSQ_ERR_SUCCESS;
}

int mosquitto_plugin_cleanup(void *userdata, struct mosquitto_opt *options, int option_count)
{
    struct plugin *p = userdata;
    (void)options;
    (void)option_count;
    if (p == NULL)
        return MOSQ_ERR_SUCCESS;
    mosquitto_callback_unregister(p->id, MOSQ_EVT_MESSAGE, on_message, NULL);
    mosquitto_callback_unregister(p->id, MOSQ_EVT_TICK, on_tick, NULL);
    mosquitto_callback_unregister(p->id, MOSQ_EVT_DISCONNECT, on_disconnect, NULL);
    for (size_t b = 0; b < BUCKETS; b++) {
        while (p->buckets[b] != NULL) {
            struct client *c = p->buckets[b];
            log_line(p, "max", c->id, c->max); /* still connected at shutdown */
            forget(p, c);
        }
    }
    if (p->log != NULL)
        fclose(p->log);
    free(p);
    return MOSQ_ERR_SUCCESS;
}
