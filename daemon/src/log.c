#define _GNU_SOURCE
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-journal.h>

static int log_to_journal = -1;
static int log_max = LOG_INFO;

void log_setup(int max_priority)
{
    const char *js = getenv("JOURNAL_STREAM");
    log_to_journal = (js != NULL && js[0] != '\0') ? 1 : 0;
    log_max = max_priority;
}

void log_event(int priority, const char *node, const char *reason, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;

    if (priority > log_max)
        return;
    if (log_to_journal < 0)
        log_setup(log_max);
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);

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
