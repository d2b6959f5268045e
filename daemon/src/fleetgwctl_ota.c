/* fleetgwctl's OTA commands (docs/ota.md):
 *
 *   fleetgwctl ota stage FILE [--class CLASS] [--recovery]
 *   fleetgwctl ota images
 *   fleetgwctl ota rm DIGEST
 *   fleetgwctl [ota] campaign create --image DIGEST [--id ID] [--class CLASS]
 *              [--nodes A,B,.. | --tags T1,T2]
 *              [--waves 1,10%,100%] [--max-parallel N] [--deadline S] [--step-timeout S]
 *              [--retries N] [--backoff S] [--threshold PCT] [--abort-failures N]
 *              [--abort-pct PCT] [--abort-min N] [--recovery] [--raise-floor]
 *   fleetgwctl [ota] campaign list
 *   fleetgwctl [ota] campaign status ID [--nodes] [--watch]
 *   fleetgwctl [ota] campaign halt|resume|abort ID
 *
 * The image file is opened here, with the operator's rights, and its descriptor passed to
 * fleetgwd, which reads it (the daemon's sandbox cannot see the operator's files). status
 * --watch redraws a progress bar per wave in a terminal and prints one JSON document per
 * change otherwise, until the campaign is final (exit 0 when it completed, 1 otherwise). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fleetgwctl.h"

static void ota_usage(FILE *f)
{
    fprintf(f,
            "Usage: fleetgwctl [--socket PATH] [--json] ota COMMAND\n"
            "  ota stage FILE [--class CLASS] [--recovery]\n"
            "        check an MCUboot image (format, signature, signer allowed for its class,\n"
            "        security counter, version, class, slot size) and store it\n"
            "  ota images                     the stored images\n"
            "  ota rm DIGEST                  remove a stored image (8+ hex digits)\n"
            "  [ota] campaign create --image DIGEST [--id ID] [--class CLASS]\n"
            "        [--nodes A,B,... | --tags T1,T2] (every node of the class by default)\n"
            "        [--waves 1,10%%,100%%] [--max-parallel N] [--deadline S] [--step-timeout S]\n"
            "        [--retries N] [--backoff S] [--threshold PCT] [--abort-failures N]\n"
            "        [--abort-pct PCT] [--abort-min N] [--recovery] [--raise-floor]\n"
            "  [ota] campaign list\n"
            "  [ota] campaign status ID [--nodes] [--watch]\n"
            "  [ota] campaign halt ID | resume ID | abort ID\n");
}

static bool parse_uint(const char *s, int64_t *ret)
{
    char *end = NULL;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < 0)
        return false;
    *ret = v;
    return true;
}

/* "1,10%,100%" -> [1, "10%", "100%"] */
static json_object *parse_waves(const char *s)
{
    json_object *arr = json_object_new_array();
    char *copy = strdup(s), *save = NULL;
    for (char *t = strtok_r(copy, ",", &save); t != NULL; t = strtok_r(NULL, ",", &save)) {
        int64_t v;
        if (t[0] != '\0' && t[strlen(t) - 1] == '%')
            json_object_array_add(arr, json_object_new_string(t));
        else if (parse_uint(t, &v))
            json_object_array_add(arr, json_object_new_int64(v));
        else {
            json_object_put(arr);
            arr = NULL;
            break;
        }
    }
    free(copy);
    return arr;
}

static json_object *parse_nodes(const char *s)
{
    json_object *arr = json_object_new_array();
    char *copy = strdup(s), *save = NULL;
    for (char *t = strtok_r(copy, ",", &save); t != NULL; t = strtok_r(NULL, ",", &save))
        json_object_array_add(arr, json_object_new_string(t));
    free(copy);
    return arr;
}

/* campaign create's options into the spec object: 0, or -1 after saying why. */
static int create_spec(int argc, char **argv, int i, json_object *spec)
{
    static const struct {
        const char *opt, *key;
    } nums[] = {
        {"--max-parallel", "max_parallel"},     {"--deadline", "node_deadline_s"},
        {"--step-timeout", "step_timeout_s"},   {"--retries", "retries"},
        {"--backoff", "retry_backoff_s"},       {"--threshold", "success_threshold_pct"},
        {"--abort-failures", "abort_failures"}, {"--abort-pct", "abort_failure_pct"},
        {"--abort-min", "abort_min_executed"},
    };
    for (; i < argc; i++) {
        const char *o = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        bool done = false;
        for (size_t k = 0; k < sizeof(nums) / sizeof(nums[0]); k++) {
            if (strcmp(o, nums[k].opt) != 0)
                continue;
            int64_t n;
            if (v == NULL || !parse_uint(v, &n)) {
                fprintf(stderr, "fleetgwctl: %s takes a number\n", o);
                return -1;
            }
            json_object_object_add(spec, nums[k].key, json_object_new_int64(n));
            i++;
            done = true;
        }
        if (done)
            continue;
        if (strcmp(o, "--recovery") == 0 || strcmp(o, "--raise-floor") == 0) {
            json_object_object_add(
                spec, o[2] == 'r' && o[3] == 'e' && o[4] == 'c' ? "recovery" : "raise_floor",
                json_object_new_boolean(1));
            continue;
        }
        if (v == NULL) {
            fprintf(stderr, "fleetgwctl: unknown option or missing value: %s\n", o);
            return -1;
        }
        if (strcmp(o, "--image") == 0) {
            json_object_object_add(spec, "image", json_object_new_string(v));
        } else if (strcmp(o, "--id") == 0) {
            json_object_object_add(spec, "id", json_object_new_string(v));
        } else if (strcmp(o, "--class") == 0) {
            json_object_object_add(spec, "class", json_object_new_string(v));
        } else if (strcmp(o, "--nodes") == 0) {
            json_object_object_add(spec, "nodes", parse_nodes(v));
        } else if (strcmp(o, "--tags") == 0) {
            json_object_object_add(spec, "tags", parse_nodes(v));
        } else if (strcmp(o, "--waves") == 0) {
            json_object *w = parse_waves(v);
            if (w == NULL) {
                fprintf(stderr, "fleetgwctl: --waves takes counts and percentages: 1,10%%,100%%\n");
                return -1;
            }
            json_object_object_add(spec, "waves", w);
        } else {
            fprintf(stderr, "fleetgwctl: unknown option %s\n", o);
            return -1;
        }
        i++;
    }
    return 0;
}

static void print_images(json_object *ans)
{
    json_object *arr;
    if (!json_object_object_get_ex(ans, "images", &arr))
        return;
    size_t n = json_object_array_length(arr);
    printf("%-16s  %-16s  %-12s  %9s  %-7s  %s\n", "DIGEST", "CLASS", "VERSION", "BYTES", "COUNTER",
           "RELEASED");
    for (size_t i = 0; i < n; i++) {
        json_object *o = json_object_array_get_idx(arr, i), *c;
        char cnt[16] = "-";
        if (json_object_object_get_ex(o, "security_counter", &c))
            snprintf(cnt, sizeof(cnt), "%lld", (long long)json_object_get_int64(c));
        json_object *rel;
        bool released =
            json_object_object_get_ex(o, "released", &rel) && json_object_get_boolean(rel);
        printf("%-16.16s  %-16s  %-12s  %9lld  %-7s  %s\n", jstr(o, "digest"), jstr(o, "class"),
               jstr(o, "version"), (long long)jint(o, "size"), cnt, released ? "yes" : "no");
    }
    printf("%zu image(s), %lld of %lld bytes used\n", n, (long long)jint(ans, "used_bytes"),
           (long long)jint(ans, "quota_bytes"));
}

/* Counts of the final and in-progress node states in a counts object. */
static void tally(json_object *counts, int64_t *done, int64_t *ok, int64_t *bad, int64_t *all)
{
    *done = *ok = *bad = *all = 0;
    json_object_object_foreach(counts, k, v)
    {
        int64_t n = json_object_get_int64(v);
        *all += n;
        if (strcmp(k, "succeeded") == 0) {
            *ok += n;
            *done += n;
        } else if (strcmp(k, "failed") == 0 || strcmp(k, "reverted") == 0 ||
                   strcmp(k, "timed_out") == 0 || strcmp(k, "rejected") == 0) {
            *bad += n;
            *done += n;
        } else if (strcmp(k, "skipped") == 0) {
            *done += n;
        }
    }
}

static void print_bar(const char *label, json_object *counts)
{
    int64_t done, ok, bad, all;
    char bar[41];
    tally(counts, &done, &ok, &bad, &all);
    int width = 40;
    int nok = all > 0 ? (int)(ok * width / all) : 0;
    int nbad = all > 0 ? (int)(bad * width / all) : 0;
    int nskip = all > 0 ? (int)((done - ok - bad) * width / all) : 0;
    int p = 0;
    for (int i = 0; i < nok && p < width; i++)
        bar[p++] = '#';
    for (int i = 0; i < nbad && p < width; i++)
        bar[p++] = 'x';
    for (int i = 0; i < nskip && p < width; i++)
        bar[p++] = '-';
    while (p < width)
        bar[p++] = '.';
    bar[width] = '\0';
    printf("%-8s [%s] %lld/%lld done: %lld succeeded, %lld failed\n", label, bar, (long long)done,
           (long long)all, (long long)ok, (long long)bad);
}

static void print_campaign(json_object *c, bool clear)
{
    json_object *img, *counts, *waves, *wave, *nodes;
    if (clear)
        printf("\033[H\033[2J");
    printf("campaign  %s  %s%s%s\n", jstr(c, "id"), jstr(c, "state"),
           jstr(c, "reason")[0] ? ": " : "", jstr(c, "reason"));
    if (json_object_object_get_ex(c, "image", &img))
        printf("image     %.16s...  version %s  class %s\n", jstr(img, "digest"),
               jstr(img, "version"), jstr(img, "class"));
    if (json_object_object_get_ex(c, "wave", &wave))
        printf("wave      %lld of %lld\n", (long long)jint(wave, "current"),
               (long long)jint(wave, "count"));
    if (json_object_object_get_ex(c, "waves", &waves))
        for (size_t i = 0; i < json_object_array_length(waves); i++) {
            char label[32];
            json_object *w = json_object_array_get_idx(waves, i), *wc;
            snprintf(label, sizeof(label), "wave %u", (unsigned)(i + 1));
            if (json_object_object_get_ex(w, "counts", &wc))
                print_bar(label, wc);
        }
    if (json_object_object_get_ex(c, "counts", &counts)) {
        print_bar("all", counts);
        printf("states   ");
        json_object_object_foreach(counts, k, v)
        {
            if (json_object_get_int64(v) > 0)
                printf(" %s=%lld", k, (long long)json_object_get_int64(v));
        }
        printf("\n");
    }
    if (json_object_object_get_ex(c, "nodes", &nodes)) {
        printf("%-32s  %-11s  %8s  %3s  %s\n", "NODE", "STATE", "OFFSET", "TRY", "REASON");
        for (size_t i = 0; i < json_object_array_length(nodes); i++) {
            json_object *n = json_object_array_get_idx(nodes, i);
            printf("%-32s  %-11s  %8lld  %3lld  %s\n", jstr(n, "node"), jstr(n, "state"),
                   (long long)jint(n, "offset"), (long long)jint(n, "attempts"),
                   jstr(n, "reason")[0] ? jstr(n, "reason") : "-");
        }
    }
    fflush(stdout);
}

static bool final_state(const char *st)
{
    return strcmp(st, "completed") == 0 || strcmp(st, "halted") == 0 ||
           strcmp(st, "aborted") == 0 || strcmp(st, "failed") == 0;
}

static int watch(const char *sock, bool as_json, json_object *req)
{
    bool tty = !as_json && isatty(STDOUT_FILENO);
    char last[65536] = "";
    for (;;) {
        json_object *ans = fleetgwctl_call(sock, req, -1), *ok, *c;
        if (ans == NULL)
            return 3;
        if (!json_object_object_get_ex(ans, "ok", &ok) || !json_object_get_boolean(ok) ||
            !json_object_object_get_ex(ans, "campaign", &c)) {
            fprintf(stderr, "fleetgwctl: %s\n", jstr(ans, "error"));
            json_object_put(ans);
            return 1;
        }
        const char *txt = json_object_to_json_string_ext(c, JSON_C_TO_STRING_PLAIN);
        bool changed = strcmp(txt, last) != 0;
        if (changed) {
            snprintf(last, sizeof(last), "%s", txt);
            if (tty) {
                print_campaign(c, true);
            } else {
                printf("%s\n", txt);
                fflush(stdout);
            }
        }
        const char *st = jstr(c, "state");
        bool fin = final_state(st), completed = strcmp(st, "completed") == 0;
        json_object_put(ans);
        if (fin)
            return completed ? 0 : 1;
        struct timespec ts = {.tv_sec = 1, .tv_nsec = 0};
        nanosleep(&ts, NULL);
    }
}

int fleetgwctl_ota(const char *sock, bool as_json, int argc, char **argv)
{
    json_object *req = json_object_new_object(), *ans = NULL, *spec = json_object_new_object();
    int ret = 2, fd = -1, i = 1;
    const char *cmd = NULL;
    bool watching = false;

    if (strcmp(argv[0], "ota") == 0 && i < argc && strcmp(argv[i], "campaign") == 0)
        i++; /* `ota campaign ...` is `campaign ...` */
    bool campaign = strcmp(argv[0], "campaign") == 0 || i == 2;
    const char *verb = i < argc ? argv[i++] : NULL;
    if (verb == NULL || strcmp(verb, "--help") == 0 || strcmp(verb, "-h") == 0) {
        ota_usage(verb == NULL ? stderr : stdout);
        ret = verb == NULL ? 2 : 0;
        goto out;
    }
    if (!campaign && strcmp(verb, "stage") == 0 && i < argc) {
        cmd = "ota_stage";
        const char *file = argv[i++];
        for (; i < argc; i++) {
            if (strcmp(argv[i], "--class") == 0 && i + 1 < argc)
                json_object_object_add(spec, "class", json_object_new_string(argv[++i]));
            else if (strcmp(argv[i], "--recovery") == 0)
                json_object_object_add(spec, "recovery", json_object_new_boolean(1));
            else
                goto usage;
        }
        fd = open(file, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
        if (fd < 0) {
            fprintf(stderr, "fleetgwctl: cannot open %s: %s\n", file, strerror(errno));
            ret = 4;
            goto out;
        }
    } else if (!campaign && strcmp(verb, "images") == 0 && i == argc) {
        cmd = "ota_images";
    } else if (!campaign && strcmp(verb, "rm") == 0 && i + 1 == argc) {
        cmd = "ota_rm";
        json_object_object_add(req, "digest", json_object_new_string(argv[i]));
    } else if (campaign && strcmp(verb, "create") == 0) {
        cmd = "campaign_create";
        if (create_spec(argc, argv, i, spec) < 0) {
            ota_usage(stderr); /* after create_spec's one line naming the option */
            goto out;
        }
    } else if (campaign && strcmp(verb, "list") == 0 && i == argc) {
        cmd = "campaign_list";
    } else if (campaign && strcmp(verb, "status") == 0 && i < argc) {
        cmd = "campaign_status";
        json_object_object_add(req, "campaign", json_object_new_string(argv[i++]));
        for (; i < argc; i++) {
            if (strcmp(argv[i], "--nodes") == 0)
                json_object_object_add(spec, "nodes", json_object_new_boolean(1));
            else if (strcmp(argv[i], "--watch") == 0)
                watching = true;
            else
                goto usage;
        }
    } else if (campaign &&
               (strcmp(verb, "halt") == 0 || strcmp(verb, "resume") == 0 ||
                strcmp(verb, "abort") == 0) &&
               i + 1 == argc) {
        cmd = strcmp(verb, "halt") == 0     ? "campaign_halt"
              : strcmp(verb, "resume") == 0 ? "campaign_resume"
                                            : "campaign_abort";
        json_object_object_add(req, "campaign", json_object_new_string(argv[i]));
    } else {
        goto usage;
    }
    json_object_object_add(req, "cmd", json_object_new_string(cmd));
    if (strcmp(cmd, "ota_stage") == 0 || strcmp(cmd, "campaign_create") == 0 ||
        strcmp(cmd, "campaign_status") == 0) {
        json_object_object_add(req, "spec", spec);
        spec = NULL;
    }
    if (watching) {
        ret = watch(sock, as_json, req);
        goto out;
    }
    ans = fleetgwctl_call(sock, req, fd);
    if (ans == NULL) {
        ret = 3;
        goto out;
    }
    json_object *ok, *o;
    bool good = json_object_object_get_ex(ans, "ok", &ok) && json_object_get_boolean(ok);
    ret = good ? 0 : 1;
    if (as_json) {
        printf("%s\n", json_object_to_json_string_ext(ans, JSON_C_TO_STRING_PRETTY));
    } else if (!good) {
        fprintf(stderr, "fleetgwctl: %s\n", jstr(ans, "error"));
    } else if (strcmp(cmd, "ota_stage") == 0 && json_object_object_get_ex(ans, "image", &o)) {
        printf("staged %s\n  class %s, version %s, %lld bytes, signer %.16s...\n",
               jstr(o, "digest"), jstr(o, "class"), jstr(o, "version"), (long long)jint(o, "size"),
               jstr(o, "signer_id"));
    } else if (strcmp(cmd, "ota_images") == 0) {
        print_images(ans);
    } else if (strcmp(cmd, "ota_rm") == 0) {
        printf("removed %s\n", jstr(ans, "removed"));
    } else if (strcmp(cmd, "campaign_create") == 0) {
        printf("campaign %s created for %lld node(s); `fleetgwctl campaign status %s --watch` "
               "follows it\n",
               jstr(ans, "campaign"), (long long)jint(ans, "targets"), jstr(ans, "campaign"));
    } else if (strcmp(cmd, "campaign_list") == 0 &&
               json_object_object_get_ex(ans, "campaigns", &o)) {
        printf("%-32s  %s\n", "CAMPAIGN", "STATE");
        for (size_t k = 0; k < json_object_array_length(o); k++) {
            json_object *e = json_object_array_get_idx(o, k);
            printf("%-32s  %s\n", jstr(e, "id"), jstr(e, "state"));
        }
    } else if (strcmp(cmd, "campaign_status") == 0 &&
               json_object_object_get_ex(ans, "campaign", &o)) {
        print_campaign(o, false);
    } else {
        printf("campaign %s: %s done\n", jstr(ans, "campaign"), verb);
    }
    goto out;
usage:
    fprintf(stderr, "fleetgwctl: %s %s: unknown command, option or missing value\n", argv[0], verb);
    ota_usage(stderr);
    ret = 2;
out:
    if (fd >= 0)
        close(fd);
    json_object_put(spec);
    json_object_put(req);
    json_object_put(ans);
    return ret;
}
