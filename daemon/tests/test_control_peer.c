/* SO_PEERCRED on the control socket, with real other uids (so it needs root: it switches
 * identities; as another user it is reported skipped, saying so): with control.group set the
 * socket belongs to that group (0660); a peer in the group is admitted, root is admitted, and
 * a uid outside the group is refused with "permission denied" even when the file mode would
 * let it connect. */
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
    CHECK_EQ_INT(ctl_server_start(ev, path, group, ctl_test_handler, NULL, &srv, err, sizeof(err)),
                 0);
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

    ctl_server_free(srv);
    sd_event_unref(ev);
    (void)rmdir(dir);
    return check_finish();
}
