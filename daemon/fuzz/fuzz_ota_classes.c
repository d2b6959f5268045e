/* Fuzz target: the OTA device classes parser (ota.classes_file, JSON text from the operator). */
#include "ota_classes.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct ota_classes c;
    char err[512];
    err[0] = '\0';
    if (ota_classes_parse((const char *)data, size, &c, err, sizeof(err)) < 0) {
        if (err[0] == '\0' || c.n != 0)
            abort(); /* every refusal explains itself and leaves no class behind */
        return 0;
    }
    /* An accepted file holds what the header promises. */
    if (c.n > OTA_CLASSES_MAX)
        abort();
    for (size_t i = 0; i < c.n; i++) {
        const struct ota_class *k = &c.cls[i];
        if (k->name[0] == '\0' || strlen(k->name) > OTA_CLASS_NAME_MAX || k->n_signers == 0 ||
            k->n_signers > OTA_CLASS_SIGNERS || k->trailer_size == 0 ||
            k->trailer_size >= k->slot_size || ota_class_find(&c, k->name) != k ||
            (k->has_cid && ota_class_by_cid(&c, k->cid) != k))
            abort();
    }
    return 0;
}
