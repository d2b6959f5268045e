/* What config.c and config_uplink.c share (not part of config.h's API). */
#pragma once
#include "config.h"

#include <json-c/json.h>
#include <stddef.h>

/* Fills err (file name, the line of section.key found in text, the key, the reason) and
 * returns -EINVAL. text may be NULL (no line). */
int config_fail(struct config_error *err, enum config_exit code, const char *name, const char *text,
                size_t len, const char *section, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 8, 9)));

/* uplink.hosts' value v: 1..max distinct {"host", "port"} entries into cfg->uplink.hosts. */
int config_set_hosts(json_object *v, const char *section, const char *key, long long max,
                     const char *name, const char *text, size_t len, struct config *cfg,
                     struct config_error *err);

/* After all keys are read: the endpoint list from either form, the server names, and
 * uplink.service's limits. */
int config_validate_uplink(const char *name, const char *text, size_t len, struct config *cfg,
                           struct config_error *err);
