/* Every key fleetgwd accepts is documented: a table row "| `key` |" in its section of
 * docs/configuration.md, and a .B/.BR line naming it in its section of fleetgwd.conf(5).
 * The key list is the parser's own table (config_key_name), so a key added without its
 * documentation fails here. The "Reload (SIGHUP)" section names every key in the list its
 * reloadable column puts it in ("Take effect at once" or "Need a restart"), and only there. */
#include "check.h"
#include "config.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The text of the section whose heading line starts with `start` and contains `name`, up to
 * the next line starting with `start`; NULL when there is none. *len is its length. */
static const char *section(const char *doc, const char *start, const char *name, size_t *len)
{
    size_t sl = strlen(start);
    for (const char *p = doc; p != NULL && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
        if (strncmp(p, start, sl) != 0)
            continue;
        const char *eol = strchr(p, '\n');
        size_t ll = eol ? (size_t)(eol - p) : strlen(p);
        char line[512];
        snprintf(line, sizeof(line), "%.*s", (int)(ll < sizeof(line) - 1 ? ll : sizeof(line) - 1),
                 p);
        if (strstr(line, name) == NULL)
            continue;
        const char *body = eol ? eol + 1 : p + ll;
        const char *q = body;
        while (*q) {
            if (strncmp(q, start, sl) == 0)
                break;
            const char *e = strchr(q, '\n');
            q = e ? e + 1 : q + strlen(q);
        }
        *len = (size_t)(q - body);
        return body;
    }
    return NULL;
}

static bool contains(const char *text, size_t len, const char *s)
{
    size_t sl = strlen(s);
    for (size_t i = 0; i + sl <= len; i++)
        if (memcmp(text + i, s, sl) == 0)
            return true;
    return false;
}

/* "| `key` |", or "| `section.key` |" in a section shared by several. */
static bool md_has(const char *text, size_t len, const char *section_name, const char *key)
{
    char row[160];
    snprintf(row, sizeof(row), "| `%s` |", key);
    if (contains(text, len, row))
        return true;
    snprintf(row, sizeof(row), "| `%s.%s` |", section_name, key);
    return contains(text, len, row);
}

/* A line ".B..." of the section whose words (split on blanks, quotes, commas) include key. */
static bool man_has(const char *sec, size_t len, const char *key)
{
    const char *end = sec + len;
    for (const char *p = sec; p < end;) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        const char *le = eol ? eol : end;
        if (le - p > 3 && p[0] == '.' && p[1] == 'B') {
            char line[512];
            size_t ll = (size_t)(le - p);
            snprintf(line, sizeof(line), "%.*s",
                     (int)(ll < sizeof(line) - 1 ? ll : sizeof(line) - 1), p);
            for (char *tok = strtok(line + 3, " \t\",;"); tok; tok = strtok(NULL, " \t\",;"))
                if (strcmp(tok, key) == 0)
                    return true;
        }
        p = eol ? eol + 1 : end;
    }
    return false;
}

int main(void)
{
    /* check_read_source() returns a static buffer: keep a copy of the first file. */
    const char *t = check_read_source("docs/configuration.md");
    char *md = t ? strdup(t) : NULL;
    const char *man = check_read_source("packaging/man/fleetgwd.conf.5");
    CHECK(md != NULL);
    CHECK(man != NULL);
    if (md == NULL || man == NULL) {
        free(md);
        return check_finish();
    }

    CHECK(config_key_count() > 30);
    for (size_t i = 0; i < config_key_count(); i++) {
        const char *sec, *key;
        config_key_name(i, &sec, &key);
        char md_name[64], man_name[64];
        snprintf(md_name, sizeof(md_name), "`%s`", sec);
        snprintf(man_name, sizeof(man_name), ".SH %s", sec);
        for (char *c = man_name + 4; *c; c++)
            *c = (char)(*c >= 'a' && *c <= 'z' ? *c - 'a' + 'A' : *c);
        size_t ml = 0, nl = 0;
        const char *ms = section(md, "## ", md_name, &ml);
        const char *ns = section(man, ".SH ", man_name + 4, &nl);
        if (ms == NULL || !md_has(ms, ml, sec, key)) {
            fprintf(stderr, "docs/configuration.md: no row for %s.%s in its section\n", sec, key);
            CHECK(false);
        }
        if (ns == NULL || !man_has(ns, nl, key)) {
            fprintf(stderr, "packaging/man/fleetgwd.conf.5: %s.%s not described in .SH %s\n", sec,
                    key, man_name + 4);
            CHECK(false);
        }
        /* The reload section: the right list, and not the other. */
        size_t rl = 0;
        const char *rs = section(md, "## ", "Reload (SIGHUP)", &rl);
        const char *split = rs ? strstr(rs, "- **Need a restart**") : NULL;
        char dotted[96];
        snprintf(dotted, sizeof(dotted), "`%s.%s`", sec, key);
        if (rs == NULL || split == NULL || split > rs + rl) {
            fprintf(stderr, "docs/configuration.md: no \"Need a restart\" list in Reload\n");
            CHECK(false);
            continue;
        }
        size_t at_once_len = (size_t)(split - rs), restart_len = rl - at_once_len;
        bool in_once = contains(rs, at_once_len, dotted);
        bool in_restart = contains(split, restart_len, dotted);
        if (config_key_reloadable(i) ? (!in_once || in_restart) : (in_once || !in_restart)) {
            fprintf(stderr, "docs/configuration.md, Reload: %s belongs in \"%s\" only\n", dotted,
                    config_key_reloadable(i) ? "Take effect at once" : "Need a restart");
            CHECK(false);
        }
    }
    free(md);
    return check_finish();
}
