/* Shared between the ops/ check sources; not a public interface. */
#ifndef FLEETGW_CHECK_INTERNAL_H
#define FLEETGW_CHECK_INTERNAL_H

#include "fleetgw/check.h"

/* Room for "in key file <path>" / "at persistent handle 0x........" in messages. */
#define CHECK_KEY_NAME_MAX 1100

/* Fills res (cleared first); action may be NULL (nothing to do). */
void check_set(struct check_result *res, const char *name, enum check_status st, const char *action,
               const char *fmt, ...) __attribute__((format(printf, 5, 6)));

#endif
