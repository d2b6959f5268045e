/* Counted drops: a message fleetgwd refuses (either direction) is counted in the spool's
 * counters under its reason, durable with the next commit, and logged with NODE_ID= and
 * REASON=: at warning level the first time a reason occurs in a run, at debug level
 * afterwards, so a flood of one kind of bad message costs no log storm. */
#ifndef FLEETGWD_DROP_H
#define FLEETGWD_DROP_H

#include <stdint.h>

struct spool;

#define DROP_REASONS_MAX 48

/* The reasons already logged at warning level (string literals, compared by content). */
struct drop_log {
    const char *warned[DROP_REASONS_MAX];
    unsigned n_warned;
};

/* Counts one drop of what (a phrase: "a message larger than ...") from node (may be NULL)
 * under reason (a literal token). */
void drop_count(struct drop_log *dl, struct spool *sp, const char *node, const char *reason,
                const char *what);
/* The same for n messages at once (what says how many). */
void drop_count_n(struct drop_log *dl, struct spool *sp, const char *node, const char *reason,
                  uint64_t n, const char *what);

#endif
