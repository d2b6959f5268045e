/* ota_job.c: the cloud job path of the gateway's OTA (issue 13, docs/protocol.md 2.3,
 * docs/ota.md "Cloud jobs"), fleetgwd's side.
 *
 * A job document arrives on <prefix>/ota/jobs/<job> (ota_jobdoc.h parses it). The gateway
 * then fetches the image over the uplink, one chunk at a time: a request {"offset",
 * "length"} on .../get (QoS 0), the cloud's binary reply on .../data (each reply checked
 * against its own SHA-256, the offset asked for and the image's size). An unanswered or bad
 * reply is asked for again after a back-off that doubles (timeout_ms, 2x, 4x, at most 8x),
 * and after `retries` consecutive failures the job fails; while the uplink is down nothing
 * is asked and nothing counts, and a reconnect asks again at once.
 *
 * The partial image is <store>/jobs/<job>.part; its progress is <job>.state (JSON: the
 * document, the state, the offset, the counters), written as temp file + fsync + rename
 * after the part file was fdatasync'ed, every OTA_JOB_SYNC_BYTES and at the end. A
 * fleetgwd that restarts (even SIGKILLed) truncates the part file to the recorded offset
 * and asks from there; what it asks again is counted (bytes_again). The whole file's
 * SHA-256 is compared to the job's before anything is staged; then ota_store_put with the
 * job's class, size and (when given) image hash; then the campaign (ota_campaign_create,
 * the campaign id defaults to the job id). Every refusal discards the part file, stores
 * nothing and says why in the job's status, retained on <prefix>/ota/jobs/<job>/status
 * through the spool. A job that ended keeps its .state file, so the retained document the
 * broker hands over at every reconnect does not start it again; the file goes when the cloud
 * clears that document (an empty retained message on the job's topic).
 *
 * Acknowledgement ordering (fleetgwd.c): a job document's state file is fsync'ed inside
 * the uplink's on_message, before libmosquitto's PUBACK can be written; chunk replies are
 * QoS 0 (a lost one is asked for again). */
#define _GNU_SOURCE
#include "daemon.h"
#include "ota.h"
#include "ota_jobdoc.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fleetgw/crypto.h>
#include <fleetgw/hex.h>
#include <fleetgw/msg.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define OTA_JOBS_ACTIVE_MAX 8
#define OTA_JOB_SYNC_BYTES  16384u /* progress made durable at least this often */
#define OTA_JOB_BACKOFF_MAX 8u     /* back-off at most 8 x timeout_ms */
#define STATE_MAX           (OTA_JOBDOC_MAX * 6 + 4096) /* the document, JSON-escaped */

enum job_phase { PH_IDLE, PH_WAIT_REPLY, PH_BACKOFF };

struct job {
    struct job *next;
    struct ota_jobs *jm;
    char id[OTA_JOB_ID_MAX + 1];
    char *doc_text;
    struct ota_jobdoc doc;
    int part_fd;
    uint32_t offset; /* contiguous bytes in the part file */
    uint32_t synced; /* bytes recorded durable in the state file */
    uint32_t want_off, want_len;
    enum job_phase phase;
    uint32_t attempts; /* consecutive unanswered or bad replies */
    sd_event_source *timer;
    uint64_t requests, bytes_received, bytes_again, retries, bad_replies, resumes;
};

struct ota_jobs {
    struct daemon *d;
    int dirfd;
    struct job *jobs; /* the jobs still downloading */
};

/* What ends a job (the state file's and the status's "state"). */
static const char *const ST_DOWNLOADING = "downloading", *const ST_REFUSED = "refused",
                         *const ST_FAILED = "failed", *const ST_CREATED = "campaign_created";

static struct ota_ctx *octx(const struct ota_jobs *jm)
{
    return jm->d->ctl_api.ota;
}

static int write_file_at(int dirfd, const char *name, const char *text, size_t len)
{
    char tmp[OTA_JOB_ID_MAX + 32];
    snprintf(tmp, sizeof(tmp), ".tmp.%s", name);
    int fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    if (fd < 0)
        return -errno;
    size_t done = 0;
    int r = 0;
    while (done < len) {
        ssize_t n = write(fd, text + done, len - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            r = n < 0 ? -errno : -EIO;
            break;
        }
        done += (size_t)n;
    }
    if (r == 0 && fsync(fd) != 0)
        r = -errno;
    close(fd);
    if (r == 0 && renameat(dirfd, tmp, dirfd, name) != 0)
        r = -errno;
    if (r < 0) {
        (void)unlinkat(dirfd, tmp, 0);
        return r;
    }
    return fsync(dirfd) != 0 ? -errno : 0;
}

static void add_str(json_object *o, const char *k, const char *v)
{
    json_object_object_add(o, k, json_object_new_string(v));
}

static void add_int(json_object *o, const char *k, int64_t v)
{
    json_object_object_add(o, k, json_object_new_int64(v));
}

static void add_counters(json_object *o, const struct job *j)
{
    add_int(o, "offset", j->synced);
    add_int(o, "requests", (int64_t)j->requests);
    add_int(o, "bytes_received", (int64_t)j->bytes_received);
    add_int(o, "bytes_again", (int64_t)j->bytes_again);
    add_int(o, "retries", (int64_t)j->retries);
    add_int(o, "bad_replies", (int64_t)j->bad_replies);
    add_int(o, "resumes", (int64_t)j->resumes);
}

/* The job's status upstream (retained, through the spool like a campaign's). */
static void publish_status(struct ota_jobs *jm, const char *id, json_object *st)
{
    struct daemon *d = jm->d;
    char topic[SPOOL_TOPIC_MAX];
    const char *prefix = d->cfg.uplink.topic_prefix;
    const char *js = json_object_to_json_string_ext(st, JSON_C_TO_STRING_PLAIN);
    if (msg_cloud_topic_build(MSG_CLOUD_JOB_STATUS, prefix, strlen(prefix), id, strlen(id), NULL, 0,
                              topic, sizeof(topic), NULL) != MSG_OK)
        return;
    int r = spool_append(d->spool, id, topic, js, strlen(js), wall_s(), true, NULL);
    if (r < 0)
        log_event(LOG_ERR, NULL, "spool_error", "job %s: cannot queue its status upstream: %s", id,
                  strerror(-r));
    else
        d->commit_wanted = true;
}

/* <job>.state, the record of a job (see the top) */
static void state_name(const char *id, char name[OTA_JOB_ID_MAX + 8])
{
    snprintf(name, OTA_JOB_ID_MAX + 8, "%.32s.state", id);
}

/* Records the job's state durably (<job>.state) and publishes it. extra: reason, detail,
 * image, campaign (NULL = absent). */
static int job_record(struct ota_jobs *jm, struct job *j, const char *state, const char *reason,
                      const char *detail, const char *image, const char *campaign)
{
    json_object *st = json_object_new_object();
    add_str(st, "job", j->id);
    add_str(st, "state", state);
    add_int(st, "size", j->doc.size);
    add_counters(st, j);
    if (reason != NULL)
        add_str(st, "reason", reason);
    if (detail != NULL)
        add_str(st, "detail", detail);
    if (image != NULL)
        add_str(st, "image", image);
    if (campaign != NULL)
        add_str(st, "campaign", campaign);
    add_int(st, "updated", wall_s());
    /* the file holds the document too (a restart resumes from it) */
    json_object *file = json_object_get(st);
    json_object *f = json_object_new_object();
    json_object_object_add(f, "status", file);
    add_str(f, "doc", j->doc_text != NULL ? j->doc_text : "");
    const char *ft = json_object_to_json_string_ext(f, JSON_C_TO_STRING_PLAIN);
    char name[OTA_JOB_ID_MAX + 8];
    state_name(j->id, name);
    int r = write_file_at(jm->dirfd, name, ft, strlen(ft));
    json_object_put(f);
    if (r < 0)
        log_event(LOG_ERR, NULL, "job_error", "job %s: cannot record its state: %s", j->id,
                  strerror(-r));
    publish_status(jm, j->id, st);
    json_object_put(st);
    return r;
}

static void job_free(struct job *j)
{
    if (j == NULL)
        return;
    sd_event_source_disable_unref(j->timer);
    if (j->part_fd >= 0)
        close(j->part_fd);
    free(j->doc_text);
    free(j);
}

static void job_unlink(struct ota_jobs *jm, struct job *j)
{
    for (struct job **p = &jm->jobs; *p != NULL; p = &(*p)->next)
        if (*p == j) {
            *p = j->next;
            break;
        }
}

static void part_discard(struct ota_jobs *jm, struct job *j)
{
    char name[OTA_JOB_ID_MAX + 8];
    snprintf(name, sizeof(name), "%s.part", j->id);
    if (j->part_fd >= 0)
        close(j->part_fd);
    j->part_fd = -1;
    (void)unlinkat(jm->dirfd, name, 0);
}

/* The job ends (refused, failed or its campaign created): recorded, part file gone. */
static void job_end(struct ota_jobs *jm, struct job *j, const char *state, const char *reason,
                    const char *detail, const char *image, const char *campaign)
{
    part_discard(jm, j);
    (void)job_record(jm, j, state, reason, detail, image, campaign);
    if (strcmp(state, ST_CREATED) == 0)
        log_event(LOG_NOTICE, NULL, "job_done",
                  "job %s: image %.16s... staged, campaign %s created", j->id, image, campaign);
    else
        log_event(LOG_WARNING, NULL, reason, "job %s %s (%s): %s", j->id, state, reason,
                  detail != NULL ? detail : "");
    job_unlink(jm, j);
    job_free(j);
}

static void timer_at(struct job *j, uint64_t delay_us)
{
    (void)sd_event_source_set_time(j->timer, now_us() + delay_us);
    (void)sd_event_source_set_enabled(j->timer, SD_EVENT_ONESHOT);
}

static bool uplink_up(const struct daemon *d)
{
    return d->up != NULL && d->up_state == UP_CONNECTED;
}

/* Asks the cloud for the next chunk (or the same one again). */
static void job_request(struct ota_jobs *jm, struct job *j)
{
    struct daemon *d = jm->d;
    char topic[SPOOL_TOPIC_MAX], body[MSG_GATEWAY_ID_MAX + 96];
    const char *prefix = d->cfg.uplink.topic_prefix;
    if (!uplink_up(d)) {
        j->phase = PH_IDLE; /* asked again by ota_job_on_connect */
        (void)sd_event_source_set_enabled(j->timer, SD_EVENT_OFF);
        return;
    }
    uint32_t left = j->doc.size - j->offset;
    uint32_t len = left < j->doc.block_size ? left : j->doc.block_size;
    size_t n = ota_job_get_json(j->offset, len, d->cfg.uplink.client_id, body, sizeof(body));
    if (n == 0 ||
        msg_cloud_topic_build(MSG_CLOUD_JOB_GET, prefix, strlen(prefix), j->id, strlen(j->id), NULL,
                              0, topic, sizeof(topic), NULL) != MSG_OK) {
        j->phase = PH_IDLE; /* cannot happen: the id and the prefix are validated */
        return;
    }
    /* The request counts in the uplink's ceiling (shape.h) like the drain's publishes:
     * while the window is full it waits for room (a cloud service disconnects a client
     * above its ceiling) and is asked again by the timer. */
    uint64_t wait = shape_wait_us(&d->shape, now_us(), n);
    if (wait > 0) {
        if (j->phase == PH_WAIT_REPLY)
            j->phase = PH_IDLE; /* the reply came: the next request is not yet out */
        timer_at(j, wait);
        return;
    }
    /* QoS 0: an answer that does not come is asked for again */
    int rc = mosquitto_publish(d->up, NULL, topic, (int)n, body, 0, false);
    if (rc != MOSQ_ERR_SUCCESS) {
        j->phase = PH_IDLE;
        return;
    }
    shape_record(&d->shape, now_us(), n);
    if (j->phase == PH_BACKOFF && j->want_off == j->offset)
        j->bytes_again += len; /* the same bytes asked for again */
    j->want_off = j->offset;
    j->want_len = len;
    j->requests++;
    j->phase = PH_WAIT_REPLY;
    timer_at(j, (uint64_t)j->doc.timeout_ms * 1000u);
}

/* An unanswered or bad reply: back off, or fail the job after `retries` of them (reason
 * no_reply or bad_reply, after the last). */
static void job_failure(struct ota_jobs *jm, struct job *j, bool bad, const char *why)
{
    j->attempts++;
    if (j->attempts > j->doc.retries) {
        char detail[320];
        snprintf(detail, sizeof(detail),
                 "%u consecutive requests at offset %u failed (transfer.retries %u); last: %s",
                 (unsigned)j->attempts, (unsigned)j->want_off, (unsigned)j->doc.retries, why);
        job_end(jm, j, ST_FAILED, bad ? "bad_reply" : "no_reply", detail, NULL, NULL);
        return;
    }
    uint32_t mult = 1u << (j->attempts - 1 < 3 ? j->attempts - 1 : 3);
    if (mult > OTA_JOB_BACKOFF_MAX)
        mult = OTA_JOB_BACKOFF_MAX;
    j->retries++;
    j->phase = PH_BACKOFF;
    log_event(LOG_INFO, NULL, "job_retry", "job %s: %s; asking again for offset %u in %u ms", j->id,
              why, (unsigned)j->want_off, (unsigned)(j->doc.timeout_ms * mult));
    timer_at(j, (uint64_t)j->doc.timeout_ms * mult * 1000u);
}

static int job_timer_cb(sd_event_source *s, uint64_t usec, void *u)
{
    (void)s;
    (void)usec;
    struct job *j = u;
    struct ota_jobs *jm = j->jm;
    if (!uplink_up(jm->d)) {
        j->phase = PH_IDLE; /* an outage does not count against the job */
        return 0;
    }
    if (j->phase == PH_WAIT_REPLY)
        job_failure(jm, j, false, "no reply");
    else
        job_request(jm, j);
    return 0;
}

/* The contiguous bytes received so far become durable: the part file first, then the
 * offset in the state file. */
static int job_sync(struct ota_jobs *jm, struct job *j)
{
    if (fdatasync(j->part_fd) != 0)
        return -errno;
    uint32_t was = j->synced;
    j->synced = j->offset;
    int r = job_record(jm, j, ST_DOWNLOADING, NULL, NULL, NULL, NULL);
    if (r < 0)
        j->synced = was;
    return r;
}

/* The campaign spec of the job: its "campaign" object with the stored image, and the job
 * id as the campaign id unless it names one. */
static char *job_spec(const struct job *j, const char *digest_hex)
{
    json_object *s = json_tokener_parse(j->doc.spec);
    if (s == NULL)
        return NULL;
    add_str(s, "image", digest_hex);
    if (!json_object_object_get_ex(s, "id", NULL))
        add_str(s, "id", j->id);
    char *out = strdup(json_object_to_json_string_ext(s, JSON_C_TO_STRING_PLAIN));
    json_object_put(s);
    return out;
}

static void version_text(const struct image_version *v, char *out, size_t cap)
{
    snprintf(out, cap, "%u.%u.%u+%u", (unsigned)v->major, (unsigned)v->minor, (unsigned)v->revision,
             (unsigned)v->build);
}

/* Every byte is here: the whole file against the job's SHA-256, the staging checks, the
 * store, the campaign. */
static void job_finish(struct ota_jobs *jm, struct job *j)
{
    struct ota_ctx *o = octx(jm);
    char why[320] = "", hex[OTA_DIGEST_HEX + 1], want[OTA_DIGEST_HEX + 1];
    uint8_t *img = NULL, sha[OTA_DIGEST_LEN];
    size_t len = 0;

    j->phase = PH_IDLE;
    (void)sd_event_source_set_enabled(j->timer, SD_EVENT_OFF);
    if (ota_read_fd(j->part_fd, &img, &len, why, sizeof(why)) < 0) {
        job_end(jm, j, ST_FAILED, "io", why, NULL, NULL);
        return;
    }
    if (len != j->doc.size || crypto_sha256(img, len, sha) != 0 ||
        crypto_memcmp_ct(sha, j->doc.sha256, OTA_DIGEST_LEN) != 0) {
        hex_encode(sha, OTA_DIGEST_LEN, hex);
        hex_encode(j->doc.sha256, OTA_DIGEST_LEN, want);
        snprintf(why, sizeof(why),
                 "the downloaded %zu bytes have SHA-256 %s, the job named %s: the partial "
                 "download is discarded",
                 len, hex, want);
        free(img);
        job_end(jm, j, ST_REFUSED, "digest_mismatch", why, NULL, NULL);
        return;
    }
    struct ota_check_opts co;
    struct ota_image_meta m;
    ota_check_opts_of(o, j->doc.class_name[0] ? j->doc.class_name : NULL, j->doc.recovery, &co);
    co.expect_digest = j->doc.has_digest ? j->doc.digest : NULL;
    co.expect_size = j->doc.size;
    /* the checks first: a version other than the job's is refused before the store */
    enum ota_refusal rr = ota_image_check(img, len, &co, &m, why, sizeof(why));
    if (rr == OTA_OK && j->doc.has_version &&
        memcmp(&m.version, &j->doc.version, sizeof(m.version)) != 0) {
        char a[48], b[48];
        version_text(&m.version, a, sizeof(a));
        version_text(&j->doc.version, b, sizeof(b));
        free(img);
        snprintf(why, sizeof(why), "the image is version %s, the job named %s", a, b);
        job_end(jm, j, ST_REFUSED, "version_mismatch", why, NULL, NULL);
        return;
    }
    char source[OTA_JOB_ID_MAX + 8];
    snprintf(source, sizeof(source), "job:%s", j->id);
    if (rr == OTA_OK)
        rr = ota_store_put(o->store, img, len, &co, source, wall_s(), &m, why, sizeof(why));
    free(img);
    if (rr != OTA_OK) {
        job_end(jm, j, ST_REFUSED, ota_refusal_str(rr), why, NULL, NULL);
        return;
    }
    char ver[48];
    version_text(&m.version, ver, sizeof(ver));
    log_event(LOG_NOTICE, NULL, "staged", "job %s: image %s staged: class %s, version %s, %u bytes",
              j->id, m.digest_hex, m.class_name, ver, (unsigned)m.size);
    char *spec = job_spec(j, m.digest_hex);
    char cid[CAMPAIGN_ID_MAX + 1] = "";
    size_t n = 0;
    int r = spec == NULL ? -ENOMEM : 0;
    if (r == 0) {
        /* after a restart between the campaign and the job's record: it exists already */
        json_object *so = json_tokener_parse(spec), *idv;
        if (so != NULL && json_object_object_get_ex(so, "id", &idv))
            snprintf(cid, sizeof(cid), "%s", json_object_get_string(idv));
        if (so != NULL)
            json_object_put(so);
        char *exists = cid[0] ? campaign_status_json(o->engine, cid, false) : NULL;
        if (exists != NULL)
            free(exists);
        else
            r = ota_campaign_create(o, spec, wall_s(), cid, &n, why, sizeof(why));
    }
    free(spec);
    if (r < 0) {
        job_end(jm, j, ST_FAILED, "campaign_refused", why[0] ? why : strerror(-r), m.digest_hex,
                NULL);
        return;
    }
    job_end(jm, j, ST_CREATED, NULL, NULL, m.digest_hex, cid);
}

static struct job *job_find(struct ota_jobs *jm, const char *id)
{
    for (struct job *j = jm->jobs; j != NULL; j = j->next)
        if (strcmp(j->id, id) == 0)
            return j;
    return NULL;
}

static void on_data(struct ota_jobs *jm, const char *id, const uint8_t *p, size_t len)
{
    struct job *j = job_find(jm, id);
    char err[256] = "";
    struct ota_job_chunk c;
    if (j == NULL || j->phase != PH_WAIT_REPLY) {
        count_drop(jm->d, NULL, "job_stale_chunk", "a job chunk nobody waits for");
        return;
    }
    int r = ota_job_chunk_parse(p, len, &c, err, sizeof(err));
    if (r == 0 && c.offset < j->want_off && c.len <= j->want_off - c.offset) {
        /* a late answer to an earlier request: already here */
        count_drop(jm->d, NULL, "job_stale_chunk", "a job chunk already received");
        return;
    }
    if (r == 0)
        r = ota_job_chunk_check(&c, j->want_off, j->want_len, j->doc.size, err, sizeof(err));
    if (r < 0) {
        j->bad_replies++;
        log_event(LOG_WARNING, NULL, "job_bad_chunk", "job %s: chunk refused: %s", j->id, err);
        job_failure(jm, j, true, err);
        return;
    }
    size_t done = 0;
    while (done < c.len) {
        ssize_t n = pwrite(j->part_fd, c.data + done, c.len - done, (off_t)(c.offset + done));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            snprintf(err, sizeof(err), "cannot write the partial image: %s",
                     n < 0 ? strerror(errno) : "short write");
            job_end(jm, j, ST_FAILED, "io", err, NULL, NULL);
            return;
        }
        done += (size_t)n;
    }
    j->offset += (uint32_t)c.len;
    j->bytes_received += c.len;
    j->attempts = 0;
    if (j->offset == j->doc.size || j->offset - j->synced >= OTA_JOB_SYNC_BYTES) {
        r = job_sync(jm, j);
        if (r < 0) {
            snprintf(err, sizeof(err), "cannot make the download durable: %s", strerror(-r));
            job_end(jm, j, ST_FAILED, "io", err, NULL, NULL);
            return;
        }
    }
    if (j->offset == j->doc.size)
        job_finish(jm, j);
    else
        job_request(jm, j);
}

static struct job *job_new(struct ota_jobs *jm, const char *id, const char *text, size_t len)
{
    struct job *j = calloc(1, sizeof(*j));
    if (j == NULL)
        return NULL;
    j->jm = jm;
    j->part_fd = -1;
    snprintf(j->id, sizeof(j->id), "%s", id);
    j->doc_text = strndup(text, len);
    if (j->doc_text == NULL || sd_event_add_time(jm->d->ev, &j->timer, CLOCK_MONOTONIC, UINT64_MAX,
                                                 TIMER_ACCURACY_US, job_timer_cb, j) < 0) {
        job_free(j);
        return NULL;
    }
    (void)sd_event_source_set_enabled(j->timer, SD_EVENT_OFF);
    return j;
}

static size_t active_count(const struct ota_jobs *jm)
{
    size_t n = 0;
    for (const struct job *j = jm->jobs; j != NULL; j = j->next)
        n++;
    return n;
}

static bool state_exists(struct ota_jobs *jm, const char *id)
{
    char name[OTA_JOB_ID_MAX + 8];
    state_name(id, name);
    return faccessat(jm->dirfd, name, F_OK, 0) == 0;
}

static void on_job(struct ota_jobs *jm, const char *id, const char *text, size_t len)
{
    struct ota_ctx *o = octx(jm);
    char err[256] = "";
    struct job *old = job_find(jm, id);
    if (old != NULL) {
        if (strlen(old->doc_text) != len || memcmp(old->doc_text, text, len) != 0)
            log_event(LOG_WARNING, NULL, "job_id_reused",
                      "job %s: another document for a job in progress is ignored", id);
        return;
    }
    if (len == 0) {
        /* The cloud cleared the job's retained document: it will not be delivered again, so
         * the record that kept it from starting again goes too. */
        char name[OTA_JOB_ID_MAX + 8];
        state_name(id, name);
        if (unlinkat(jm->dirfd, name, 0) == 0) {
            (void)fsync(jm->dirfd);
            log_event(LOG_INFO, NULL, "job_forgotten",
                      "job %s: its document was cleared; its record is removed", id);
        }
        return;
    }
    if (state_exists(jm, id))
        return; /* the job ended before (a retained document, delivered again) */
    /* an oversized document is refused below and not kept in the state file */
    struct job *j = job_new(jm, id, text, len <= OTA_JOBDOC_MAX ? len : 0);
    if (j == NULL) {
        log_event(LOG_ERR, NULL, "job_error", "job %s: out of memory", id);
        return;
    }
    const char *reason = NULL;
    if (ota_jobdoc_parse(text, len, &j->doc, err, sizeof(err)) < 0) {
        reason = "bad_job";
    } else if (active_count(jm) >= OTA_JOBS_ACTIVE_MAX) {
        reason = "too_many_jobs";
        snprintf(err, sizeof(err), "%d jobs are downloading already", OTA_JOBS_ACTIVE_MAX);
    } else if (ota_store_used(o->store) + j->doc.size >
               (uint64_t)jm->d->cfg.ota.store_quota_bytes) {
        reason = "quota";
        snprintf(err, sizeof(err), "%u bytes would exceed ota.store_quota_bytes (%lld, %llu used)",
                 (unsigned)j->doc.size, (long long)jm->d->cfg.ota.store_quota_bytes,
                 (unsigned long long)ota_store_used(o->store));
    }
    if (reason != NULL) {
        (void)job_record(jm, j, ST_REFUSED, reason, err, NULL, NULL);
        log_event(LOG_WARNING, NULL, reason, "job %s refused (%s): %s", id, reason, err);
        job_free(j);
        return;
    }
    char name[OTA_JOB_ID_MAX + 8];
    snprintf(name, sizeof(name), "%.32s.part", id);
    j->part_fd = openat(jm->dirfd, name, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    /* recorded before the PUBACK of the document can leave (see the top) */
    if (j->part_fd < 0 || job_record(jm, j, ST_DOWNLOADING, NULL, NULL, NULL, NULL) < 0) {
        log_event(LOG_ERR, NULL, "job_error", "job %s: cannot start the download: %s", id,
                  strerror(errno));
        part_discard(jm, j);
        job_free(j);
        return;
    }
    j->next = jm->jobs;
    jm->jobs = j;
    log_event(LOG_NOTICE, NULL, "job", "job %s: fetching %u bytes in chunks of %u", id,
              (unsigned)j->doc.size, (unsigned)j->doc.block_size);
    job_request(jm, j);
}

bool ota_job_on_message(struct daemon *d, const char *topic, const void *payload, size_t len)
{
    struct ota_jobs *jm = d->ota_jobs;
    struct msg_cloud_parsed c;
    const char *prefix = d->cfg.uplink.topic_prefix;
    if (msg_cloud_topic_parse(topic, strlen(topic), prefix, strlen(prefix), &c) != MSG_OK ||
        (c.topic != MSG_CLOUD_JOB && c.topic != MSG_CLOUD_JOB_DATA))
        return false;
    if (jm == NULL) {
        count_drop(d, NULL, "ota_unavailable", "an OTA job message: OTA is not available");
        return true;
    }
    if (c.topic == MSG_CLOUD_JOB)
        on_job(jm, c.id, payload, len);
    else
        on_data(jm, c.id, payload, len);
    return true;
}

void ota_job_on_connect(struct daemon *d, struct mosquitto *m)
{
    struct ota_jobs *jm = d->ota_jobs;
    char a[SPOOL_TOPIC_MAX], b[SPOOL_TOPIC_MAX];
    const char *prefix = d->cfg.uplink.topic_prefix;
    if (jm == NULL)
        return;
    if (msg_cloud_filter(MSG_CLOUD_JOB, prefix, strlen(prefix), a, sizeof(a), NULL) != MSG_OK ||
        msg_cloud_filter(MSG_CLOUD_JOB_DATA, prefix, strlen(prefix), b, sizeof(b), NULL) !=
            MSG_OK ||
        mosquitto_subscribe(m, NULL, a, 1) != MOSQ_ERR_SUCCESS ||
        mosquitto_subscribe(m, NULL, b, 0) != MOSQ_ERR_SUCCESS)
        log_err("cannot subscribe to the OTA jobs on the cloud broker");
    /* the uplink is back: every download asks again at once */
    for (struct job *j = jm->jobs; j != NULL; j = j->next) {
        j->attempts = 0;
        if (j->phase == PH_WAIT_REPLY)
            j->phase = PH_BACKOFF; /* the same bytes again: counted */
        timer_at(j, 0);
    }
}

/* A job that was downloading when fleetgwd stopped: from its recorded offset. */
static void job_resume(struct ota_jobs *jm, const char *name)
{
    char *text = NULL, id[OTA_JOB_ID_MAX + 1], err[256] = "";
    size_t nl = strlen(name) - strlen(".state");
    if (nl == 0 || nl > OTA_JOB_ID_MAX)
        return;
    memcpy(id, name, nl);
    id[nl] = '\0';
    if (msg_campaign_id_valid(id, nl) != 0 || job_find(jm, id) != NULL)
        return;
    int fd = openat(jm->dirfd, name, O_RDONLY | O_CLOEXEC);
    struct stat sb;
    if (fd < 0 || fstat(fd, &sb) != 0 || sb.st_size <= 0 || sb.st_size > STATE_MAX ||
        (text = calloc(1, (size_t)sb.st_size + 1)) == NULL ||
        pread(fd, text, (size_t)sb.st_size, 0) != sb.st_size) {
        log_event(LOG_ERR, NULL, "job_error", "job %s: cannot read its state file", id);
        if (fd >= 0)
            close(fd);
        free(text);
        return;
    }
    close(fd);
    json_object *f = json_tokener_parse(text), *st = NULL, *v;
    free(text);
    const char *state = "", *doc = "";
    int64_t off = -1;
    if (f != NULL && json_object_object_get_ex(f, "status", &st) &&
        json_object_object_get_ex(st, "state", &v))
        state = json_object_get_string(v);
    if (strcmp(state, ST_DOWNLOADING) != 0) {
        if (f != NULL)
            json_object_put(f);
        return; /* ended */
    }
    if (json_object_object_get_ex(f, "doc", &v))
        doc = json_object_get_string(v);
    if (json_object_object_get_ex(st, "offset", &v))
        off = json_object_get_int64(v);
    struct job *j = job_new(jm, id, doc, strlen(doc));
    if (j == NULL) {
        json_object_put(f);
        return;
    }
    static const char *const ctr[] = {"requests", "bytes_received", "bytes_again",
                                      "retries",  "bad_replies",    "resumes"};
    uint64_t *dst[] = {&j->requests, &j->bytes_received, &j->bytes_again,
                       &j->retries,  &j->bad_replies,    &j->resumes};
    for (size_t i = 0; i < sizeof(ctr) / sizeof(ctr[0]); i++)
        if (json_object_object_get_ex(st, ctr[i], &v))
            *dst[i] = (uint64_t)json_object_get_int64(v);
    json_object_put(f);
    char pname[OTA_JOB_ID_MAX + 8];
    snprintf(pname, sizeof(pname), "%s.part", id);
    if (ota_jobdoc_parse(j->doc_text, strlen(j->doc_text), &j->doc, err, sizeof(err)) < 0 ||
        off < 0 || off > (int64_t)j->doc.size) {
        snprintf(err, sizeof(err), "its state file is not valid");
        job_end(jm, j, ST_FAILED, "io", err, NULL, NULL);
        return;
    }
    j->part_fd = openat(jm->dirfd, pname, O_RDWR | O_CLOEXEC);
    struct stat ps;
    if (j->part_fd < 0 || fstat(j->part_fd, &ps) != 0 || ps.st_size < off ||
        ftruncate(j->part_fd, off) != 0) {
        snprintf(err, sizeof(err), "the partial image is missing or shorter than recorded");
        job_end(jm, j, ST_FAILED, "io", err, NULL, NULL);
        return;
    }
    /* what was received after the last record is asked for again */
    j->bytes_again += (uint64_t)(ps.st_size - off);
    j->offset = j->synced = (uint32_t)off;
    j->resumes++;
    j->next = jm->jobs;
    jm->jobs = j;
    log_event(LOG_NOTICE, NULL, "job_resumed",
              "job %s: download resumed at offset %u of %u (%lld bytes to fetch again)", id,
              (unsigned)off, (unsigned)j->doc.size, (long long)(ps.st_size - off));
    (void)job_record(jm, j, ST_DOWNLOADING, NULL, NULL, NULL, NULL);
    if (j->offset == j->doc.size)
        job_finish(jm, j); /* stopped between the last byte and the staging */
    else
        job_request(jm, j);
}

int ota_job_start(struct daemon *d)
{
    d->ota_jobs = NULL;
    if (d->ctl_api.ota == NULL)
        return 0; /* OTA unavailable: ota_xfer_start said why */
    struct ota_jobs *jm = calloc(1, sizeof(*jm));
    if (jm == NULL)
        return -ENOMEM;
    jm->d = d;
    char dir[CONFIG_PATH_MAX + 8];
    snprintf(dir, sizeof(dir), "%s/jobs", d->cfg.ota.store_dir);
    if (mkdir(dir, 0750) != 0 && errno != EEXIST) {
        int e = errno;
        log_event(LOG_WARNING, NULL, "ota_unavailable",
                  "OTA jobs are unavailable: cannot create %s: %s", dir, strerror(e));
        free(jm);
        return 0;
    }
    jm->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (jm->dirfd < 0) {
        log_event(LOG_WARNING, NULL, "ota_unavailable",
                  "OTA jobs are unavailable: cannot open %s: %s", dir, strerror(errno));
        free(jm);
        return 0;
    }
    d->ota_jobs = jm;
    int fd = dup(jm->dirfd);
    DIR *dp = fd >= 0 ? fdopendir(fd) : NULL;
    if (dp == NULL) {
        if (fd >= 0)
            close(fd);
        return 0;
    }
    struct dirent *de;
    while ((de = readdir(dp)) != NULL) {
        size_t n = strlen(de->d_name);
        if (strncmp(de->d_name, ".tmp.", 5) == 0)
            (void)unlinkat(jm->dirfd, de->d_name, 0);
        else if (n > 6 && strcmp(de->d_name + n - 6, ".state") == 0)
            job_resume(jm, de->d_name);
    }
    closedir(dp);
    return 0;
}

void ota_job_stop(struct daemon *d)
{
    struct ota_jobs *jm = d->ota_jobs;
    if (jm == NULL)
        return;
    for (struct job *j = jm->jobs, *next; j != NULL; j = next) {
        next = j->next;
        job_free(j);
    }
    close(jm->dirfd);
    free(jm);
    d->ota_jobs = NULL;
}
