/* fleetgwd logging: structured journal entries (MESSAGE, PRIORITY, NODE_ID, REASON) when
 * running under systemd with the journal as stderr (JOURNAL_STREAM set), plain lines on
 * stderr otherwise. Only the daemon's top level logs; library-style modules return errors. */
#ifndef FLEETGWD_LOG_H
#define FLEETGWD_LOG_H

#include <syslog.h>

/* Decides the sink once (journal or stderr) and sets the maximum priority logged. */
void log_setup(int max_priority);

/* node and reason may be NULL. The message is one human sentence. */
void log_event(int priority, const char *node, const char *reason, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* An OTA campaign's entry: CAMPAIGN=, NODE_ID= (node may be NULL) and REASON= fields. */
void log_campaign(int priority, const char *campaign, const char *node, const char *reason,
                  const char *fmt, ...) __attribute__((format(printf, 5, 6)));

#define log_err(...)    log_event(LOG_ERR, NULL, NULL, __VA_ARGS__)
#define log_warn(...)   log_event(LOG_WARNING, NULL, NULL, __VA_ARGS__)
#define log_notice(...) log_event(LOG_NOTICE, NULL, NULL, __VA_ARGS__)
#define log_info(...)   log_event(LOG_INFO, NULL, NULL, __VA_ARGS__)
#define log_debug(...)  log_event(LOG_DEBUG, NULL, NULL, __VA_ARGS__)

#endif
