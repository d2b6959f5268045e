/* Small json-c helpers shared by the daemon's parsers of JSON documents (the configuration,
 * the device-class file, control request specs, OTA job documents). */
#ifndef FLEETGWD_JSONUTIL_H
#define FLEETGWD_JSONUTIL_H

#include <json-c/json.h>
#include <stddef.h>

/* "null", "a boolean", "an integer", "a decimal number", "a string", "an array", "an object"
 * (for messages such as "'x' must be an integer, not a string"). */
const char *json_type_word(json_object *v);

/* 0 when every key of object o is one of known[] (NULL-terminated); otherwise -EINVAL with
 * err = "unknown key '<k>' in <where>". */
int json_keys_known(json_object *o, const char *where, const char *const *known, char *err,
                    size_t errlen) __attribute__((warn_unused_result));

#endif
