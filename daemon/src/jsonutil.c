/* jsonutil.c: see jsonutil.h. */
#include "jsonutil.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

const char *json_type_word(json_object *v)
{
    switch (json_object_get_type(v)) {
    case json_type_null:
        return "null";
    case json_type_boolean:
        return "a boolean";
    case json_type_double:
        return "a decimal number";
    case json_type_int:
        return "an integer";
    case json_type_object:
        return "an object";
    case json_type_array:
        return "an array";
    case json_type_string:
        return "a string";
    }
    return "an unknown type";
}

int json_keys_known(json_object *o, const char *where, const char *const *known, char *err,
                    size_t errlen)
{
    json_object_object_foreach(o, k, v)
    {
        (void)v;
        bool found = false;
        for (size_t i = 0; known[i] != NULL && !found; i++)
            found = strcmp(k, known[i]) == 0;
        if (!found) {
            snprintf(err, errlen, "unknown key '%.40s' in %s", k, where);
            return -EINVAL;
        }
    }
    return 0;
}
