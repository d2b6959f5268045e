/* reload.c: SIGHUP. Reads the configuration file again and applies what may change while
 * running: the attestation policy (reference values, signer keys, released images; gate_io.c),
 * the reloadable keys (config_reload_apply: the key table says which), the gate's settings
 * (verdicts, challenges and buckets are kept), the spool quota and the log level. A file that
 * does not validate, or a policy that does not load, changes nothing. Keys that need a restart
 * are named in the journal. */
#define _GNU_SOURCE
#include "daemon.h"

#include <stdlib.h>
#include <systemd/sd-daemon.h>

void daemon_reload(struct daemon *d)
{
    struct config *n = calloc(1, sizeof(*n));
    struct config_error err;
    if (n == NULL)
        return;
    (void)sd_notify(0, "RELOADING=1");
    if (config_load(d->config_path, n, &err) < 0) {
        log_event(LOG_ERR, NULL, "config_invalid",
                  "reload refused, keeping the running configuration: %s", err.message);
        goto out;
    }
    if (policy_reload(d, n) < 0)
        goto out;
    {
        char fixed[512];
        if (config_reload_apply(&d->cfg, n, fixed, sizeof(fixed)) > 0)
            log_notice("reload: %s changed: that takes effect at the next restart", fixed);
    }
    {
        struct gate_config gc = gate_config_of(d);
        gate_reload(d->gate, &gc); /* verdicts, challenges and buckets are kept */
    }
    spool_set_quota(d->spool, n->spool.max_bytes);
    log_setup(config_log_priority(&d->cfg));
    if (d->edge != NULL)
        mosq_log_enable(d, d->edge, false);
    if (d->up != NULL)
        mosq_log_enable(d, d->up, d->up_state != UP_CONNECTED);
    log_notice("configuration reloaded from %s", d->config_path);
out:
    (void)sd_notify(0, "READY=1");
    free(n);
}
