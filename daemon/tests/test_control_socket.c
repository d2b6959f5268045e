/* The control socket as any user may run fleetgwd (make demo, the tests, a developer): with
 * control.group empty it belongs to the daemon's own group (0660) and admits the daemon's own
 * uid; a configured group that does not exist refuses the start, naming it; a configured group
 * the daemon may not give the socket to (its uid is not a member) leaves the socket
 * owner-only (0600) with a warning that names the group and why. Runs as root or not: as root
 * the unprivileged case runs in a child that drops to uid/gid 65534 first. */
#include "ctl_socket_util.h"

/* ctl_server_start with a group this process is not a member of: returns a bit mask of the
 * checks that failed (0: all held). */
static int check_unapplied_group(const char *dir, const char *group)
{
    int bad = 0;
    sd_event *ev = NULL;
    struct ctl_server *srv = NULL;
    char path[160], err[256] = "";
    snprintf(path, sizeof(path), "%s/unapplied.sock", dir);
    if (sd_event_new(&ev) < 0)
        return 1;
    const struct ctl_groups g = {group, "", ""};
    int r = ctl_server_start(ev, path, &g, ctl_test_handler, NULL, &srv, err, sizeof(err));
    if (r != 0) {
        fprintf(stderr, "  start with unapplied group '%s': %d %s\n", group, r, err);
        bad |= 2;
    } else {
        const char *w = ctl_server_warning(srv);
        char want[96];
        snprintf(want, sizeof(want), "control.group '%s' cannot be applied", group);
        if (w == NULL || strstr(w, want) == NULL || strstr(w, "not a member") == NULL) {
            fprintf(stderr, "  warning: %s\n", w ? w : "(none)");
            bad |= 4;
        }
        struct stat st;
        if (stat(path, &st) != 0 || (st.st_mode & 0777) != 0600 || st.st_gid != getegid()) {
            fprintf(stderr, "  socket mode %o gid %u (want 0600, gid %u)\n", st.st_mode & 0777,
                    (unsigned)st.st_gid, (unsigned)getegid());
            bad |= 8;
        }
        /* The daemon's own uid still gets in. */
        if (ctl_test_serve_until(ev, ctl_test_client(path, (uid_t)-1, (gid_t)-1)) != CLIENT_OK)
            bad |= 16;
    }
    ctl_server_free(srv);
    sd_event_unref(ev);
    return bad;
}

static void check_roles(sd_event *ev, const char *dir)
{
    char path[192], err[256] = "", admin[64], reader[64];
    struct ctl_server *srv = NULL;
    struct stat st;
    enum ctl_role role = CTL_ROLE_ADMIN;
    struct group *gr = getgrgid(1);
    CHECK(gr != NULL);
    if (gr == NULL)
        return;
    snprintf(admin, sizeof(admin), "%s", gr->gr_name);
    gr = getgrgid(2);
    CHECK(gr != NULL);
    if (gr == NULL)
        return;
    snprintf(reader, sizeof(reader), "%s", gr->gr_name);
    const uid_t other = geteuid() == 65533 ? 65532 : 65533;

    /* Role groups and no control.group: the file is open (0666), the credentials decide. */
    snprintf(path, sizeof(path), "%s/roles.sock", dir);
    const struct ctl_groups g = {"", admin, reader};
    CHECK_EQ_INT(ctl_server_start(ev, path, &g, ctl_test_handler, NULL, &srv, err, sizeof(err)), 0);
    if (srv == NULL)
        return;
    CHECK(stat(path, &st) == 0);
    CHECK_EQ_INT(st.st_mode & 0777, 0666);
    const gid_t sup_admin[] = {7, 1}, sup_read[] = {2}, sup_none[] = {7, 8};
    /* root and the daemon's uid: admin, whatever their groups */
    CHECK_EQ_INT(ctl_server_peer_role(srv, 0, 60000, NULL, 0, &role), 0);
    CHECK_EQ_INT(role, CTL_ROLE_ADMIN);
    role = CTL_ROLE_READ;
    CHECK_EQ_INT(ctl_server_peer_role(srv, geteuid(), 60000, NULL, 0, &role), 0);
    CHECK_EQ_INT(role, CTL_ROLE_ADMIN);
    /* the admin group, as primary or supplementary group */
    role = CTL_ROLE_READ;
    CHECK_EQ_INT(ctl_server_peer_role(srv, other, 1, NULL, 0, &role), 0);
    CHECK_EQ_INT(role, CTL_ROLE_ADMIN);
    role = CTL_ROLE_READ;
    CHECK_EQ_INT(ctl_server_peer_role(srv, other, 60000, sup_admin, 2, &role), 0);
    CHECK_EQ_INT(role, CTL_ROLE_ADMIN);
    /* in both groups: admin */
    const gid_t both[] = {2, 1};
    role = CTL_ROLE_READ;
    CHECK_EQ_INT(ctl_server_peer_role(srv, other, 60000, both, 2, &role), 0);
    CHECK_EQ_INT(role, CTL_ROLE_ADMIN);
    /* the read group: read-only */
    role = CTL_ROLE_ADMIN;
    CHECK_EQ_INT(ctl_server_peer_role(srv, other, 2, NULL, 0, &role), 0);
    CHECK_EQ_INT(role, CTL_ROLE_READ);
    role = CTL_ROLE_ADMIN;
    CHECK_EQ_INT(ctl_server_peer_role(srv, other, 60000, sup_read, 1, &role), 0);
    CHECK_EQ_INT(role, CTL_ROLE_READ);
    /* neither: refused, nothing set; with role groups the daemon's own group gives nothing */
    role = CTL_ROLE_READ;
    CHECK_EQ_INT(ctl_server_peer_role(srv, other, 60000, sup_none, 2, &role), -EACCES);
    if (getegid() != 1 && getegid() != 2)
        CHECK_EQ_INT(ctl_server_peer_role(srv, other, getegid(), NULL, 0, &role), -EACCES);
    CHECK_EQ_INT(role, CTL_ROLE_READ);
    /* The daemon's own uid, over the socket: admin requests answered. */
    CHECK_EQ_INT(ctl_test_serve_until(ev, ctl_test_client_req(path, (uid_t)-1, (gid_t)-1, (gid_t)-1,
                                                              CTL_TEST_REMOVE)),
                 CLIENT_OK);
    ctl_server_free(srv);
    srv = NULL;

    /* Nothing configured: the daemon's own group holds the read-only role. */
    snprintf(path, sizeof(path), "%s/own-roles.sock", dir);
    const struct ctl_groups none = {"", "", ""};
    CHECK_EQ_INT(ctl_server_start(ev, path, &none, ctl_test_handler, NULL, &srv, err, sizeof(err)),
                 0);
    if (srv == NULL)
        return;
    role = CTL_ROLE_ADMIN;
    CHECK_EQ_INT(ctl_server_peer_role(srv, other, getegid(), NULL, 0, &role), 0);
    CHECK_EQ_INT(role, CTL_ROLE_READ);
    CHECK_EQ_INT(ctl_server_peer_role(srv, other, 60000, NULL, 0, &role), -EACCES);
    ctl_server_free(srv);
}

int main(void)
{
    const struct ctl_groups none = {"", "", ""};
    char dir[128], path[192], err[256];
    sd_event *ev = NULL;
    struct ctl_server *srv = NULL;
    struct stat st;

    ctl_test_dir(dir, sizeof(dir));
    CHECK(sd_event_new(&ev) >= 0);

    /* Empty group: the daemon's own group, 0660, no warning, its own uid admitted. */
    snprintf(path, sizeof(path), "%s/own.sock", dir);
    CHECK_EQ_INT(ctl_server_start(ev, path, &none, ctl_test_handler, NULL, &srv, err, sizeof(err)),
                 0);
    CHECK(ctl_server_warning(srv) == NULL);
    CHECK(stat(path, &st) == 0 && S_ISSOCK(st.st_mode));
    CHECK_EQ_INT(st.st_mode & 0777, 0660);
    CHECK_EQ_INT(st.st_gid, getegid());
    CHECK_EQ_INT(ctl_test_serve_until(ev, ctl_test_client(path, (uid_t)-1, (gid_t)-1)), CLIENT_OK);
    ctl_server_free(srv);
    srv = NULL;
    CHECK(access(path, F_OK) != 0); /* removed on free */

    /* A configured group that does not exist: refused, named, nothing left behind. */
    snprintf(path, sizeof(path), "%s/missing.sock", dir);
    err[0] = '\0';
    const struct ctl_groups missing = {"fleetgw-no-such-group", "", ""};
    CHECK_EQ_INT(
        ctl_server_start(ev, path, &missing, ctl_test_handler, NULL, &srv, err, sizeof(err)),
        -ENOENT);
    CHECK(srv == NULL);
    CHECK(strstr(err, "control.group 'fleetgw-no-such-group' does not exist") != NULL);
    CHECK(access(path, F_OK) != 0);
    /* ... and so does a role group: the message names its key. */
    const struct ctl_groups missing_admin = {"", "fleetgw-no-such-group", ""};
    const struct ctl_groups missing_read = {"", "", "fleetgw-no-such-group"};
    CHECK_EQ_INT(
        ctl_server_start(ev, path, &missing_admin, ctl_test_handler, NULL, &srv, err, sizeof(err)),
        -ENOENT);
    CHECK(strstr(err, "control.admin_group 'fleetgw-no-such-group' does not exist") != NULL);
    CHECK_EQ_INT(
        ctl_server_start(ev, path, &missing_read, ctl_test_handler, NULL, &srv, err, sizeof(err)),
        -ENOENT);
    CHECK(strstr(err, "control.read_group 'fleetgw-no-such-group' does not exist") != NULL);
    CHECK(srv == NULL && access(path, F_OK) != 0);

    /* Roles from credentials (ctl_server_peer_role), with two groups that exist here (gid 1
     * and 2 on Debian: daemon, bin) and uids that are neither root nor ours. */
    check_roles(ev, dir);

    /* A configured group the daemon may not apply: owner-only, with a warning. */
    if (geteuid() == 0) {
        pid_t pid = fork();
        if (pid == 0) {
            if (setgroups(0, NULL) != 0 || setgid(65534) != 0 || setuid(65534) != 0)
                _exit(1);
            _exit(check_unapplied_group(dir, "root"));
        }
        int status = -1;
        CHECK(waitpid(pid, &status, 0) == pid);
        CHECK(WIFEXITED(status));
        CHECK_EQ_INT(WEXITSTATUS(status), 0);
    } else {
        /* A group this user is not in: root's, or failing that the first one found. */
        const char *g = NULL;
        struct group *gr = getgrgid(0);
        if (gr != NULL && !ctl_test_in_group(0))
            g = "root";
        setgrent();
        while (g == NULL && (gr = getgrent()) != NULL)
            if (!ctl_test_in_group(gr->gr_gid))
                g = gr->gr_name;
        CHECK(g != NULL);
        if (g != NULL) {
            char name[64];
            snprintf(name, sizeof(name), "%s", g);
            endgrent();
            CHECK_EQ_INT(check_unapplied_group(dir, name), 0);
        }
    }

    sd_event_unref(ev);
    (void)rmdir(dir);
    return check_finish();
}
