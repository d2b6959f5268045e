/* Fuzz the edge broker plugin's parsing of outside bytes: option values and the password file,
 * and the decisions on arbitrary user names and topics (which come from certificates and
 * clients). Input: byte 0 selects listener/state/access, then NUL-separated fields
 * user, topic, option key, option value; the whole input is also a password file. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fleetgw/auth_policy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *buf, *f[4] = {"", "", "", ""}, pw[AUTH_PASSWORD_MAX + 1], err[200];
    struct auth_options o;
    size_t at = 1;
    if (size == 0 || size > 65536)
        return 0;
    (void)auth_password_parse((const char *)data, size, pw, sizeof(pw), err, sizeof(err));
    buf = malloc(size + 1u);
    if (buf == NULL)
        return 0;
    memcpy(buf, data, size);
    buf[size] = '\0';
    for (int i = 0; i < 4 && at <= size; i++) {
        f[i] = buf + at;
        at += strlen(buf + at) + 1u;
    }
    uint8_t sel = data[0];
    enum auth_listener l = (sel & 1u) ? AUTH_LISTENER_GATEWAY : AUTH_LISTENER_NODE;
    enum auth_node_state s = (enum auth_node_state)((sel >> 1) % 6u);
    enum auth_access a = (enum auth_access)((sel >> 4) % 5u);
    struct auth_decision d = auth_connect(l, f[0], "cid", s, "fleetgwd", (sel & 0x80u) != 0);
    if (d.reason == NULL)
        abort();
    d = auth_acl(l, f[0], "fleetgwd", s, a, f[1]);
    if (d.reason == NULL)
        abort();
    /* Invariant: a node never gets a topic of another id, nor anything outside fleet/. */
    if (d.allow && l == AUTH_LISTENER_NODE && a != AUTH_UNSUBSCRIBE) {
        size_t ul = strlen(f[0]);
        if (strncmp(f[1], "fleet/", 6) != 0 || strncmp(f[1] + 6, f[0], ul) != 0 ||
            f[1][6 + ul] != '/')
            abort();
    }
    if (d.allow && l == AUTH_LISTENER_GATEWAY && a != AUTH_UNSUBSCRIBE &&
        (strcmp(f[0], "fleetgwd") != 0 || strncmp(f[1], "fleet/", 6) != 0))
        abort();
    memset(&o, 0, sizeof(o));
    if (auth_option_set(&o, f[2], f[3], err, sizeof(err)) == 0)
        (void)auth_options_check(&o, err, sizeof(err));
    (void)auth_password_equal(f[2], f[3]);
    free(buf);
    return 0;
}
