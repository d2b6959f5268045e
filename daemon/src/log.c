#define _GNU_SOURCE
#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <systemd/sd-journal.h>
#include <unistd.h>

static int log_to_journal = -1;
static int log_max = LOG_INFO;

/* JOURNAL_STREAM is "<device>:<inode>" of the journal stream systemd connected to stdout
 * and stderr; it only counts when stderr is still that stream (systemd.exec(5)), not when
 * the variable was merely inherited by a process started from a shell in a service. */
static int stderr_is_journal(void)
{
    const char *js = getenv("JOURNAL_STREAM");
    unsigned long long dev = 0, ino = 0;
    char *end = NULL;
    struct stat st;

    if (js == NULL || js[0] == '\0')
        return 0;
    errno = 0;
    dev = strtoull(js, &end, 10);
    if (errno != 0 || end == js || *end != ':')
        return 0;
    const char *i = end + 1;
    ino = strtoull(i, &end, 10);
    if (errno != 0 || end == i || *end != '\0')
        return 0;
    if (fstat(STDERR_FILENO, &st) != 0)
        return 0;
    return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

void log_setup(int max_priority)
{
    log_to_journal = stderr_is_journal();
    log_max = max_priority;
}

/* false when priority is not logged; else msg holds the formatted sentence. */
static bool log_format(int priority, char *msg, size_t cap, const char *fmt, va_list ap)
    __attribute__((format(printf, 4, 0)));
static bool log_format(int priority, char *msg, size_t cap, const char *fmt, va_list ap)
{
    if (priority > log_max)
        return false;
    if (log_to_journal < 0)
        log_setup(log_max);
    vsnprintf(msg, cap, fmt, ap);
    return true;
}

void log_event(int priority, const char *node, const char *reason, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;

    va_start(ap, fmt);
    bool on = log_format(priority, msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (!on)
        return;

    if (log_to_journal == 1) {
        /* sd_journal_send takes "FIELD=value" printf-style pairs, NULL terminated. */
        if (node != NULL && reason != NULL)
            sd_journal_send("MESSAGE=%s", msg, "PRIORITY=%d", priority, "NODE_ID=%s", node,
                            "REASON=%s", reason, "SYSLOG_IDENTIFIER=fleetgwd", NULL);
        else if (node != NULL)
            sd_journal_send("MESSAGE=%s", msg, "PRIORITY=%d", priority, "NODE_ID=%s", node,
                            "SYSLOG_IDENTIFIER=fleetgwd", NULL);
        else if (reason != NULL)
            sd_journal_send("MESSAGE=%s", msg, "PRIORITY=%d", priority, "REASON=%s", reason,
                            "SYSLOG_IDENTIFIER=fleetgwd", NULL);
        else
            sd_journal_send("MESSAGE=%s", msg, "PRIORITY=%d", priority,
                            "SYSLOG_IDENTIFIER=fleetgwd", NULL);
        return;
    }
    if (node != NULL || reason != NULL)
        fprintf(stderr, "fleetgwd: %s [%s%s%s%s]\n", msg, node ? "node=" : "", node ? node : "",
                (node && reason) ? " reason=" : (reason ? "reason=" : ""), reason ? reason : "");
    else
        fprintf(stderr, "fleetgwd: %s\n", msg);
}

void log_campaign(int priority, const char *campaign, const char *node, const char *reason,
                  const char *fmt, ...)
{
    char msg[1024];
    va_list ap;

    va_start(ap, fmt);
    bool on = log_format(priority, msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (!on)
        return;
    if (log_to_journal == 1) {
        sd_journal_send("MESSAGE=%s", msg, "PRIORITY=%d", priority, "CAMPAIGN=%s", campaign,
                        "NODE_ID=%s", node != NULL ? node : "", "REASON=%s",
                        reason != NULL ? reason : "", "SYSLOG_IDENTIFIER=fleetgwd", NULL);
        return;
    }
    fprintf(stderr, "fleetgwd: %s [campaign=%s%s%s%s%s]\n", msg, campaign, node ? " node=" : "",
            node ? node : "", reason ? " reason=" : "", reason ? reason : "");
}
