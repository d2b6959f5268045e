/* SO_PEERCRED on the control socket, with real other uids (so it needs root: it switches
 * identities; as another user it is reported skipped, saying so): with control.group set the
 * socket belongs to that group (0660); a peer in the group is admitted, root is admitted, and
 * a uid outside the group is refused with "permission denied" even when the file mode would
 * let it connect; the group's members hold the read-only role (a change is refused naming the
 * admin role). With role groups (control.admin_group, control.read_group) the file is 0666 and
 * each real peer's primary or supplementary group gives its role. */
#include "ctl_socket_util.h"

int main(void)
{
    if (geteuid() != 0)
        check_skip("needs root: the test connects to the control socket as other uids "
                   "(setuid), which only root may do");

    char dir[128], path[192], err[256] = "";
    sd_event *ev = NULL;
    struct ctl_server *srv = NULL;
    struct stat st;
    struct group *gr = getgrgid(65534);

    CHECK(gr != NULL);
    if (gr == NULL)
        return check_finish();
    char group[64];
    snprintf(group, sizeof(group), "%s", gr->gr_name);

    ctl_test_dir(dir, sizeof(dir));
    CHECK(sd_event_new(&ev) >= 0);
    snprintf(path, sizeof(path), "%s/peer.sock", dir);
    const struct ctl_groups g = {group, "", ""};
    CHECK_EQ_INT(ctl_server_start(ev, path, &g, ctl_test_handler, NULL, &srv, err, sizeof(err)), 0);
    CHECK(ctl_server_warning(srv) == NULL);
    CHECK(stat(path, &st) == 0);
    CHECK_EQ_INT(st.st_mode & 0777, 0660);
    CHECK_EQ_INT(st.st_gid, 65534);

    /* A member of the group (primary gid) is admitted; root is admitted. */
    CHECK_EQ_INT(ctl_test_serve_until(ev, ctl_test_client(path, 65533, 65534)), CLIENT_OK);
    CHECK_EQ_INT(ctl_test_serve_until(ev, ctl_test_client(path, (uid_t)-1, (gid_t)-1)), CLIENT_OK);
    /* Outside the group: the file mode keeps it out ... */
    CHECK_EQ_INT(ctl_test_serve_until(ev, ctl_test_client(path, 65533, 65533)), CLIENT_NO_CONNECT);
    /* ... and with the file opened to everyone, SO_PEERCRED still refuses it. */
    CHECK(chmod(path, 0666) == 0);
    CHECK_EQ_INT(ctl_test_serve_until(ev, ctl_test_client(path, 65533, 65533)), CLIENT_DENIED);
    /* control.group's members hold the read-only role: a change is refused naming the admin
     * role; root's is answered. */
    CHECK_EQ_INT(ctl_test_serve_until(
                     ev, ctl_test_client_req(path, 65533, 65534, (gid_t)-1, CTL_TEST_REMOVE)),
                 CLIENT_NEEDS_ADMIN);
    CHECK_EQ_INT(ctl_test_serve_until(ev, ctl_test_client_req(path, (uid_t)-1, (gid_t)-1, (gid_t)-1,
                                                              CTL_TEST_REMOVE)),
                 CLIENT_OK);
    ctl_server_free(srv);
    srv = NULL;

    /* Role groups (admin: gid 1, read-only: nogroup), no control.group: the file is 0666 and
     * real peers of other uids get their role from their credentials: primary or
     * supplementary group (SO_PEERGROUPS), and no role group at all is refused. */
    struct group *ga = getgrgid(1);
    CHECK(ga != NULL);
    if (ga == NULL)
        return check_finish();
    char admin[64];
    snprintf(admin, sizeof(admin), "%s", ga->gr_name);
    const struct ctl_groups roles = {"", admin, group};
    snprintf(path, sizeof(path), "%s/roles.sock", dir);
    CHECK_EQ_INT(ctl_server_start(ev, path, &roles, ctl_test_handler, NULL, &srv, err, sizeof(err)),
                 0);
    CHECK(stat(path, &st) == 0);
    CHECK_EQ_INT(st.st_mode & 0777, 0666);
    CHECK_EQ_INT(ctl_test_serve_until(ev, ctl_test_client(path, 65533, 65534)), CLIENT_OK);
    CHECK_EQ_INT(ctl_test_serve_until(
                     ev, ctl_test_client_req(path, 65533, 65534, (gid_t)-1, CTL_TEST_REMOVE)),
                 CLIENT_NEEDS_ADMIN);
    CHECK_EQ_INT(
        ctl_test_serve_until(ev, ctl_test_client_req(path, 65533, 65533, 65534, CTL_TEST_STATUS)),
        CLIENT_OK);
    CHECK_EQ_INT(
        ctl_test_serve_until(ev, ctl_test_client_req(path, 65533, 65533, 65534, CTL_TEST_REMOVE)),
        CLIENT_NEEDS_ADMIN);
    CHECK_EQ_INT(
        ctl_test_serve_until(ev, ctl_test_client_req(path, 65533, 1, (gid_t)-1, CTL_TEST_REMOVE)),
        CLIENT_OK);
    CHECK_EQ_INT(
        ctl_test_serve_until(ev, ctl_test_client_req(path, 65533, 65533, 1, CTL_TEST_REMOVE)),
        CLIENT_OK);
    CHECK_EQ_INT(ctl_test_serve_until(ev, ctl_test_client(path, 65533, 65533)), CLIENT_DENIED);

    ctl_server_free(srv);
    sd_event_unref(ev);
    (void)rmdir(dir);
    return check_finish();
}
