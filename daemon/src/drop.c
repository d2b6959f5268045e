/* Counted drops (drop.h). */
#include "drop.h"
#include "log.h"
#include "spool.h"

#include <stdbool.h>
#include <string.h>

void drop_count(struct drop_log *dl, struct spool *sp, const char *node, const char *reason,
                const char *what)
{
    drop_count_n(dl, sp, node, reason, 1, what);
}

void drop_count_n(struct drop_log *dl, struct spool *sp, const char *node, const char *reason,
                  uint64_t n, const char *what)
{
    int r = spool_count(sp, reason, n);
    if (r < 0)
        log_event(LOG_ERR, node, reason, "cannot record a drop counter: %s", strerror(-r));
    bool first = true;
    for (unsigned i = 0; i < dl->n_warned && first; i++)
        first = strcmp(dl->warned[i], reason) != 0;
    if (first && dl->n_warned < DROP_REASONS_MAX)
        dl->warned[dl->n_warned++] = reason;
    log_event(first ? LOG_WARNING : LOG_DEBUG, node, reason, "dropped %s", what);
}
