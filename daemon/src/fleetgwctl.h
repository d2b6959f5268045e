/* What fleetgwctl's command files share. */
#ifndef FLEETGWD_FLEETGWCTL_H
#define FLEETGWD_FLEETGWCTL_H

#include <json-c/json.h>
#include <stdbool.h>
#include <stdint.h>

/* One request to fleetgwd's control socket (pass_fd >= 0: that descriptor goes with it);
 * the parsed answer, or NULL after saying why on stderr. */
json_object *fleetgwctl_call(const char *sock, json_object *req, int pass_fd);

/* A member of an answer as text ("" when absent) or as an integer (0 when absent). */
const char *jstr(json_object *o, const char *k);
int64_t jint(json_object *o, const char *k);

/* `fleetgwctl ota ...` and `fleetgwctl campaign ...`: argv[0] is "ota" or "campaign".
 * Returns the exit code (0 done, 1 refused or, for status --watch, the campaign did not
 * complete, 2 usage, 3 cannot reach the daemon, 4 cannot open the image). */
int fleetgwctl_ota(const char *sock, bool as_json, int argc, char **argv);

#endif
